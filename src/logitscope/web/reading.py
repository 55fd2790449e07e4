"""Reading a text: the scores, the summary line, the uncertain spans, one position's distribution.

Every number is the library's: ``score_texts`` (what ``Model.score`` runs, windowed
when the text is longer than the model's context), ``flag_uncertain`` (what
``Model.uncertain`` runs) and ``next_token_after`` (what ``Model.next_token`` runs)
at a position.
"""

from __future__ import annotations

import torch

from ..backends.base import Backend, PositionScores
from ..confidence.uncertainty import flag_uncertain
from ..core.boundary import encode, plan_windows
from ..errors import InputError
from ..results import ScoreResult
from ..scoring.score import _score_result, next_token_after
from ..server.engine import Stepper


class WindowedRead(Stepper):
    """``Model.score(text, context, top_k)`` one window per ``step``, so a long text shows progress,
    can be cancelled between windows, and other requests are served in between. Same encoding
    and windows as ``score_texts`` (``boundary.encode`` / ``plan_windows`` over the model's context)."""

    def __init__(self, backend: Backend, text: str, context: str | None, top_k: int, report=None):
        if not text.strip():
            raise InputError("the text is empty", hint="paste or drop a text to read")
        self.top_k, self.report = top_k, report
        self.enc = encode(backend, text, context or None)
        self.windows = plan_windows(len(self.enc.ids), self.enc.score_from, backend.capabilities.context_length)
        self.parts: list[PositionScores] = []

    def step(self, backend: Backend) -> bool:
        w = self.windows[len(self.parts)]
        with torch.inference_mode():
            self.parts += backend.score_positions([self.enc.ids[w.begin:w.end]], [w.first_target - w.begin], self.top_k)
        if self.report:
            self.report({"progress": len(self.parts), "of": len(self.windows), "tokens": len(self.enc.ids)})
        return len(self.parts) == len(self.windows)

    def result(self, backend: Backend) -> ScoreResult:
        return _score_result(backend, self.enc, PositionScores.concat(self.parts), len(self.parts))


def read_view(backend: Backend, result: ScoreResult, max_prob_below: float | None,
              entropy_above: float | None) -> dict:
    """The page's JSON for a scored text: scores, uncertain spans (``Model.uncertain``'s rule), notes."""
    flags = flag_uncertain(result, max_prob_below, entropy_above)
    return {"score": result.to_dict(), "uncertain": [s.to_dict() for s in flags.spans],
            "flagged": list(flags.flagged), "notes": window_notes(backend, result)}


def window_notes(backend: Backend, result: ScoreResult) -> list[str]:
    if result.num_windows == 1:
        return []
    limit = backend.capabilities.context_length
    return [f"the text is {len(result.input_ids)} tokens long, over the model's context of {limit}: "
            f"it was scored in {result.num_windows} overlapping windows (each token once, with up to "
            f"{limit - 1} tokens before it)"]


def position_distribution(backend: Backend, ids: list[int], top: int) -> dict:
    """The next-token distribution after ``ids`` (the last context's worth of them): ``Model.next_token``'s
    numbers (``next_token_after``), with the cumulative mass of its top entries."""
    if not ids:
        raise InputError("no tokens before this position", hint="pick a scored token")
    seen = ids[-(backend.capabilities.context_length - 1):]  # the tokens a window can hold before the target
    with torch.inference_mode():
        result = next_token_after(backend, seen, "", top_k=top)
    mass = torch.tensor([c.logprob for c in result.top], dtype=torch.float64).exp().cumsum(0).tolist()
    return {"prefix_tokens": len(seen), "truncated": len(seen) < len(ids), "entropy": result.entropy,
            "top_k_only": result.top_k_only,
            "top": [{**c.to_dict(), "cumulative": m} for c, m in zip(result.top, mass)]}
