"""Issue 22's root causes on the CLI, command by command: sampler edges, inputs read once,
files written whole, text shown safely, the strict JSON reader, BOMs and logit biases.
The rows, helpers and fixtures are tests/test_errors.py's (the bad-input matrix)."""

from __future__ import annotations

import errno
import json

import pytest

import logitscope
from test_errors import COMMANDS, MCQ, PAIRS, assert_one_error, files, fill, run  # noqa: F401 (files: a fixture)


@pytest.mark.parametrize("name", ["dist", "sample", "generate"])
def test_top_p_below_the_tolerance_keeps_the_top_token(name, files):
    """B: a top-p at or below 1e-9 keeps the most likely token: exit 0, one survivor, greedy's draws."""
    args = [*fill(COMMANDS[name].args, files), "--top-p", "1e-10", "--json"]
    data = json.loads(run(args).stdout)
    if name == "dist":
        assert data["stages"][-1]["survivors"] == 1
    elif name == "sample":
        assert [r["count"] for r in data["rows"] if r["count"]] == [data["n"]]
    else:
        greedy = [*fill(COMMANDS[name].args, files), "-t", "0", "--json"]
        assert data["text"] == json.loads(run(greedy).stdout)["text"]


@pytest.mark.parametrize("name", [n for n, r in COMMANDS.items() if r.file])
def test_a_pipe_is_read_once(name, files, tmp_path):
    """G: `-f <(...)` / a FIFO: read once, never "the file is empty" or a hang."""
    import os
    import threading

    good = {"calibrate": MCQ, "truth": PAIRS}.get(name, "the cat sat on the mat\n")
    fifo = tmp_path / ("input.jsonl" if name in ("calibrate", "truth") else "input.txt")
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_text, args=(good,))
    writer.start()
    result = run([*fill(COMMANDS[name].file, files, fifo), *(["--template", "{question}"] if name == "calibrate" else [])])
    writer.join(timeout=10)
    if name == "quantize":  # read, then refused for the toy model's lack of weights
        assert_one_error(result, "quantization needs weights")
    else:
        assert result.exit_code == 0 and "error" not in result.stderr, result.stderr


@pytest.mark.parametrize("name", [n for n, r in COMMANDS.items() if r.output and n != "quantize"])  # toy: no weights
def test_a_failed_write_names_the_file_keeps_the_results_and_leaves_nothing(name, files, monkeypatch):
    """F: a full disk while writing --html/--plot/--image: the results are on stdout already, one error
    line names the file and the cause, and neither the file nor a temporary file is left."""
    import logitscope.core.output as output

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(output.os, "replace", full)
    row, target = COMMANDS[name], files["dir"] / "out"
    target.mkdir()
    path = target / ("x.html" if row.output == "--html" else "x.png")
    result = run([*fill(row.args, files), row.output, str(path), "--json"])
    assert result.exit_code == 2 and json.loads(result.stdout)  # the numbers came first
    assert result.stderr.splitlines() == [f"error: {path}: cannot write it (no space left on device) "
                                          "(hint: free some space on that disk, or write to a folder on another disk)"]
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("name", [n for n, r in COMMANDS.items() if r.text_arg is not None])
def test_control_characters_from_the_input_never_reach_the_terminal_raw(name, files):
    """I: an ESC in the input is shown as \\x1b on stdout and in error lines (here: a word the toy lacks)."""
    args = fill(COMMANDS[name].args, files)
    args[COMMANDS[name].text_arg] = "the \x1b[31mcat"
    result = run(args)
    assert "\x1b" not in result.stdout and "\x1b" not in result.stderr
    assert "\\x1b" in result.stdout + result.stderr


def test_a_huge_word_is_echoed_short(files, tmp_path):
    """I: a 5 MB word in the input: the error line quotes its head and says how long it was."""
    big = tmp_path / "big.txt"
    big.write_text("the " + "x" * 5_000_000)
    result = run(["score", "-f", str(big)])
    assert_one_error(result, "is not in the toy vocabulary", "characters)")
    assert len(result.stderr) < 500


@pytest.mark.parametrize("name", ["calibrate", "truth", "perplexity"])
@pytest.mark.parametrize("line, words", [
    ("[" * 100_000 + "]" * 100_000, "JSON nested deeper than 64 levels"),
    ('{"text": "a", "text": "b", "question": "q", "true": "t", "false": "f"}', "the key 'text' appears twice"),
    ('{"text": NaN}', "NaN is not a JSON number"),
])
def test_dataset_lines_go_through_the_strict_json_reader(name, line, words, tmp_path):
    """D, H: every JSONL reader refuses deep nesting, duplicate keys and NaN, naming FILE:LINE."""
    data = tmp_path / "data.jsonl"
    data.write_text(line + "\n")
    result = run([name, str(data), *(["--template", "{question}"] if name == "calibrate" else [])])
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert f"{data}:1: {words}" in result.stderr


def test_a_byte_order_mark_is_not_text(files, tmp_path):
    """H: a UTF-8 BOM at the start of a file is dropped: the same scores as without it."""
    plain, marked = tmp_path / "plain.txt", tmp_path / "marked.txt"
    plain.write_text("the cat sat on the mat")
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    for args in (["score", "-f", "{}", "--json"], ["perplexity", "{}", "--json"]):
        a, b = (json.loads(run(fill(args, files, p)).stdout) for p in (plain, marked))
        assert json.dumps(a).replace(str(plain), "X") == json.dumps(b).replace(str(marked), "X")


def test_bias_values_for_one_token_add_up_and_inf_with_minus_inf_is_refused(files):
    """H: `--bias cat=1 --bias cat=2` is cat=3 (as a string and its id are); +inf and -inf on one token fail."""
    def dist(*bias):
        return json.loads(run(["dist", "the", *[a for b in bias for a in ("--bias", b)], "--json"]).stdout)["stages"]

    assert dist("cat=1", "cat=2")[1]["top"] == dist("cat=3")[1]["top"]
    cat = str(logitscope.load("toy").backend.tokenize("cat").ids[0])
    assert dist("cat=1", f"{cat}=2")[1]["top"] == dist("cat=3")[1]["top"]
    assert_one_error(run(["dist", "the", "--bias", "cat=inf", "--bias", "cat=-inf"]), "both +inf and -inf")
