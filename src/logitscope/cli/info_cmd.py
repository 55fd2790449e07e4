"""`info`: what a model can do — its capabilities, probed for a remote server."""

from __future__ import annotations

import click

from .common import console, emit_json, json_option, load_model, model_option


@click.command("info")
@model_option
@json_option
def info_cmd(model, as_json):
    """Show a model's capabilities (for -m http://HOST:PORT/v1: what the server supports).

    \b
    Examples:
      logitscope info -m toy
      logitscope info -m http://127.0.0.1:8000/v1 --json
    """
    backend = load_model(model).backend
    facts = {"model": backend.name, "backend": type(backend).__name__, "vocab_size": backend.vocab_size,
             "bos_token_id": backend.bos_token_id, "eos_token_id": backend.eos_token_id,
             "adds_bos_by_default": backend.adds_bos_by_default} | backend.capabilities.describe()
    if as_json:
        return emit_json(facts)
    from rich.table import Table

    table = Table(title=f"{backend.name}", show_header=False)
    for key, value in facts.items():
        table.add_row(key, "; ".join(value) if isinstance(value, list) else str(value))
    console().print(table)


COMMANDS = [info_cmd]
