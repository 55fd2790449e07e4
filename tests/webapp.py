"""A real uvicorn serving the web app on 127.0.0.1 (a free port), and what the browser tests share."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

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


# -- browser tests: Debian's Chromium driven by Playwright ------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
AXE = Path(__file__).with_name("node_modules") / "axe-core" / "axe.min.js"  # npm ci --prefix tests (scripts/test.sh)


def printed(p: float) -> str:
    """The page's probability format (common.js fmtProb)."""
    return f"{p:.4f}" if p >= 1e-3 else f"{p:.2e}".replace("e-0", "e-")


def tiny() -> logitscope.Model:
    """A tiny random Llama with a real byte-level BPE tokenizer: reads any text, emoji included."""
    from tiny_models import tiny_model, tiny_tokenizer

    return logitscope.from_transformers(tiny_model("llama"), tiny_tokenizer(), name="tiny")


class Watched:
    """A page whose requests and console errors are recorded; ``check`` asserts none left the origin."""

    def __init__(self, browser, url, viewport):
        self.context = browser.new_context(viewport=viewport, accept_downloads=True)
        self.page = self.context.new_page()
        self.requests, self.errors, self.dialogs, self.allowed = [], [], [], []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(url)
        self.page.wait_for_selector("body[data-ready]", state="attached")

    def check(self, origin: str) -> None:
        outside = [u for u in self.requests if not u.startswith(origin + "/") and not u.startswith(("data:", "blob:"))]
        assert outside == [], f"requests left the page's origin: {outside}"
        errors = [e for e in self.errors if not any(a in e for a in self.allowed)]
        assert errors == [], f"console errors: {errors}"
        assert self.dialogs == []
        self.context.close()
