"""Shared pieces of the CLI: error handling, --model/--json options, input reading."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..errors import InputError, LogitscopeError

MODEL_HELP = ("Model: 'bundled' (default, SmolLM2-135M-Instruct), 'toy', a local HF directory, a .gguf file, "
              "or a name added with 'logitscope models add' (e.g. gemma3-270m).")


class LogitscopeGroup(click.Group):
    """A click group that turns LogitscopeError into one line on stderr and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LogitscopeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


model_option = click.option("--model", "-m", "model", envvar="LOGITSCOPE_MODEL", default=None,
                            metavar="MODEL", help=MODEL_HELP)
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of a table.")
bos_option = click.option("--bos", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
                          help="Prefix-token policy: follow the tokenizer, always prepend BOS/EOS, or never.")


def bos_value(choice: str):
    return {"auto": "auto", "always": True, "never": False}[choice]


def load_model(spec):
    """Load once per command; progress of a first-time GGUF conversion goes to stderr."""
    from .. import load

    return load(spec)


def read_text(text: str | None, file: str | None, what: str = "TEXT") -> str:
    """Exactly one of TEXT or -f FILE ('-' reads stdin); returns the decoded text."""
    if (text is None) == (file is None):
        raise InputError(f"give either {what} or -f FILE", hint="e.g. logitscope score 'Hello world' or -f notes.txt")
    if text is not None:
        return text
    return read_file(file)


def read_file(file: str) -> str:
    if file == "-":
        data = sys.stdin.buffer.read()
    else:
        path = Path(file)
        if not path.exists():
            raise InputError(f"file {file!r} does not exist", hint="check the path")
        if path.is_dir():
            raise InputError(f"{file!r} is a directory", hint="give a text file")
        data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{file!r} is not UTF-8 text (byte {exc.start})", hint="convert it to UTF-8 first") from exc


def console(piped_width: int = 120):
    """A rich Console: the terminal's width when interactive, ``piped_width`` columns when piped."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=piped_width)


def emit_json(obj) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2))
