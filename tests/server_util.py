"""Helpers for the server tests: a real uvicorn in a thread, a toy model that can hold its worker."""

from __future__ import annotations

import threading
import time

import uvicorn

import logitscope
from logitscope.backends.toydata import demo_ngram
from logitscope.server.launch import free_port

TOY_CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }} {% endfor %}"


def toy_model(chat: bool = True):
    """The CLI's toy bigram model; with ``chat`` a plain template (messages joined by spaces)."""
    backend = demo_ngram()
    if chat:
        backend.chat_template = TOY_CHAT_TEMPLATE
    return logitscope.from_backend(backend)


class Gate:
    """Wraps ``backend.score_positions`` and ``prefill`` so the worker waits until ``open()``."""

    def __init__(self, backend):
        self.released = threading.Event()
        self.entered = threading.Event()
        self.calls: list[int] = []  # sequences per score_positions call
        for name in ("score_positions", "prefill"):
            setattr(backend, name, self._wrap(getattr(backend, name), name))

    def _wrap(self, fn, name):
        def held(*args, **kwargs):
            self.entered.set()
            if not self.released.wait(30):
                raise TimeoutError("gate never opened")
            if name == "score_positions":
                self.calls.append(len(args[0]))
            return fn(*args, **kwargs)
        return held

    def open(self) -> None:
        self.released.set()


class LiveServer:
    """uvicorn serving ``app`` on 127.0.0.1 at a free port, in a background thread."""

    def __init__(self, app):
        self.app = app
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(15)
