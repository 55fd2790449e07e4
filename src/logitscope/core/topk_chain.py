"""The sampler chain on a distribution known only by its top k (a remote server, ``TopKBackend``).

A top-k backend gives the K most likely next tokens with exact log-probs; the other
``unknown`` tokens are not seen. What is still known about them:

    every unknown token has p <= u = min(p_K, r)        p_K: the smallest known probability
    together they hold r = 1 - Σ known p                  (the remaining mass, ± MASS_SLACK)

A chain stage can be run on the known tokens alone when it provably removes every
unknown token (or they are already gone); its effect on the known tokens is then the
processor's own (``core.processors``), run on the known logits in token-id order so that
ties break exactly as over the whole vocabulary (lowest id first):

    greedy (T=0)   keeps the argmax, which is known (a tie with an unseen token cannot be
                   seen: the known token wins)
    top-k k'       unknown tokens removed iff log u < the k'-th known logit (k' <= K)
    min-p m        unknown tokens removed iff log u < log p_max + log m (p_max is known)
    top-p p        every known token's "mass ahead" is bounded with the unknown mass
                   after temperature (``_unknown_weight``); the nucleus must be certain
                   and end before any unknown token could come
    temperature    scales the known logits and the bounds on the unknown tokens
    bias, repetition penalty
                   never: a bias may lift an unseen token, and the penalty needs the raw
                   logits' signs, which log-probs do not give

``chain_on_top_k`` returns the processed logits over the known tokens, or the reason the
processed distribution may reach beyond them (the caller raises ``CapabilityError``). Pure:
no models, no backends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import mathops
from .processors import NEG_INF, TOP_P_TOLERANCE, SamplerConfig, min_p, temperature, top_k, top_p

MASS_SLACK = 1e-6  # the remaining mass is known to within this (servers send float32 log-probs)


@dataclass
class _Unknown:
    """Bounds on the tokens outside the top K, in the scale of the current logits."""

    log_each: float  # every unknown token's logit is at most this
    log_total: tuple[float, float]  # (low, high) bounds on log Σ exp(unknown logits)


def unknown_bounds(logprobs: torch.Tensor) -> tuple[float, float, float]:
    """(log u, r_low, r_high) for known log-probs (K,): the per-token bound and the remaining mass."""
    r = float(mathops.remaining_mass(logprobs))
    high = r + MASS_SLACK
    return min(float(logprobs.min()), math.log(high)), max(r - MASS_SLACK, 0.0), high


def static_refusal(config: SamplerConfig) -> str | None:
    """Why ``config`` can never run on a top-k distribution, or None."""
    if config.bias:
        return "a logit bias (it may lift a token outside the top k)"
    if config.repetition_penalty != 1.0:
        return "a repetition penalty (it needs the raw logits, not log-probs)"
    if not config.is_greedy and config.top_k is None and config.top_p >= 1.0 and config.min_p == 0.0:
        return "sampling from the whole distribution (set top-k, top-p or min-p, or temperature 0)"
    return None


def chain_on_top_k(logprobs: torch.Tensor, config: SamplerConfig,
                   unknown: int | None) -> tuple[torch.Tensor | None, str | None]:
    """Processed logits (K,) over the known tokens (``logprobs`` (K,), in token-id order), or
    (None, why) when the processed distribution may keep a token outside them.

    ``unknown`` is the number of tokens outside the top K (None when the vocabulary size is
    not known; 0 when the known tokens are the whole vocabulary).
    """
    why = static_refusal(config)
    if why:
        return None, why
    x = logprobs.double()[None]  # (1, K)
    log_u, r_low, r_high = unknown_bounds(logprobs.double())
    rest = None if unknown == 0 else _Unknown(log_u, (_log(r_low), _log(r_high)))
    if config.temperature != 1.0:
        x = temperature(config.temperature)(None, x)
        if config.is_greedy:
            rest = None  # only the (known) argmax survives
        elif rest is not None:
            rest = _after_temperature(log_u, r_low, r_high, unknown, 1.0 / config.temperature)
    for stage in _truncations(config):
        x, rest, note = stage(x, rest)
        if x is None:
            return None, note  # the stage itself cannot be settled
        why = note or why
    if rest is not None:
        return None, why or "the chain may keep tokens outside the top k"
    return x[0], None


def _truncations(config: SamplerConfig) -> list:
    """The truncating stages of ``config``, in chain order, as (x, rest) -> (x, rest, note)."""
    out = []
    if config.top_k is not None:
        k = config.top_k
        out.append(lambda x, rest: _cut(x, rest, top_k(k), _kth(x, k), f"top-k {k}"))
    if config.top_p < 1.0:
        out.append(lambda x, rest: _top_p(x, rest, config.top_p))
    if config.min_p > 0.0:
        m = config.min_p
        out.append(lambda x, rest: _cut(x, rest, min_p(m), float(x.max()) + math.log(m), f"min-p {m:g}"))
    return out


def _log(v: float) -> float:
    return math.log(v) if v > 0 else NEG_INF


def _kth(x: torch.Tensor, k: int) -> float:
    """The k-th largest known logit; -inf when fewer than k are known (unknown tokens then survive)."""
    return float(x[0].topk(k).values[-1]) if k <= x.shape[-1] else NEG_INF


def _after_temperature(log_u: float, r_low: float, r_high: float, n: int | None, a: float) -> _Unknown:
    """Bounds on Σ p^a over the unknown tokens (each p <= u, Σ p in [r_low, r_high], n of them).

    a >= 1 (T <= 1, x^a convex):  n (r_low / n)^a  <=  Σ p^a  <=  r_high · u^(a-1)
    a <  1 (T > 1, concave):      r_low · u^(a-1)  <=  Σ p^a  <=  n^(1-a) r_high^a
    (the extreme cases: mass spread evenly over all n, or packed into tokens of p = u);
    an unknown n makes the even-spread side 0 or infinite.
    """
    packed_low, packed_high = _log(r_low) + (a - 1) * log_u, _log(r_high) + (a - 1) * log_u
    if n is None:
        spread_low, spread_high = NEG_INF, math.inf
    else:
        spread_low = math.log(n) + a * (_log(r_low) - math.log(n))
        spread_high = math.log(n) + a * (_log(r_high) - math.log(n))
    bounds = (spread_low, packed_high) if a >= 1 else (packed_low, spread_high)
    return _Unknown(a * log_u, bounds)


def _cut(x: torch.Tensor, rest: _Unknown | None, stage, threshold: float, name: str):
    """A stage that keeps the known tokens with logit >= ``threshold`` (top-k, min-p): run it on
    the known logits; unknown tokens are gone iff each is below the threshold."""
    x = stage(None, x)
    if rest is None or rest.log_each < threshold:
        return x, None, None
    return x, _Unknown(rest.log_each, (NEG_INF, rest.log_total[1])), \
        f"{name} may keep tokens outside the top k (k={x.shape[-1]})"


def _top_p(x: torch.Tensor, rest: _Unknown | None, p: float):
    """Nucleus over the known tokens, with the unknown mass bounded; certain or refused."""
    if rest is None:
        return top_p(p)(None, x), None, None
    m = float(x.max())
    w = (x[0] - m).exp()  # (K,) known weights, largest 1
    order = torch.sort(w, descending=True, stable=True).indices  # ties: lower id first, as top_p does
    ahead = torch.zeros_like(w).scatter(0, order, w[order].cumsum(0) - w[order])  # (K,) known mass ahead
    z_low = float(w.sum()) + math.exp(min(rest.log_total[0] - m, 700.0))
    z_high = float(w.sum()) + math.exp(min(rest.log_total[1] - m, 700.0))
    edge = p - TOP_P_TOLERANCE
    kept, dropped = ahead / z_low < edge, ahead / z_high >= edge  # certain either way
    kept[order[0]], dropped[order[0]] = True, False  # the most likely token survives any p (as top_p)
    above = float(w[w > math.exp(rest.log_each - m)].sum())  # known tokens ahead of every unknown one
    if not bool((kept | dropped).all()) or above / z_high < edge:
        return None, rest, (f"top-p {p:g} cannot be settled from the top k (k={x.shape[-1]}): "
                         "the known tokens hold too little of the mass")
    return x.masked_fill(~kept[None], NEG_INF), None, None
