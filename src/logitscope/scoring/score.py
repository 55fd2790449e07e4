"""Next-token distributions and per-token scoring, written once against Backend."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..core import mathops
from ..backends.base import Backend, PositionScores
from ..core.boundary import Encoded, encode, plan_windows, prefix_token_id, require_text, wants_prefix
from ..errors import InputError, check_range, check_sequence
from ..results import NextTokenResult, ScoreResult, TokenCandidate, TokenScore


def candidates(backend: Backend, ids: torch.Tensor, logprobs: torch.Tensor,
               logits: torch.Tensor | None = None, first_rank: int = 1) -> tuple[TokenCandidate, ...]:
    """TokenCandidates for parallel rows of ids and log-probs (ranks counted from ``first_rank``)."""
    return tuple(
        TokenCandidate(int(i), backend.token_text(int(i)), float(lp), first_rank + r,
                       None if logits is None else float(logits[r]))
        for r, (i, lp) in enumerate(zip(ids.tolist(), logprobs.tolist())))


def prompt_ids(backend: Backend, prompt: str, bos: str | bool = "auto") -> list[int]:
    """Ids the model sees for a prompt whose next token is wanted (prefix policy applied)."""
    require_text(prompt, "prompt")
    lead = [prefix_token_id(backend)] if wants_prefix(backend, bos) and prefix_token_id(backend) is not None else []
    return lead + backend.tokenize(prompt).ids


def next_token(backend: Backend, prompt: str, top_k: int = 10, temperature: float = 1.0,
               bos: str | bool = "auto") -> NextTokenResult:
    """The distribution over the token after ``prompt``, with its top-k entries."""
    check_range("top_k", top_k, 1, None)
    check_range("temperature", temperature, 0, None, low_open=True)
    ids = prompt_ids(backend, prompt, bos)
    _check_fits(backend, len(ids) + 1)
    logits = backend.next_logits([ids])[0].float()  # (V,)
    logprobs = mathops.log_softmax(logits, temperature=temperature)  # (V,)
    top = logprobs.topk(min(top_k, logprobs.shape[0]))
    return NextTokenResult(prompt, tuple(ids), temperature, float(mathops.entropy(logprobs)),
                           candidates(backend, top.indices, top.values, logits[top.indices]), logprobs)


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
    limit = backend.capabilities.context_length
    window = check_range("window", limit if window is None else window, 2, limit)  # perplexity's rule too
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
                       enc.first_token_scored, enc.boundary_merged, num_windows)


def _check_fits(backend: Backend, n: int) -> None:
    limit = backend.capabilities.context_length
    if n > limit:
        raise InputError(f"the prompt needs {n} positions but the model's context is {limit}",
                         hint="shorten the prompt")
