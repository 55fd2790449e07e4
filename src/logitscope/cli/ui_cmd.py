"""`ui`: the local web app (see docs/ui.md)."""

from __future__ import annotations

import click

from .common import MODEL_HELP, load_model


@click.command("ui")
@click.option("--model", "-m", "models", multiple=True, metavar="MODEL",
              help=MODEL_HELP + " Repeat to offer several (a picker, and side-by-side reading).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option("--no-browser", is_flag=True, help="Print the URL only; do not open a browser.")
def ui_cmd(models, port, no_browser):
    """Open the web app: read a text's heatmap, play with the sampler, generate step by step.

    Serves http://127.0.0.1:PORT/ (the page) with its JSON API under /api/ and the
    OpenAI-compatible endpoints under /v1/. Everything runs offline.

    \b
    Examples:
      logitscope ui                          # the bundled model
      logitscope ui -m toy -m bundled --port 8080 --no-browser
    """
    import threading
    import webbrowser

    from ..server import launch
    from ..web import serve_ui

    port = port or launch.free_port()
    launch.check_port_free("127.0.0.1", port)  # before the models load
    loaded = {spec: load_model(spec) for spec in (models or (None,))}
    url = f"http://127.0.0.1:{port}/"
    click.echo(f"logitscope ui: {url}  (models: {', '.join(m.name for m in loaded.values())}; Ctrl-C stops)", err=True)
    if not no_browser:
        threading.Timer(1.0, webbrowser.open, [url]).start()
    serve_ui({m.name: m for m in loaded.values()}, port)


COMMANDS = [ui_cmd]
