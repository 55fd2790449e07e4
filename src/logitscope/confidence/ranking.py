"""Rank alternative completions of one prompt, with the prompt run once.

Every candidate goes through ``boundary.encode(prompt, candidate)`` — the same
rule as ``score(candidate, context=prompt)`` — so a candidate whose first token
merges with the end of the prompt (``"I like apple" + "s"`` -> `` apples``) is
scored over the merged token, and the result says so.

Prefix reuse. The ids before each candidate's first scored token usually agree;
the longest prefix that *all* candidates share is prefilled once and its KV cache
reused for every candidate (``Backend.score_continuations``):

    prompt+cand A   [p] I  like  apple | pie          shared prefix: [p] I like
    prompt+cand B   [p] I  like  apples               A re-runs ' apple' (unscored),
                    '-----------'                     B scores ' apples' (merged)

Normalisations (higher is better for all): ``sum`` of log-probs, ``mean`` per
token, ``per_byte`` and ``per_char`` of the scored span, and ``pmi`` =
log p(span | prompt) - log p(span | prefix token only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..backends.base import Backend, PositionScores
from ..core.boundary import Encoded, check_fits, encode, prefix_token_id, require_text
from ..errors import InputError, check_range
from ..results import ResultMixin, ScoreResult
from ..scoring.score import _score_result, score_texts

NORMALISATIONS = ("sum", "mean", "per_byte", "per_char", "pmi")


@dataclass(frozen=True)
class CandidateScore(ResultMixin):
    """One candidate continuation: its scores as ``score(candidate, context=prompt)`` gives them."""

    candidate: str  # as given by the caller
    result: ScoreResult  # per-token detail, same boundary rule as Model.score(context=...)
    unconditional_logprob: float | None  # log p(span | prefix token), None when not computed
    reused_tokens: int  # ids taken from the shared prompt KV cache

    @property
    def span(self) -> str:
        """The text the scored tokens cover (starts inside the prompt when a token merged)."""
        return scored_span(self.result)

    @property
    def total_logprob(self) -> float:
        return self.result.total_logprob

    @property
    def num_tokens(self) -> int:
        return self.result.num_scored

    def score(self, normalisation: str) -> float | None:
        """The candidate's score under one of NORMALISATIONS (natural-log units)."""
        total = self.total_logprob
        if normalisation == "sum":
            return total
        if normalisation == "mean":
            return total / self.num_tokens
        if normalisation == "per_byte":
            return total / len(self.span.encode("utf-8"))
        if normalisation == "per_char":
            return total / len(self.span)
        if normalisation == "pmi":
            return None if self.unconditional_logprob is None else total - self.unconditional_logprob
        raise InputError(f"unknown normalisation {normalisation!r}", hint=f"use one of {', '.join(NORMALISATIONS)}")

    def to_dict(self) -> dict:
        return {"candidate": self.candidate, "span": self.span, "num_tokens": self.num_tokens,
                "boundary_merged": self.result.boundary_merged, "reused_tokens": self.reused_tokens,
                "unconditional_logprob": self.unconditional_logprob,
                "scores": {n: self.score(n) for n in NORMALISATIONS},
                "tokens": [t.to_dict() for t in self.result.scored_tokens]}


@dataclass(frozen=True)
class RankResult(ResultMixin):
    """Candidates in the order given, with their ranking under every normalisation."""

    prompt: str
    candidates: tuple[CandidateScore, ...]
    shared_prefix_tokens: int  # ids prefilled once (0: every candidate ran a full pass)
    notes: tuple[str, ...] = ()  # boundary facts worth a user's attention
    normalisations = NORMALISATIONS  # every score a candidate has, in display order

    def order(self, normalisation: str = "sum") -> list[int]:
        """Candidate indices, best first (ties keep input order; a missing score sorts last)."""
        scores = [c.score(normalisation) for c in self.candidates]
        return sorted(range(len(scores)), key=lambda i: -math.inf if scores[i] is None else -scores[i])

    def best(self, normalisation: str = "sum") -> CandidateScore:
        return self.candidates[self.order(normalisation)[0]]

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "shared_prefix_tokens": self.shared_prefix_tokens, "notes": list(self.notes),
                "candidates": [c.to_dict() for c in self.candidates],
                "order": {n: self.order(n) for n in NORMALISATIONS}}

    def _rows(self) -> list[dict]:
        rows = []
        for i, c in enumerate(self.candidates):
            row = {"index": i, "candidate": c.candidate, "num_tokens": c.num_tokens,
                   "boundary_merged": c.result.boundary_merged}
            row.update({n: c.score(n) for n in NORMALISATIONS})
            row.update({f"rank_{n}": self.order(n).index(i) + 1 for n in NORMALISATIONS})
            rows.append(row)
        return rows


def rank(backend: Backend, prompt: str, candidates: Sequence[str], top_k: int = 0, bos: str | bool = "auto",
         unconditional: bool = True, reuse_prefix: bool = True) -> RankResult:
    """Score each candidate as a continuation of ``prompt`` and rank them.

    ``reuse_prefix=False`` runs one independent full pass per candidate (the
    reference path the KV-reuse path is tested against).
    """
    check_range("top_k", top_k, 0, None)
    require_text(prompt, "prompt")
    cands = check_candidates(candidates)
    encoded = [encode(backend, c, prompt, bos) for c in cands]
    for i, e in enumerate(encoded):
        check_fits(backend, len(e.ids), f"prompt + candidate {i}", "shorten the prompt (ranking does not window)")
    shared = shared_prefix(encoded) if reuse_prefix and backend.capabilities.kv_cache else []
    scores = _scores_with_prefix(backend, encoded, shared, top_k) if shared else \
        backend.score_positions([e.ids for e in encoded], [e.score_from for e in encoded], top_k)
    results = [_score_result(backend, e, s, 1) for e, s in zip(encoded, scores)]
    uncond = _unconditional(backend, results) if unconditional else [None] * len(results)
    scored = tuple(CandidateScore(c, r, u, len(shared)) for c, r, u in zip(cands, results, uncond))
    return RankResult(prompt, scored, len(shared), tuple(boundary_notes(prompt, scored)))


def check_candidates(candidates: Sequence[str]) -> list[str]:
    """At least one non-blank string, no exact duplicates (a duplicate would only tie with itself)."""
    if isinstance(candidates, str):
        raise InputError("candidates must be a list of strings, not one string", hint="e.g. [' Paris', ' Lyon']")
    cands = list(candidates)
    if not cands:
        raise InputError("no candidates to rank", hint="give at least one candidate (-c TEXT)")
    seen: dict[str, int] = {}
    for i, c in enumerate(cands):
        if not isinstance(c, str) or not c.strip():
            raise InputError(f"candidate {i} is empty or only whitespace", hint="every candidate needs visible text")
        if c in seen:
            raise InputError(f"candidate {i} {c!r} duplicates candidate {seen[c]}", hint="remove the duplicate")
        seen[c] = i
    return cands


def shared_prefix(encoded: Sequence[Encoded]) -> list[int]:
    """Longest run of ids every candidate has before its first scored token."""
    heads = [e.ids[: e.score_from] for e in encoded]
    n = 0
    while all(len(h) > n for h in heads) and len({h[n] for h in heads}) == 1:
        n += 1
    return list(heads[0][:n])


def _scores_with_prefix(backend: Backend, encoded: Sequence[Encoded], shared: list[int],
                        top_k: int) -> list[PositionScores]:
    """Prefill ``shared`` once, score every candidate's remaining ids after it, and
    drop the rows of ids that are re-run but not scored (prompt tokens past ``shared``)."""
    state = backend.prefill(shared)
    rest = [e.ids[len(shared):] for e in encoded]
    scores = backend.score_continuations(state, rest, top_k)
    return [_tail(s, e.score_from - len(shared)) for s, e in zip(scores, encoded)]


def _tail(scores: PositionScores, skip: int) -> PositionScores:
    fields = ("logprob", "rank", "entropy", "top_ids", "top_logprobs")
    return PositionScores(*(getattr(scores, f)[skip:] for f in fields))


def scored_span(result: ScoreResult) -> str:
    """The part of context + text that the scored tokens cover."""
    toks = result.scored_tokens
    return ((result.context or "") + result.text)[toks[0].start: toks[-1].end]


def _unconditional(backend: Backend, results: Sequence[ScoreResult]) -> list[float | None]:
    """log p(span | prefix token) for every candidate's scored span, in one batch."""
    if prefix_token_id(backend) is None:
        return [None] * len(results)
    spans = [scored_span(r) for r in results]
    return [r.total_logprob for r in score_texts(backend, spans, top_k=0, bos=True)]


def boundary_notes(prompt: str, scored: Sequence[CandidateScore]) -> list[str]:
    """Say which candidates merged with the prompt end and which became the same scored span."""
    notes = []
    for i, c in enumerate(scored):
        if c.result.boundary_merged:
            notes.append(f"candidate {i} {c.candidate!r}: its first token merges with the end of the prompt; "
                         f"scored span {c.span!r}")
    by_span: dict[tuple[int, ...], list[int]] = {}
    for i, c in enumerate(scored):
        by_span.setdefault(tuple(t.token_id for t in c.result.scored_tokens), []).append(i)
    for same in (v for v in by_span.values() if len(v) > 1):
        notes.append(f"candidates {same} are the same tokens after the boundary rule "
                     f"(trailing prompt whitespace moves into the candidate); they tie")
    by_stripped: dict[str, list[int]] = {}
    for i, c in enumerate(scored):
        by_stripped.setdefault(c.candidate.lstrip(), []).append(i)
    for same in (v for v in by_stripped.values() if len(v) > 1):
        spans = ", ".join(repr(scored[i].span) for i in same)
        notes.append(f"candidates {same} differ only in leading whitespace; scored spans: {spans}")
    if len(scored) == 1:
        notes.append("only one candidate: the ranking is trivial")
    return notes
