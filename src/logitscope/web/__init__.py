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
