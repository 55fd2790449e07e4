"""Shared pieces of the CLI: the one error boundary, parameter types that check paths
and model names at parse time (before any model work), --model/--json options, input
reading and strict JSON output.

Every failure a user can cause ends as ONE line on stderr, ``error: WHAT: why (hint: what
to do)``, and exit code 2; Ctrl-C is exit 130; click's own endings (``--help``, a declined
prompt, a group run without a command) are left to click; anything else is a bug (exit 1,
with its traceback). See docs/errors.md.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import sys
from pathlib import Path

import click

from ..errors import InputError, LogitscopeError
from ..core.textgate import for_terminal

MODEL_HELP = ("Model: 'bundled' (default, SmolLM2-135M-Instruct), 'toy', a local HF directory, a .gguf file, "
              "a name added with 'logitscope models add' (e.g. gemma3-270m), or an OpenAI-compatible server "
              "URL (http://HOST:PORT/v1[#model]).")
EXIT_BAD_INPUT, EXIT_BUG, EXIT_INTERRUPTED = 2, 1, 130
_BAD_ARG = "logitscope.bad_utf8_argument"


# -- the error boundary -----------------------------------------------------------------------
def prepare_command(cmd: click.Command) -> click.Command:
    """Every float option of every command rejects NaN at parse time (see ``Number``), every
    command with --model gets the model options (--engine, --dtype, --api-key, --concurrency,
    --timeout), and a library error about a parameter names the command's option (``option_names``).
    Called for each command as the group registers or lazily looks it up."""
    from .model_options import add_model_options

    for param in cmd.params:
        if type(param.type) is click.types.FloatParamType:
            param.type = NUMBER
    if cmd.callback is not None and not getattr(cmd.callback, "names_options", False):
        cmd.callback = _naming_options(cmd, cmd.callback)
    return add_model_options(cmd)


def option_names(**names: str):
    """Mark a command whose options pass library parameters of another name:
    ``@option_names(top_k="rows")`` makes ``top_k=0 is out of range`` read ``--show=0 ...``.
    A parameter with the same name as an option (``temperature``) needs no entry."""
    def mark(func):
        func.option_names = names
        return func

    return mark


def _naming_options(cmd: click.Command, callback):
    @functools.wraps(callback)
    def run(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except LogitscopeError as exc:
            option = _option_for(cmd, callback, exc.param)
            if option is None:
                raise
            raise _renamed(exc, exc.param, option) from exc

    run.names_options = True
    return run


def _option_for(cmd: click.Command, callback, param: str | None) -> str | None:
    """The option (``--show``) of ``cmd`` that passes the library parameter ``param``, or None."""
    if not param:
        return None
    wanted = getattr(callback, "option_names", {}).get(param, param)
    found = next((p for p in cmd.params if p.name == wanted and isinstance(p, click.Option)), None)
    return _option_name(found) if found is not None else None


def _renamed(exc: LogitscopeError, param: str, option: str) -> LogitscopeError:
    """The same error with the library's name ``param`` replaced by the CLI's ``option`` where it names
    the argument (``top_k=0``, ``top_k must be``, ``give top_k as``), not where the word is prose."""
    import re

    name = re.compile(rf"(?<![\w-]){re.escape(param)}(?=(=| must | as | holds |: ))")
    shown = (lambda text: name.sub(option, text).replace(f"{option}=", f"{option} ")) if not option.startswith("--") \
        else (lambda text: name.sub(option, text))  # a short option takes its value after a space: -n 0
    return type(exc)(shown(exc.message), None if exc.hint is None else shown(exc.hint), exc.problems, param=option)


class LogitscopeGroup(click.Group):
    """The CLI's one error boundary: bad input of any kind -> ``error: ...`` on stderr, exit 2.

    Mapped: LogitscopeError, click's usage errors, OSError (except a closed pipe, which click
    handles quietly) and UnicodeError. KeyboardInterrupt -> exit 130. Any other exception is
    a bug in logitscope: it propagates with its traceback (exit 1).
    """

    def add_command(self, cmd, name=None):
        super().add_command(prepare_command(cmd), name)

    def parse_args(self, ctx, args):
        ctx.meta[_BAD_ARG] = next((a for a in args if not _is_utf8(a)), None)
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        try:
            _check_utf8_argument(ctx.meta.get(_BAD_ARG))
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, click.exceptions.NoArgsIsHelpError):
            raise  # --help, a declined prompt, a group without its command: click's own endings
        except click.UsageError as exc:
            fail(_usage_message(exc))
        except click.ClickException as exc:
            fail(exc.format_message())
        except (LogitscopeError, UnicodeError) as exc:
            report_problems(getattr(exc, "problems", ()))
            fail(error_message(exc))
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise  # `logitscope ... | head -1`: click's main exits quietly
            fail(error_message(exc))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception:
            click.echo("internal error: this is a bug in logitscope; please report it with the traceback below",
                       err=True)
            raise


def fail(message: str, code: int = EXIT_BAD_INPUT):
    """Print ``error: message`` (one line, control characters escaped) on stderr and exit."""
    click.echo(f"error: {for_terminal(' '.join(message.split()))}", err=True)
    sys.exit(code)


def error_message(exc: BaseException) -> str:
    """``what: why (hint: ...)`` for the exceptions the boundary maps."""
    if isinstance(exc, LogitscopeError):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (invalid byte at {exc.start}) (hint: convert the input to UTF-8 first)"
    if isinstance(exc, UnicodeError):
        return f"text that is not valid Unicode ({exc.reason}) (hint: give UTF-8 text)"
    what = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
    return f"{what}{(exc.strerror or str(exc) or type(exc).__name__).lower()} (hint: check the path and its permissions)"


def _usage_message(exc: click.UsageError) -> str:
    where = exc.ctx.command_path if exc.ctx is not None else "logitscope"
    return f"{exc.format_message()} (hint: see '{where} --help')"


def _is_utf8(arg: str) -> bool:
    try:
        arg.encode("utf-8")  # invalid UTF-8 on the command line arrives as lone surrogates
    except UnicodeEncodeError:
        return False
    return True


def _check_utf8_argument(arg: str | None) -> None:
    if arg is not None:
        shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise InputError(f"the argument '{shown}' is not valid UTF-8",
                         hint="give UTF-8 text; check the terminal's or the script's encoding")


# -- parameter types: checked at parse time, before any model loads -------------------------------
class Number(click.types.FloatParamType):
    """A float that is a number: 'nan' is refused before any work ('inf' is kept where a range allows it)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail(f"{value!r} is not a number", param, ctx)
        return number


NUMBER = Number()


class InputFile(click.ParamType):
    """A readable, non-empty, non-binary file ('-' for stdin where allowed)."""

    name = "file"

    def __init__(self, allow_stdin: bool = True):
        self.allow_stdin = allow_stdin

    def convert(self, value, param, ctx):
        from ..core.corpus import check_file

        if value == "-" and self.allow_stdin:
            return value
        check_file(value)
        return value


class OutputPath(click.ParamType):
    """A file path that can be written, with one of ``extensions``: checked before the work."""

    name = "file"

    def __init__(self, extensions: tuple[str, ...]):
        self.extensions = tuple(e.lower() for e in extensions)

    def convert(self, value, param, ctx):
        check_output_path(value, self.extensions, _option_name(param))
        return value


PLOT_EXTENSIONS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")
HTML_EXTENSIONS = (".html", ".htm")


def check_output_path(value: str, extensions: tuple[str, ...], option: str = "output") -> Path:
    """InputError unless ``value`` names a writable file with one of ``extensions``."""
    allowed = ", ".join(extensions)
    if not value or not value.strip():
        raise InputError(f"{option} '': the output path is empty", hint=f"give a file name ending in {allowed}")
    path = Path(value).expanduser()
    if path.is_dir():
        raise InputError(f"{value}: is a directory", hint=f"give a file name ending in {allowed}, e.g. {value}/out{extensions[0]}")
    if path.suffix.lower() not in extensions:
        raise InputError(f"{value}: unknown output format {path.suffix or '(no extension)'!r}",
                         hint=f"{option} writes {allowed}")
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"{value}: the folder {str(folder)!r} does not exist", hint="create it first or pick another path")
    if not os.access(path if path.exists() else folder, os.W_OK):
        raise InputError(f"{value}: cannot write here (permission denied)", hint="pick a writable path")
    return path


class ModelSpec(click.ParamType):
    """'bundled', 'toy', a model directory or a .gguf file: resolved at parse time, so
    ``-m nope`` fails before any other model is loaded or any text scored."""

    name = "model"

    def convert(self, value, param, ctx):
        from ..loading import resolve_model_path

        if value is None or not str(value).strip():
            raise InputError(f"{_option_name(param)} '': empty model name",
                             hint="give 'bundled', 'toy', a model directory or a .gguf file, or leave -m out")
        resolve_model_path(value)
        return value


def _option_name(param) -> str:
    return max(param.opts, key=len) if param is not None and param.opts else "output"


# -- options --------------------------------------------------------------------------------
model_option = click.option("--model", "-m", "model", type=ModelSpec(), envvar="LOGITSCOPE_MODEL", default=None,
                            metavar="MODEL", help=MODEL_HELP)
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of a table.")
bos_option = click.option("--bos", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
                          help="Prefix-token policy: follow the tokenizer, always prepend BOS/EOS, or never.")
seed_option = click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True,
                           help="Random seed in [0, 2**64 - 1] (same seed, same draws).")


def bos_value(choice: str):
    return {"auto": "auto", "always": True, "never": False}[choice]


def load_model(spec):
    """Load once per command (environment checked first, the model options passed on); progress of a
    first-time GGUF conversion and load-time warnings (e.g. bfloat16 without hardware) go to stderr."""
    return load_model_as(spec)


def load_model_as(spec, **overrides):
    """``load_model`` with some of the model options replaced (None keeps the command's own)."""
    import warnings

    from .. import load
    from ..settings import check_environment
    from .model_options import load_options

    check_environment()
    options = load_options() | {k: v for k, v in overrides.items() if v is not None}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load(spec, **options)
    for w in caught:
        if issubclass(w.category, (UserWarning, FutureWarning)) and "logitscope" in (w.filename or "") + str(w.message):
            click.echo(f"warning: {w.message}", err=True)
    return model


# -- input ----------------------------------------------------------------------------------
def read_text(text: str | None, file: str | None, what: str = "TEXT") -> str:
    """Exactly one of TEXT or -f FILE ('-' reads stdin); returns the decoded text."""
    if (text is None) == (file is None):
        raise InputError(f"give either {what} or -f FILE", hint="e.g. logitscope score 'Hello world' or -f notes.txt")
    if text is not None:
        return text
    return read_file(file)


def read_file(file: str) -> str:
    """The one text reader (see core/corpus.py): checked, strict UTF-8, '-' for stdin."""
    from ..core.corpus import read_text as read_whole_file

    return read_whole_file(file)


def exit_on_problems(problems) -> None:
    """After the good results were printed: one ``error:`` line per problem, then exit 2."""
    if problems:
        report_problems(problems)
        sys.exit(EXIT_BAD_INPUT)


def report_problems(problems, prefix: str = "error") -> None:
    """One ``prefix: problem`` line per problem on stderr (e.g. bad dataset lines)."""
    for problem in problems:
        click.echo(f"{prefix}: {for_terminal(' '.join(problem.split()))}", err=True)


# -- output ---------------------------------------------------------------------------------
def console(piped_width: int = 120):
    """A rich Console: the terminal's width when interactive, ``piped_width`` columns when piped.
    Text it prints has its control characters escaped (``textgate.for_terminal``): an ESC in the
    input (or in what a model wrote) shows as ``\\x1b`` instead of recolouring the terminal."""
    from rich.console import Console

    class TerminalConsole(Console):
        def print(self, *objects, **kwargs):
            super().print(*(_Escaped(o) for o in objects), **kwargs)

    return TerminalConsole() if sys.stdout.isatty() else TerminalConsole(width=piped_width)


class _Escaped:
    """A rich renderable: ``inner`` as rich lays it out, control characters of its text escaped."""

    def __init__(self, inner):
        self.inner = inner

    def __rich_console__(self, console, options):
        from rich.segment import Segment
        from rich.text import Text

        inner = Text(self.inner) if isinstance(self.inner, str) else self.inner
        for segment in console.render(inner, options):
            yield segment if segment.control else Segment(for_terminal(segment.text), segment.style)


def emit_json(obj) -> None:
    """Print strict JSON (RFC 8259): NaN and ±inf become null (see docs/errors.md)."""
    click.echo(strict_json(obj))


def strict_json(obj, **kwargs) -> str:
    from ..results import jsonable

    return json.dumps(jsonable(obj), ensure_ascii=False, allow_nan=False, indent=2, **kwargs)


def reject_constant(name: str):
    """A ``json.loads(parse_constant=...)`` hook that refuses NaN/Infinity (for tests and users)."""
    raise ValueError(f"non-standard JSON constant {name}")


def show(result, as_json: bool, data=None, piped_width: int = 120, **view_options) -> None:
    """The one ending of every command: JSON (``data``, else ``result.to_dict()``) or the
    result's terminal view (``views.terminal.render(result, **view_options)``)."""
    if as_json:
        return emit_json(result.with_producer(result.to_dict() if data is None else data))
    from rich.text import Text

    from ..views.terminal import render

    view = render(result, **view_options)
    console(piped_width).print(view, soft_wrap=isinstance(view, Text))  # plain text (a tree) is never re-wrapped
