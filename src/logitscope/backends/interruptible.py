"""A backend that a caller can stop between two model calls (the web app's Cancel).

A one-call analysis (the tree, beam search, ranking) runs for seconds inside one worker job;
on ``Interruptible(backend, cancelled)`` every call into the model first asks ``cancelled()``
and raises ``Interrupted`` once it says so, so the analysis stops at its next forward pass
instead of running on. It also counts the calls, for a progress report when their number is
known in advance (``report({"progress": calls, "of": expected})``, at most every 0.1 s).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..errors import LogitscopeError
from .base import Backend

MODEL_CALLS = frozenset({"next_logits", "next_top_k", "prefill", "extend", "extend_rows", "score_positions",
                         "scores_without_ranks", "nll_sums", "token_logprobs", "score_continuations",
                         "hidden_states"})
REPORT_EVERY = 0.1  # seconds between progress reports


class Interrupted(LogitscopeError):
    """The caller stopped the work (the web app answers {"cancelled": true}, not an error)."""


class Interruptible:
    """``backend`` seen by one job: each model call raises Interrupted once ``cancelled()`` is true."""

    def __init__(self, backend: Backend, cancelled: Callable[[], bool], report=None, expected: int | None = None):
        self._backend, self._cancelled, self._report, self._expected = backend, cancelled, report, expected
        self._calls, self._reported = 0, 0.0

    def __getattr__(self, name: str):  # everything else is the wrapped backend's
        attr = getattr(self._backend, name)
        if name not in MODEL_CALLS:
            return attr

        def call(*args, **kwargs):
            if self._cancelled():
                raise Interrupted("cancelled")
            self._calls += 1
            self._tell()
            return attr(*args, **kwargs)

        return call

    def _tell(self) -> None:
        now = time.monotonic()
        if self._report and self._expected and now - self._reported >= REPORT_EVERY:
            self._reported = now
            self._report({"progress": min(self._calls, self._expected), "of": self._expected})
