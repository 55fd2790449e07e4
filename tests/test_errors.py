"""The CLI's one error boundary and the bad-input matrix (issue: "Bad input never crashes
and never lies").

Every command (toy model) meets every class of bad input: missing / unreadable / directory
/ binary / non-UTF-8 / empty input files, bad output paths, non-finite numbers, invalid
UTF-8 arguments and bad environment variables. Each must end with exit 2, exactly one
``error:`` line on stderr, no traceback and nothing on stdout. Commands run in-process
with ``catch_exceptions=False``: any exception the boundary does not map (a bug) escapes
into pytest and fails the test. A new command joins by adding one row to ``COMMANDS``.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import logitscope
from logitscope.cli import main
from logitscope.cli.common import LogitscopeGroup, reject_constant
from logitscope.errors import InputError

PAIRS = '{"true": "the cat sat", "false": "the mat sat"}\n{"true": "the dog sat", "false": "the dog be"}\n'
MCQ = '{"question": "the", "choices": ["cat", "mat"], "answer": 0}\n{"question": "the cat", "choices": ["sat", "be"], "answer": 0}\n'


@dataclass
class Row:
    """One command: a good run on the toy model, and where its inputs and outputs go."""

    args: list[str]  # a run that works (or fails only for the toy model's lack of a capability)
    file: list[str] | None = None  # args with "{}" where an input file goes
    output: str | None = None  # option that writes a file
    number: list[str] | None = None  # args giving a non-finite / non-numeric number
    text_arg: int | None = None  # index in args of a free-text argument
    extra: dict = field(default_factory=dict)


COMMANDS: dict[str, Row] = {
    "next": Row(["next", "the"], number=["-t", "nan"], text_arg=1),
    "score": Row(["score", "the cat"], file=["score", "-f", "{}"], output="--html", number=["--stride", "nan"],
                 text_arg=1),
    "tokenize": Row(["tokenize", "the cat"], text_arg=1),
    "demo": Row(["demo"]),
    "perplexity": Row(["perplexity", "{good}"], file=["perplexity", "{}"], number=["--window", "inf"]),
    "dist": Row(["dist", "the"], output="--plot", number=["--top-p", "nan"], text_arg=1),
    "sample": Row(["sample", "the", "-n", "10"], number=["--min-p", "nan"], text_arg=1),
    "generate": Row(["generate", "the", "-n", "2"], number=["-t", "nan"], text_arg=1),
    "beam": Row(["beam", "the", "-n", "2"], number=["--alpha", "nan"], text_arg=1),
    "tree": Row(["tree", "the", "-d", "1"], output="--image", number=["--min-prob", "nan"], text_arg=1),
    "uncertain": Row(["uncertain", "the cat"], file=["uncertain", "-f", "{}"], output="--html",
                     number=["--max-prob-below", "nan"], text_arg=1),
    "truth": Row(["truth", "{pairs}"], file=["truth", "{}"], output="--plot", number=["--limit", "inf"]),
    "rank": Row(["rank", "the", "-c", " cat"], text_arg=1),
    "lift": Row(["lift", "-q", "the", "-a", " cat", "-c", "the cat"], number=["--min-lift", "nan"], text_arg=2),
    "calibrate": Row(["calibrate", "{mcq}", "--template", "{question}"], file=["calibrate", "{}"],
                     output="--plot", number=["--bins", "nan"]),
    "quantize": Row(["quantize", "{good}", "--bits", "8"], file=["quantize", "{}", "--bits", "8"], output="--plot",
                    number=["--top-k", "inf"]),
}


def test_every_command_has_a_row():
    assert set(COMMANDS) >= set(main.commands), "add a row for the new command to COMMANDS"


@pytest.fixture
def files(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("the cat sat on the mat\n")
    (tmp_path / "pairs.jsonl").write_text(PAIRS)
    (tmp_path / "mcq.jsonl").write_text(MCQ)
    return {"good": str(good), "pairs": str(tmp_path / "pairs.jsonl"), "mcq": str(tmp_path / "mcq.jsonl"),
            "dir": tmp_path}


def fill(args, files, path=None):
    return [a.format(path, **{k: v for k, v in files.items() if k != "dir"}) if "{" in a and a != "{question}"
            else a for a in args]


def run(args, env=None, **kwargs):
    """In-process; an exception the boundary does not map escapes into pytest (a bug)."""
    return CliRunner().invoke(main, [*args, "-m", "toy"] if "-m" not in args else args, env=env,
                              catch_exceptions=False, **kwargs)


def assert_one_error(result, *words):
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert sum(line.startswith("error:") for line in lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == "", (result.stdout, result.stderr)
    for word in words:
        assert word in result.stderr, (word, result.stderr)


@pytest.fixture
def no_model(monkeypatch):
    """Fail loudly (an unmapped exception) if a command loads a model before rejecting its input."""
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the bad input was rejected")

    monkeypatch.setattr(logitscope, "load", refuse)


# -- the boundary ----------------------------------------------------------------------------
def _group(exc: BaseException):
    @click.group(cls=LogitscopeGroup)
    def g():
        pass

    @g.command("boom")
    def boom():
        raise exc

    return g


@pytest.mark.parametrize("exc, words", [
    (InputError("the thing is wrong", hint="fix it"), ["the thing is wrong (hint: fix it)"]),
    (PermissionError(errno.EACCES, "Permission denied", "/x/y.txt"), ["/x/y.txt: permission denied", "hint:"]),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/x"), ["/x: no such file or directory"]),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "adir"), ["adir: is a directory"]),
    (b"\xe9".decode("utf-8", "replace") and UnicodeDecodeError("utf-8", b"ab\xe9", 2, 3, "invalid"), ["byte at 2"]),
    (UnicodeEncodeError("utf-8", "\udce9", 0, 1, "surrogates not allowed"), ["not valid Unicode"]),
    (click.BadParameter("nope", param_hint="'--x'"), ["Invalid value for '--x': nope", "--help"]),
])
def test_the_boundary_maps_bad_input_to_one_line_and_exit_2(exc, words):
    result = CliRunner().invoke(_group(exc), ["boom"], catch_exceptions=False)
    assert_one_error(result, *words)


def test_keyboard_interrupt_is_exit_130():
    result = CliRunner().invoke(_group(KeyboardInterrupt()), ["boom"], catch_exceptions=False)
    assert result.exit_code == 130 and result.stderr.strip() == "interrupted"


def test_a_bug_is_not_disguised_as_bad_input():
    """Anything else escapes with its traceback (exit 1), after a line saying it is a bug."""
    with pytest.raises(ZeroDivisionError):
        CliRunner().invoke(_group(ZeroDivisionError("x")), ["boom"], catch_exceptions=False)
    result = CliRunner().invoke(_group(ZeroDivisionError("x")), ["boom"])
    assert result.exit_code == 1 and "bug in logitscope" in result.stderr


def test_a_closed_pipe_is_left_to_click():
    """`logitscope ... | head -1`: click's own quiet exit, not an error line."""
    result = CliRunner().invoke(_group(BrokenPipeError(errno.EPIPE, "Broken pipe")), ["boom"], catch_exceptions=False)
    assert result.exit_code == 1 and "error" not in result.stderr


def test_usage_errors_are_one_line_too():
    assert_one_error(CliRunner().invoke(main, ["nosuch"]), "No such command", "hint:")
    assert_one_error(CliRunner().invoke(main, ["next"]), "Missing argument 'PROMPT'", "next --help'")


def test_real_process_exit_codes_and_stdin(tmp_path):
    """Through a real interpreter: exit status, stderr, and '-' reading stdin."""
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 au lait".encode("latin-1"))
    proc = subprocess.run([sys.executable, "-m", "logitscope", "score", "-f", "-", "-m", "toy"], input=bad.read_bytes(),
                          capture_output=True)
    assert proc.returncode == 2 and proc.stdout == b""
    assert proc.stderr.decode().splitlines() == [
        "error: <stdin>: not UTF-8 text (invalid byte at byte 3, line 1 of the file) "
        "(hint: convert it to UTF-8 first, e.g. iconv -f latin1 -t utf-8)"]
    proc = subprocess.run([sys.executable, "-m", "logitscope", "next", b"caf\xe9", "-m", "toy"], capture_output=True)
    assert proc.returncode == 2 and b"Traceback" not in proc.stderr
    assert proc.stderr.startswith(b"error: the argument 'caf\\xe9' is not valid UTF-8")


# -- the matrix --------------------------------------------------------------------------------
def _bad_files(d: Path) -> dict[str, tuple[Path, str]]:
    (d / "empty.txt").write_bytes(b"")
    (d / "blob.bin").write_bytes(b"\x00\x01\x02the cat")
    (d / "latin1.txt").write_bytes("the caf\xe9".encode("latin-1"))
    (d / "adir").mkdir()
    (d / "locked.txt").write_text("the cat sat\n")
    return {"missing": (d / "missing.txt", "does not exist"), "directory": (d / "adir", "is a directory"),
            "empty": (d / "empty.txt", "empty"), "binary": (d / "blob.bin", "binary"),
            "non-UTF-8": (d / "latin1.txt", "not UTF-8"), "unreadable": (d / "locked.txt", "permission denied")}


FILE_CLASSES = ["missing", "directory", "empty", "binary", "non-UTF-8", "unreadable"]


def _lock(monkeypatch, locked: Path):
    """Root reads a chmod-000 file anyway, so unreadability is simulated at open()."""
    real_open = Path.open

    def guarded(self, *args, **kwargs):
        if self.name == locked.name:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", guarded)


@pytest.mark.parametrize("kind", FILE_CLASSES)
@pytest.mark.parametrize("name", [n for n, r in COMMANDS.items() if r.file])
def test_bad_input_files(name, kind, files, monkeypatch):
    path, word = _bad_files(files["dir"])[kind]
    if kind == "unreadable":
        _lock(monkeypatch, path)
    if name != "perplexity":  # perplexity reports a bad file among good ones (after loading the model)
        monkeypatch.setattr(logitscope, "load", lambda *a, **k: pytest.fail("model loaded before the check"))
    assert_one_error(run(fill(COMMANDS[name].file, files, path)), word, str(path.name), "hint:")


OUTPUT_CLASSES = {"directory": ("adir", "is a directory"), "empty": ("", "empty"),
                  "missing folder": ("nofolder/x.{ext}", "does not exist"),
                  "unknown extension": ("x.xyz", "unknown output format"),
                  "no extension": ("x", "unknown output format"), "read-only": ("ro.{ext}", "cannot write")}


@pytest.mark.parametrize("kind", list(OUTPUT_CLASSES))
@pytest.mark.parametrize("name", [n for n, r in COMMANDS.items() if r.output])
def test_bad_output_paths_are_refused_before_the_model_loads(name, kind, files, monkeypatch, no_model):
    row = COMMANDS[name]
    d = files["dir"]
    (d / "adir").mkdir()
    ext = "html" if row.output == "--html" else "png"
    target, word = OUTPUT_CLASSES[kind]
    target = "" if not target else str(d / target.format(ext=ext))
    if kind == "read-only":
        Path(target).write_text("x")
        real_access = __import__("os").access
        monkeypatch.setattr("os.access", lambda p, mode: False if str(p) == target else real_access(p, mode))
    assert_one_error(run([*fill(row.args, files), row.output, target]), word, "hint:")


@pytest.mark.parametrize("name", [n for n, r in COMMANDS.items() if r.number])
def test_non_finite_numbers(name, files, no_model):
    row = COMMANDS[name]
    assert_one_error(run([*fill(row.args, files), *row.number]), row.number[0].lstrip("-").split("-")[0][:3])


@pytest.mark.parametrize("name", [n for n, r in COMMANDS.items() if r.text_arg is not None])
def test_invalid_utf8_arguments(name, files, no_model):
    args = fill(COMMANDS[name].args, files)
    args[COMMANDS[name].text_arg] = "caf\udce9"  # how Python hands over the bytes caf\xe9 from argv
    assert_one_error(run(args), "is not valid UTF-8")


ENV_CLASSES = {"LOGITSCOPE_THREADS": ("abc", "whole number"), "LOGITSCOPE_DEVICE": ("garbage", "not a device"),
               "LOGITSCOPE_CACHE": ("{file}", "is a file"), "LOGITSCOPE_FAST_PATHS": ("yes", "neither 0 nor 1")}


@pytest.mark.parametrize("var", list(ENV_CLASSES))
@pytest.mark.parametrize("name", list(COMMANDS))
def test_bad_environment_variables(name, var, files, no_model):
    value, word = ENV_CLASSES[var]
    env = {var: value.format(file=files["good"])}
    assert_one_error(run(fill(COMMANDS[name].args, files), env=env), var, word, "hint:")


def test_cuda_without_cuda_is_named(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert_one_error(run(["next", "the"], env={"LOGITSCOPE_DEVICE": "cuda"}), "CUDA is not available")


# -- every --json document parses with a strict parser -------------------------------------------
JSON_RUNS = {  # chosen to produce non-finite numbers where a command can
    "next": ["next", "the", "-t", "inf"],
    "next-tiny-t": ["next", "the", "-t", "1e-300"],
    "score": ["score", "the cat"],
    "tokenize": ["tokenize", "the cat"],
    "perplexity": ["perplexity", "{good}", "--convention", "llamacpp"],
    "dist": ["dist", "the", "--bias", "cat=inf", "--bias", "dog=-inf"],
    "sample": ["sample", "the", "-n", "1"],
    "generate": ["generate", "the", "-n", "2", "--bias", "cat=inf"],
    "beam": ["beam", "the", "-n", "2"],
    "tree": ["tree", "the", "-d", "1"],
    "uncertain": ["uncertain", "the cat", "--entropy-above", "inf"],
    "truth": ["truth", "{pairs}"],
    "rank": ["rank", "the", "-c", " cat", "-c", " dog", "--no-pmi"],
    "lift": ["lift", "-q", "the", "-a", " cat", "-c", "the cat", "--min-lift", "inf"],
    "calibrate": ["calibrate", "{mcq}", "--template", "{question}"],
}


@pytest.mark.parametrize("name", list(JSON_RUNS))
def test_every_json_document_is_strict_json(name, files):
    result = CliRunner().invoke(main, [*fill(JSON_RUNS[name], files), "-m", "toy", "--json"])
    assert "Traceback" not in result.stderr
    json.loads(result.stdout, parse_constant=reject_constant)  # NaN / Infinity would raise here


# -- issue 22's root causes, command by command ------------------------------------------------------
ALL_COMMANDS = sorted(set(COMMANDS) | set(main.commands) | {"serve", "ui", "info", "models", "workshop"})


@pytest.mark.parametrize("args", [[name, "--help"] for name in ALL_COMMANDS] + [["models", "list", "--help"],
                                                                                 ["models", "add", "--help"]])
def test_help_is_clicks_own_ending(args):
    """A: `CMD --help` prints its help on stdout, nothing on stderr, exit 0 (no "internal error")."""
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0 and result.stderr == "" and result.stdout.startswith("Usage: ")
    assert f" {args[-2]} [OPTIONS]" in result.stdout.splitlines()[0]


def test_help_through_a_real_process_prints_nothing_on_stderr():
    proc = subprocess.run([sys.executable, "-m", "logitscope", "next", "--help"], capture_output=True)
    assert proc.returncode == 0 and proc.stderr == b"" and proc.stdout.startswith(b"Usage: ")


def test_a_group_without_its_command_shows_its_help():
    """A: `logitscope models` alone: click's help, as `logitscope` alone, not one squashed error line."""
    result = CliRunner().invoke(main, ["models"], catch_exceptions=False)
    assert "error:" not in result.output and "internal error" not in result.output
    assert "Commands:" in result.output and "list" in result.output and result.output.count("\n") > 5


def test_declining_a_prompt_is_clicks_abort():
    """A: answering no to `models add`'s terms: click's "Aborted!" (exit 1), not a bug report."""
    result = CliRunner().invoke(main, ["models", "add", "gemma3-270m"], input="n\n", catch_exceptions=False)
    assert result.exit_code == 1 and result.stderr.strip().endswith("Aborted!")
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args, option", [
    (["next", "the", "-k", "0"], "--show=0"), (["score", "the cat", "--alternatives", "-1"], "--alternatives=-1"),
    (["dist", "the", "-k", "0"], "--show=0"), (["beam", "the", "-b", "0"], "--beams=0"),
    (["generate", "the", "-n", "0"], "--max-new-tokens=0"), (["tree", "the", "-d", "0"], "--depth=0"),
    (["sample", "the", "-n", "0"], "-n 0"), (["quantize", "{good}", "--base-top-k", "0"], "--base-top-k=0"),
    (["perplexity", "{good}", "--window", "1"], "--window=1"), (["calibrate", "{mcq}", "--bins", "0"], "--bins=0"),
])
def test_errors_name_the_option_not_the_library_parameter(args, option, files):
    """I: `next -k 0` says --show, not top_k; `beam -b 0` says --beams, not num_beams."""
    result = run(fill(args, files))
    assert_one_error(result, f"error: {option} is out of range", "hint:")
    assert not any(p in result.stderr for p in ("top_k", "num_beams", "max_new_tokens", "base_top_k"))


@pytest.mark.parametrize("args, words", [
    (["serve", "--port", "70000"], "70000 is not in the range"), (["ui", "--port", "-1"], "-1 is not in the range"),
    (["next", "the", "-m", "http://127.0.0.1:abc/v1"], "is not a valid server URL"),
    (["next", "the", "-m", "http://:8000/v1"], "with a host"),
    (["next", "the", "-m", "http://u:s3cret@127.0.0.1:abc/v1"], "http://u:***@127.0.0.1:abc/v1"),
    (["next", "the", "-m", "http://127.0.0.1:9/v1", "--timeout", "inf"], "--timeout=inf is out of range"),
    (["next", "the", "-m", "http://127.0.0.1:9/v1", "--timeout", "nan"], "--timeout=nan is not a number"),
    (["next", "the", "-m", "http://127.0.0.1:9/v1", "--timeout", "0"], "0.0 is not in the range x>0"),
    (["next", "the", "-m", "http://127.0.0.1:9/v1", "--api-key", "   "], "--api-key: the key is blank"),
    (["serve", "--api-key", "   "], "--api-key: the key is blank"),
])
def test_values_out_of_range_are_one_line(args, words, no_model):
    """E, H, I: ports, server URLs, timeouts and blank API keys are checked before any model or server starts;
    a URL's password is never echoed."""
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert_one_error(result, words)
    assert "s3cret" not in result.stderr


def test_a_port_in_use_is_refused_before_the_banner(no_model):
    """E: serve/ui on a busy port: one error line, no "serving at" banner, no uvicorn traceback."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        for args in (["serve", "--port", port], ["ui", "--port", port, "--no-browser"]):
            result = CliRunner().invoke(main, args, catch_exceptions=False)
            assert_one_error(result, f"cannot serve on 127.0.0.1:{port}", "in use")
            assert "serving" not in result.stderr
