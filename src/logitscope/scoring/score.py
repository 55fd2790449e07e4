"""Next-token distributions and per-token scoring, written once against Backend."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..backends.base import Backend, PositionScores, require
from ..backends.topk import check_top_k
from ..core import mathops
from ..core.boundary import Encoded, check_fits, encode, plan_windows, prompt_ids, resolve_window
from ..errors import InputError, check_range, check_sequence
from ..results import NextTokenResult, ScoreResult, TokenCandidate, TokenScore


def candidates(backend: Backend, ids: torch.Tensor, logprobs: torch.Tensor,
               logits: torch.Tensor | None = None, first_rank: int = 1) -> tuple[TokenCandidate, ...]:
    """TokenCandidates for parallel rows of ids and log-probs (ranks counted from ``first_rank``)."""
    return tuple(
        TokenCandidate(int(i), backend.token_text(int(i)), float(lp), first_rank + r,
                       None if logits is None else float(logits[r]))
        for r, (i, lp) in enumerate(zip(ids.tolist(), logprobs.tolist())))


def next_token(backend: Backend, prompt: str, top_k: int = 10, temperature: float = 1.0,
               bos: str | bool = "auto") -> NextTokenResult:
    """The distribution over the token after ``prompt``, with its top-k entries.

    On a top-k-only backend the table comes from the backend's top k, the entropy is
    a lower bound, and the result's ``top_k_only`` says so; a temperature other than
    1 needs the full vocabulary (renormalising beyond k would invent numbers).
    """
    return next_token_after(backend, prompt_ids(backend, prompt, bos), prompt, top_k, temperature)


def next_token_after(backend: Backend, ids: list[int], prompt: str, top_k: int = 10,
                     temperature: float = 1.0) -> NextTokenResult:
    """``next_token`` after given ids (the prefix policy already applied); ``prompt`` is their text."""
    check_range("top_k", top_k, 1, None)
    check_range("temperature", temperature, 0, None, low_open=True)
    check_fits(backend, len(ids) + 1, "the prompt plus the token to predict", "shorten the prompt")
    if not backend.capabilities.full_vocab:
        return _next_token_top_k(backend, prompt, ids, top_k, temperature)
    logits = backend.next_logits([ids])[0].float()  # (V,)
    logprobs = mathops.log_softmax(logits, temperature=temperature)  # (V,)
    top = logprobs.topk(min(top_k, logprobs.shape[0]))
    return NextTokenResult(prompt, tuple(ids), temperature, float(mathops.entropy(logprobs)),
                           candidates(backend, top.indices, top.values, logits[top.indices]), logprobs)


def _next_token_top_k(backend: Backend, prompt: str, ids: list[int], top_k: int,
                      temperature: float) -> NextTokenResult:
    if temperature != 1.0:
        require(backend, "full_vocab", "a temperature other than 1")
    k = backend.capabilities.top_k_only
    check_top_k(backend, top_k)
    top_ids, top_lps = backend.next_top_k([ids], k)  # (1, k): all k for the entropy bound
    entropy = float(mathops.entropy_lower_bound(top_lps[0]))
    return NextTokenResult(prompt, tuple(ids), temperature, entropy,
                           candidates(backend, top_ids[0, :top_k], top_lps[0, :top_k]), None, top_k_only=k)


def score_texts(backend: Backend, texts: Sequence[str], contexts: Sequence[str | None] | None = None,
                top_k: int = 5, bos: str | bool = "auto", window: int | None = None,
                stride: int | None = None) -> list[ScoreResult]:
    """Score many texts in one batched pass; texts longer than ``window`` (default:
    the model's context) are scored in overlapping windows, each token once."""
    check_range("top_k", top_k, 0, None)
    check_sequence("texts", texts)
    check_sequence("contexts", contexts)
    contexts = list(contexts) if contexts is not None else [None] * len(texts)
    if len(contexts) != len(texts):
        raise InputError("texts and contexts differ in length", hint="give one context per text (or None)")
    check_top_k(backend, top_k)
    window = resolve_window(backend, window)
    encoded = [encode(backend, t, c, bos) for t, c in zip(texts, contexts)]
    jobs = [(i, w) for i, e in enumerate(encoded) for w in plan_windows(len(e.ids), e.score_from, window, stride)]
    scores = backend.score_positions([encoded[i].ids[w.begin:w.end] for i, w in jobs],
                                     [w.first_target - w.begin for _, w in jobs], top_k)
    per_text: list[list[PositionScores]] = [[] for _ in encoded]
    for (i, _), s in zip(jobs, scores):
        per_text[i].append(s)
    return [_score_result(backend, e, PositionScores.concat(p), len(p)) for e, p in zip(encoded, per_text)]


def _score_result(backend: Backend, enc: Encoded, s: PositionScores, num_windows: int) -> ScoreResult:
    tokens = []
    for pos, (tid, (start, end), role) in enumerate(zip(enc.ids, enc.offsets, enc.roles)):
        text = backend.token_text(tid)
        if pos < enc.score_from:
            tokens.append(TokenScore(pos, tid, text, start, end, role=role))
            continue
        r = pos - enc.score_from
        tokens.append(TokenScore(
            pos, tid, text, start, end, logprob=float(s.logprob[r]), rank=int(s.rank[r]),
            entropy=float(s.entropy[r]), alternatives=candidates(backend, s.top_ids[r], s.top_logprobs[r]),
            role=role))
    return ScoreResult(enc.text, enc.context, tuple(enc.ids), tuple(tokens), enc.prefix_token_id,
                       enc.first_token_scored, enc.boundary_merged, num_windows,
                       top_k_only=backend.capabilities.top_k_only)
