"""The local web app: one page (``static/``) over a JSON API under ``/api/`` (``api.py``).

    from logitscope.web import create_ui_app
    app = create_ui_app({"toy": logitscope.load("toy")})     # OpenAI routes + /api/ + the page at /

The page calls the same JSON API any script can: every number on it comes from
the library (``Model``'s analyses run in the model's worker thread); the page
only draws. Nothing is fetched from the network: the static files ship in the
package.
"""

from __future__ import annotations


def create_ui_app(models, **server_options):
    """The server app (see ``logitscope.server.app.create_app``) with the web app mounted."""
    from ..server.app import create_app
    from .api import web_router

    return create_app(models, routers=[web_router()], **server_options)


def serve_ui(models, port: int) -> None:
    """Serve the web app on 127.0.0.1:``port`` until Ctrl-C or SIGTERM; the signal first cancels the
    models' running jobs, so streams end and the server stops without waiting out long jobs."""
    from ..server import launch

    app = create_ui_app(models)
    launch.serve(app, "127.0.0.1", port, on_exit=app.state.engine.cancel_all)
