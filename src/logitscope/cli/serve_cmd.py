"""`serve`: the OpenAI-compatible HTTP server (see docs/server.md)."""

from __future__ import annotations

import click

from .common import MODEL_HELP, load_model


@click.command("serve")
@click.option("--model", "-m", "models", multiple=True, metavar="MODEL",
              help=MODEL_HELP + " Repeat to serve several; the first is the default.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (non-loopback needs a key).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option("--api-key", default=None, help="Require 'Authorization: Bearer KEY' (or $LOGITSCOPE_API_KEY).")
@click.option("--max-logprobs", default=20, show_default=True, type=click.IntRange(0, 1000),
              help="Most alternatives per token a request may ask for.")
@click.option("--max-queue", default=256, show_default=True, type=click.IntRange(1),
              help="Requests waiting or running per model before 503 + Retry-After.")
@click.option("--max-batch-tokens", default=8192, show_default=True, type=click.IntRange(1),
              help="Tokens of concurrent scoring requests batched into one pass.")
@click.option("--max-tokens", default=None, type=click.IntRange(1), help="Cap on generated tokens per choice.")
def serve_cmd(models, host, port, api_key, max_logprobs, max_queue, max_batch_tokens, max_tokens):
    """Serve models over an OpenAI-compatible API with prompt log-probs.

    \b
    Examples:
      logitscope serve                      # the bundled model on http://127.0.0.1:8000/v1
      logitscope serve -m toy -m bundled --port 8080
      logitscope serve --host 0.0.0.0 --api-key s3cret
    """
    from ..server import launch
    from ..server.app import create_app

    key = launch.api_key_from_env(api_key)
    launch.check_bind(host, key)
    port = port or launch.free_port(host)
    launch.check_port_free(host, port)  # before the models load and the banner says "serving"
    loaded = {spec: load_model(spec) for spec in (models or (None,))}
    named = {m.name: m for m in loaded.values()}
    app = create_app(named, api_key=key, max_logprobs=max_logprobs, max_queue=max_queue,
                     max_batch_tokens=max_batch_tokens, max_tokens=max_tokens)
    click.echo(launch.banner(host, port, list(named), key), err=True)
    launch.serve(app, host, port)


COMMANDS = [serve_cmd]
