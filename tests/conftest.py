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


@pytest.fixture(scope="session")
def smol():
    """The bundled SmolLM2-135M-Instruct (float32), loaded once per test session."""
    return logitscope.load()


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
