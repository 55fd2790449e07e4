"""A real uvicorn serving the web app on 127.0.0.1 (a free port), for browser tests and benchmarks."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import uvicorn

import logitscope
from logitscope.backends.toy import ToyBackend
from logitscope.backends.toydata import DEMO_CORPUS

from logitscope.web import create_ui_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(models, **options):
    """Yield the base URL of a running server; stop it afterwards."""
    port = free_port()
    config = uvicorn.Config(create_ui_app(models, **options), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class CountingToy(ToyBackend):
    """A toy n-gram backend counting forward passes (and optionally slow: ``delay`` s per pass)."""

    calls = 0
    delay = 0.0

    def next_logits(self, prefixes):
        self.calls += 1
        time.sleep(self.delay)
        return super().next_logits(prefixes)


def toy(context_length: int = 512, extra: tuple[str, ...] = ()) -> logitscope.Model:
    """The CLI's demo bigram model (plus ``extra`` sentences), as a CountingToy."""
    return logitscope.from_backend(CountingToy.from_ngrams(DEMO_CORPUS + list(extra), order=2,
                                                           context_length=context_length))
