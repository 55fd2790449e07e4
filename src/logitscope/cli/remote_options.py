"""--api-key, --concurrency and --timeout on every command that takes a model, for
models behind an OpenAI-compatible server (``-m http://HOST:PORT/v1``). Their values
are kept in the command's context and handed to ``load(..., remote=...)`` by
``common.load_model`` (``remote_settings``), so command bodies stay untouched."""

from __future__ import annotations

import click

KEY = "logitscope.remote"  # where the values live in click's context (ctx.meta)


def _store(ctx, param, value):
    """Keep the value for this command's model loads."""
    if value is not None:
        ctx.meta.setdefault(KEY, {})[param.name] = value


def remote_settings() -> dict:
    """The remote options given to the running command ({} outside a command)."""
    ctx = click.get_current_context(silent=True)
    return dict(ctx.meta.get(KEY, {})) if ctx is not None else {}


OPTIONS = [
    click.Option(["--api-key"], default=None, expose_value=False, callback=_store, metavar="KEY",
                 help="Remote model (-m http://HOST:PORT/v1): bearer key (or $LOGITSCOPE_API_KEY)."),
    click.Option(["--concurrency"], type=click.IntRange(1, 1024), default=None, expose_value=False,
                 callback=_store, help="Remote model: requests in flight (default 8)."),
    click.Option(["--timeout"], type=click.FloatRange(0, min_open=True), default=None, expose_value=False,
                 callback=_store, help="Remote model: seconds one request may take (default 600)."),
]


def add_remote_options(command: click.Command) -> click.Command:
    """Append the options to ``command`` when it has a --model option (once); an option the command
    defines itself (``serve --api-key``: the key clients must send) is left to the command."""
    names = {p.name for p in command.params}
    if names & {"model", "models"} and "concurrency" not in names:
        command.params.extend(o for o in OPTIONS if o.name not in names)
    return command
