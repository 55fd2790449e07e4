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
from ..core import mathops
from ..core.boundary import encode, plan_windows
from ..errors import InputError
from ..results import ScoreResult
from ..scoring.score import _score_result, candidates, next_token_after
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


def position_distribution(backend: Backend, ids: list[int], top: int, token_id: int | None = None) -> dict:
    """The next-token distribution after ``ids`` (the last context's worth of them): ``Model.next_token``'s
    numbers (``next_token_after``), with the cumulative mass of its top entries; with ``token_id`` also
    that token's own row as ``read`` (its probability and rank, even far beyond the top)."""
    if not ids:
        raise InputError("no tokens before this position", hint="pick a scored token")
    seen = ids[-(backend.capabilities.context_length - 1):]  # the tokens a window can hold before the target
    with torch.inference_mode():
        result = next_token_after(backend, seen, "", top_k=top)
    mass = torch.tensor([c.logprob for c in result.top], dtype=torch.float64).exp().cumsum(0).tolist()
    out = {"prefix_tokens": len(seen), "truncated": len(seen) < len(ids), "entropy": result.entropy,
           "top_k_only": result.top_k_only,
           "top": [{**c.to_dict(), "cumulative": m} for c, m in zip(result.top, mass)]}
    if token_id is not None:
        out["read"] = read_row(backend, result, token_id)
    return out


def read_row(backend: Backend, result, token_id: int) -> dict | None:
    """The row of ``token_id`` in a NextTokenResult: its log-prob and rank (1 + the tokens above it);
    None on a top-k-only backend when the token is not among the known ones."""
    if not 0 <= token_id < backend.vocab_size:
        raise InputError(f"token id {token_id} is not in the vocabulary", hint=f"use an id in [0, {backend.vocab_size - 1}]")
    if result.logprobs is None:
        return next((c.to_dict() for c in result.top if c.token_id == token_id), None)
    ids = torch.tensor([token_id])
    rank = int(mathops.rank_of(result.logprobs, ids[0]))
    return candidates(backend, ids, result.logprobs[ids].double(), first_rank=rank)[0].to_dict()
