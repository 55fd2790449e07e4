"""One reader for texts and datasets: JSONL lines end at "\\n" only, messages say FILE:LINE
and the field, bad lines are never silently skipped, offsets are offsets in the file."""

from __future__ import annotations

import json

import numpy as np
import pytest

import logitscope
from logitscope.confidence.truth import load_pairs
from logitscope.core import corpus
from logitscope.errors import InputError
from logitscope.evaluation import calibration as cal

Q_GOOD = {"question": "the", "choices": ["cat", "mat"], "answer": 0}


def write_lines(path, lines):
    path.write_text("".join((json.dumps(x, ensure_ascii=False) if not isinstance(x, str) else x) + "\n"
                            for x in lines), encoding="utf-8")
    return path


# -- line splitting ----------------------------------------------------------------------------
@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\x85"])
def test_jsonl_lines_end_at_newline_only(tmp_path, sep):
    path = write_lines(tmp_path / "q.jsonl", [{**Q_GOOD, "question": f"the{sep}"}, "not json"])
    data = cal.load_mcq(path)
    assert len(data.items) == 1 and data.items[0].question == f"the{sep}".strip()
    assert data.problems[0].startswith(f"{path}:2: not valid JSON")  # the line number after it is right
    pairs = write_lines(tmp_path / "p.jsonl", [{"true": f"a{sep}b", "false": "c"}, {"true": "x"}])
    with pytest.raises(InputError, match=f"{pairs}:2: missing field 'false'"):
        load_pairs(pairs)


def test_corpus_jsonl_and_lines_formats_keep_u2028_inside_a_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "a\u2028b"}, ensure_ascii=False) + "\n" + json.dumps({"text": "c"}) + "\n")
    docs = [("".join(d.blocks)) for d in corpus.read_documents(str(path))]
    assert docs == ["a\u2028b", "c"]
    lines = tmp_path / "d.txt"
    lines.write_text("a\u2028b\r\nc\n")
    assert ["".join(d.blocks) for d in corpus.read_documents(str(lines), "lines")] == ["a\u2028b", "c"]


def test_json_errors_never_end_in_a_bare_at(tmp_path):
    path = write_lines(tmp_path / "q.jsonl", [Q_GOOD, '{"question": "unterminated'])
    problem = cal.load_mcq(path).problems[0]
    assert problem == f"{path}:2: not valid JSON (Unterminated string starting at column 14)"
    with pytest.raises(InputError, match=r"d.jsonl:1: not valid JSON \(Unterminated string starting at column 10\)"):
        list(corpus.read_documents(str(write_lines(tmp_path / "d.jsonl", ['{"text": "oops']))))


# -- calibrate: bad lines, template, delimiter -------------------------------------------------------
def test_calibrate_refuses_a_file_with_bad_lines_before_loading_a_model(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(logitscope, "load", lambda *a, **k: pytest.fail("model loaded"))
    path = write_lines(tmp_path / "q.jsonl", [Q_GOOD, Q_GOOD | {"question": "the cat"}] + ["{bad"] * 11)
    res = cli(["calibrate", str(path), "-m", "toy"])
    assert res.exit_code == 2 and res.stdout == ""
    errors = res.stderr.splitlines()
    assert len(errors) == 12 and all(e.startswith(f"error: {path}:") for e in errors)
    assert errors[0].startswith(f"error: {path}:3: not valid JSON")
    assert "11 of 13 lines are malformed" in errors[-1] and "--skip-bad" in errors[-1]


def test_calibrate_skip_bad_scores_the_rest_and_counts_them(cli, tmp_path):
    path = write_lines(tmp_path / "q.jsonl", [Q_GOOD, Q_GOOD | {"question": "the cat"}] + ["{bad"] * 3)
    res = cli(["calibrate", str(path), "-m", "toy", "--template", "{question}", "--skip-bad"])
    assert res.exit_code == 0
    assert "skipped 3 malformed line(s)" in res.stdout and "skipped:" not in res.stdout
    assert [line.split(":")[0] for line in res.stderr.splitlines()] == ["skipped"] * 3
    data = json.loads(cli(["calibrate", str(path), "-m", "toy", "--template", "{question}", "--skip-bad",
                           "--json"]).stdout)
    assert data["metrics"]["n"] == 2 and len(data["problems"]) == 3


def test_template_and_delimiter_build_prompt_and_choices(tmp_path):
    m = logitscope.load("toy")
    plain = write_lines(tmp_path / "plain.jsonl", [{"question": "the", "choices": ["cat", "mat"], "answer": 0}])
    spaced = write_lines(tmp_path / "spaced.jsonl", [{"question": "the", "choices": [" cat", " mat"], "answer": 0}])
    a = m.calibrate(str(plain), template="{question}")
    b = m.calibrate(str(spaced), template="{question}", delimiter="")
    assert a.questions[0].scores == b.questions[0].scores and a.notes == b.notes == ()
    doubled = m.calibrate(str(spaced), template="{question}")  # default " " + " cat": said, not silent
    assert "2 choice(s) meet the prompt with doubled whitespace" in doubled.notes[0]
    with pytest.raises(InputError, match="has no \\{question\\}"):
        m.calibrate(str(plain), template="Q:")


def test_cli_says_when_a_space_is_doubled(cli, tmp_path):
    spaced = write_lines(tmp_path / "s.jsonl", [{"question": "the", "choices": [" cat", " mat"], "answer": 0}])
    res = cli(["calibrate", str(spaced), "-m", "toy", "--template", "{question}"])
    assert res.exit_code == 0 and "note: 2 choice(s)" in res.stderr and "--delimiter ''" in res.stderr


def test_default_template_and_delimiter_are_unchanged():
    assert cal.PROMPT_TEMPLATE == "Question: {question}\nAnswer:" and cal.DELIMITER == " "
    assert cal.render_prompt(cal.PROMPT_TEMPLATE, "What is {x}?") == "Question: What is {x}?\nAnswer:"


# -- truth: field and line named ---------------------------------------------------------------------
@pytest.mark.parametrize("record, message", [
    ({"true": 5, "false": "b"}, "field 'true' must be a non-empty string, got 5"),
    ({"true": "a", "false": ""}, "field 'false' must be a non-empty string, got ''"),
    ({"true": "a"}, "missing field 'false'"),
    (["a", "b"], "a line must be a JSON object, got list"),
])
def test_truth_type_errors_name_field_and_line(tmp_path, record, message):
    path = write_lines(tmp_path / "p.jsonl", [{"true": "a", "false": "b"}, record])
    with pytest.raises(InputError) as info:
        load_pairs(path)
    assert info.value.message == f"{path}:2: {message}"


def test_truth_on_a_directory_says_so(cli, tmp_path):
    res = cli(["truth", str(tmp_path), "-m", "toy"])
    assert res.exit_code == 2 and f"{tmp_path}: is a directory" in res.stderr


# -- byte offsets in the file ----------------------------------------------------------------------------
def test_perplexity_reports_bad_utf8_at_its_offset_in_the_file(cli, tmp_path):
    path = tmp_path / "big.txt"
    data = bytearray(b"the cat sat on the mat " * 7000)  # 161,000 bytes: several read blocks
    data[150_003] = 0xFF
    path.write_bytes(bytes(data))
    res = cli(["perplexity", str(path), "-m", "toy"])
    assert res.exit_code == 2
    assert f"error: {path}: not UTF-8 text (invalid byte at byte 150,003 of the file)" in res.stderr


def test_a_character_split_across_read_blocks_is_fine(tmp_path):
    path = tmp_path / "euro.txt"
    text = "a" * (corpus.BLOCK_CHARS - 1) + "€" + " the end"
    path.write_text(text, encoding="utf-8")
    assert "".join(corpus._read_chunks(path, str(path))) == text


def test_whole_file_reader_names_byte_and_line(tmp_path):
    path = tmp_path / "l.txt"
    path.write_bytes(b"ok\nfine\ncaf\xe9\n")
    with pytest.raises(InputError, match=r"l.txt: not UTF-8 text \(invalid byte at byte 11, line 3 of the file\)"):
        corpus.read_text(str(path))


def test_every_reader_gives_the_same_message_for_the_same_file(tmp_path):
    """score -f, perplexity, truth and calibrate all read through core/corpus.py."""
    latin = tmp_path / "latin1.jsonl"
    latin.write_bytes(b'{"text": "caf\xe9"}\n')
    messages = set()
    for read in (corpus.read_text, load_pairs, cal.load_mcq, lambda p: list(corpus.read_documents(str(p)))):
        with pytest.raises(InputError) as info:
            read(latin)
        messages.add(info.value.message.split(" (invalid byte")[0])
    assert messages == {f"{latin}: not UTF-8 text"}


def test_calibration_scores_match_across_readers(tmp_path):
    """The bundled set read through the new reader gives the old item count and balance."""
    data = cal.load_mcq()
    assert len(data.items) >= 150 and data.problems == ()
    assert np.bincount([it.answer for it in data.items], minlength=4).min() > 0
