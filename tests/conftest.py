"""Shared fixtures: toy models for fast logic tests, the bundled model for golden tests."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

import logitscope
from logitscope.backends.toydata import seed_bigram_model, seed_table_model

# CI runs the same examples every time (no flaky landings); locally hypothesis explores.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


# The test run's own settings, read once before any test clears the environment.
_THREADS = int(os.environ.get("LOGITSCOPE_THREADS", "0") or 0) or None


def _default_cache() -> str:
    """Where scripts/setup.sh converted the bundled model (the default cache, whatever the environment says)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return os.path.join(xdg or os.path.join(os.path.expanduser("~"), ".cache"), "logitscope")


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory) -> str:
    """A temporary cache for the whole run that already holds the bundled model's converted
    weights (a link to what scripts/setup.sh converted), so a CLI test on the bundled model
    does not convert the GGUF again (~20 s and a progress bar); everything else starts empty."""
    root = tmp_path_factory.mktemp("cache")
    converted = os.path.join(_default_cache(), "converted")
    if os.path.isdir(converted):
        os.makedirs(root / "converted")
        for name in os.listdir(converted):
            if name.startswith("SmolLM2-135M-Instruct"):
                os.symlink(os.path.join(converted, name), root / "converted" / name)
    return str(root)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch, _session_cache):
    """No test sees the user's LOGITSCOPE_* settings (only the run's thread count), and every
    test writes to the run's temporary cache; tests that need an empty cache set their own."""
    for name in [n for n in os.environ if n.startswith("LOGITSCOPE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LOGITSCOPE_CACHE", _session_cache)
    if _THREADS:
        monkeypatch.setenv("LOGITSCOPE_THREADS", str(_THREADS))


@pytest.fixture(scope="session")
def smol():
    """The bundled SmolLM2-135M-Instruct (float32), loaded once per test session.

    The one exception to the temporary cache: it is read from the cache scripts/setup.sh
    filled (converting it again would cost ~20 s per run); the environment is otherwise clean.
    """
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith("LOGITSCOPE_")]:
            mp.delenv(name)
        mp.setenv("LOGITSCOPE_CACHE", _default_cache())
        return logitscope.load("bundled", threads=_THREADS)


@pytest.fixture
def table_model():
    return logitscope.from_backend(seed_table_model())


@pytest.fixture
def bigram_model():
    return logitscope.from_backend(seed_bigram_model())


@pytest.fixture
def cli():
    """Invoke the CLI in-process: cli(["next", "hi"]) -> click Result."""
    from click.testing import CliRunner

    from logitscope.cli import main

    runner = CliRunner()

    def invoke(args, **kwargs):
        return runner.invoke(main, args, catch_exceptions=False, **kwargs)

    return invoke


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium through Playwright (never a downloaded browser), one per test module."""
    from webapp import ARGS, CHROMIUM

    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()
