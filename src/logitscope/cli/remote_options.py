"""--api-key, --concurrency and --timeout on every command that takes a model, for
models behind an OpenAI-compatible server (``-m http://HOST:PORT/v1``). They set the
environment variables ``backends/remote.py`` reads, so command bodies stay untouched."""

from __future__ import annotations

import os

import click

ENV = {"api_key": "LOGITSCOPE_API_KEY", "concurrency": "LOGITSCOPE_CONCURRENCY", "timeout": "LOGITSCOPE_TIMEOUT"}


def _store(ctx, param, value):
    """Check the value (``validation.remote_settings``, as for the variables), then set the
    variable for this command only (restored when the command ends)."""
    if value is None:
        return
    from ..validation import remote_settings

    value = remote_settings({param.name: f"--{param.name.replace('_', '-')}"}, **{param.name: value})[param.name]
    name, before = ENV[param.name], os.environ.get(ENV[param.name])
    os.environ[name] = str(value)
    ctx.call_on_close(lambda: os.environ.pop(name, None) if before is None else os.environ.update({name: before}))


OPTIONS = [
    click.Option(["--api-key"], default=None, expose_value=False, callback=_store, metavar="KEY",
                 help="Remote model (-m http://HOST:PORT/v1): bearer key (or $LOGITSCOPE_API_KEY)."),
    click.Option(["--concurrency"], type=click.IntRange(1, 1024), default=None, expose_value=False,
                 callback=_store, help="Remote model: requests in flight (default 8)."),
    click.Option(["--timeout"], type=float, default=None, expose_value=False,
                 callback=_store, help="Remote model: seconds one request may take (default 600)."),
]


def add_remote_options(command: click.Command) -> click.Command:
    """Append the options to ``command`` when it has a --model option (once); an option the command
    defines itself (``serve --api-key``: the key clients must send) is left to the command."""
    names = {p.name for p in command.params}
    if names & {"model", "models"} and "concurrency" not in names:
        command.params.extend(o for o in OPTIONS if o.name not in names)
    return command
