"""How a command's model is run, on every command that takes a model: --engine and --dtype
(the local engines), and --api-key, --concurrency, --timeout (a model behind an
OpenAI-compatible server, ``-m http://HOST:PORT/v1``). Their values are kept in the
command's context and handed to ``load(...)`` by ``common.load_model`` (``load_options``),
so command bodies stay untouched."""

from __future__ import annotations

import click

KEY = "logitscope.load"  # where the values live in click's context (ctx.meta)
REMOTE = ("api_key", "concurrency", "timeout")


def _store(ctx, param, value):
    """Keep the value for this command's model loads; a remote setting is checked at once, by the rule
    ``RemoteSettings`` applies (``validation.remote_settings``), naming the option."""
    if value is None:
        return
    if param.name in REMOTE:
        from ..core.validation import remote_settings

        value = remote_settings({param.name: max(param.opts, key=len)}, **{param.name: value})[param.name]
    ctx.meta.setdefault(KEY, {})[param.name] = value


def load_options() -> dict:
    """``load`` keywords from the running command's options ({} outside a command): engine, dtype, remote."""
    ctx = click.get_current_context(silent=True)
    given = dict(ctx.meta.get(KEY, {})) if ctx is not None else {}
    remote = {k: given.pop(k) for k in REMOTE if k in given}
    return given | ({"remote": remote} if remote else {})


OPTIONS = [
    click.Option(["--engine"], type=click.Choice(["auto", "torch", "llamacpp"]), default=None, expose_value=False,
                 callback=_store, help="Local engine: torch (float32 reference), llamacpp (.gguf files, needs "
                                       "scripts/install_llamacpp.sh), or auto (default: llamacpp for .gguf files "
                                       "over 600 MB)."),
    click.Option(["--dtype"], type=click.Choice(["float32", "bfloat16"]), default=None, expose_value=False,
                 callback=_store, help="torch engine arithmetic: float32 (default, the reference) or bfloat16."),
    click.Option(["--api-key"], default=None, expose_value=False, callback=_store, metavar="KEY",
                 help="Remote model (-m http://HOST:PORT/v1): bearer key (or $LOGITSCOPE_API_KEY)."),
    click.Option(["--concurrency"], type=click.IntRange(1, 1024), default=None, expose_value=False,
                 callback=_store, help="Remote model: requests in flight (default 8)."),
    click.Option(["--timeout"], type=click.FloatRange(0, min_open=True), default=None, expose_value=False,
                 callback=_store, help="Remote model: seconds one request may take (default 600)."),
]


def add_model_options(command: click.Command) -> click.Command:
    """Append the options to ``command`` when it has a --model option (once); an option the command
    defines itself (``serve --api-key``: the key clients must send) is left to the command."""
    names = {p.name for p in command.params}
    if names & {"model", "models"} and "engine" not in names:
        command.params.extend(o for o in OPTIONS if o.name not in names)
    return command
