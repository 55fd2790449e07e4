"""`info`: what a model can do — its capabilities, probed for a remote server."""

from __future__ import annotations

import click

from .common import json_option, load_model, model_option, show


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
    show(load_model(model).info(), as_json)


COMMANDS = [info_cmd]
