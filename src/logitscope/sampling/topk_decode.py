"""Decoding positions of a top-k-only backend (a remote server, ``TopKBackend``).

``DecodeSession`` (session.py) decodes such a backend one position at a time; each position
asks the backend for the top K next tokens after everything so far:

    backend.next_top_k([prompt + generated], K)      one call per step: there is no KV cache,
                                                     so a remote server is sent the whole
                                                     prefix again (as token ids where it takes them)
    known tokens, in token-id order
        -> core.topk_chain.chain_on_top_k            the processed logits over the known K, or
                                                     CapabilityError naming why they may not do
    Sampler.choose on a vocabulary-sized row         so a seed draws as it would over the full
                                                     distribution (same processed probabilities)

Exact: the chosen token's log-prob and rank (the chosen token is always among the known),
its processed log-prob, the survivors, the alternatives (the top k). A bound: the entropy,
``mathops.entropy_lower_bound`` of the known K, recorded with the remaining mass beside it.
Greedy always works (the argmax is known); sampling works where the chain provably keeps
no token outside the top K (``core.topk_chain``).
"""

from __future__ import annotations

import torch

from ..backends.base import Backend
from ..core.processors import SamplerConfig
from ..core.topk_chain import chain_on_top_k, static_refusal
from ..errors import CapabilityError
from .positions import TopKPosition


def check_sampler(backend: Backend, config: SamplerConfig) -> None:
    """Refuse, before any call, a chain that can never run on a top-k distribution."""
    why = static_refusal(config)
    if why:
        raise refusal(backend, why)


def top_k_position(backend: Backend, config: SamplerConfig, history: list[int],
                   step: int | None = None) -> TopKPosition:
    """The next token after ``history`` from the backend's top k (one ``next_top_k`` call), processed by
    ``config`` where that provably stays inside the known tokens; ``step`` names the step in a refusal."""
    k = backend.capabilities.top_k_only
    known_ids, known_lps = known_next(backend, history, k)  # (K,), (K,) in id order
    processed, why = chain_on_top_k(known_lps, config, unknown_count(backend, len(known_ids)))
    if processed is None:
        raise refusal(backend, why, step)
    return TopKPosition(known_ids, known_lps, processed, backend.vocab_size or 0)


def known_next(backend: Backend, history: list[int], k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The top ``k`` next tokens after ``history`` in token-id order: ids (K,) and log-probs (K,)."""
    ids, logprobs = backend.next_top_k([list(history)], k)  # (1, K) each, likeliest first
    order = ids[0].argsort()  # id order, so the processors break ties as over the whole vocabulary
    return ids[0][order], logprobs[0][order].double()


def unknown_count(backend: Backend, known: int) -> int | None:
    """Tokens outside the known ones (None when the backend does not know its vocabulary size)."""
    return max(backend.vocab_size - known, 0) if backend.vocab_size else None


def refusal(backend: Backend, why: str, step: int | None = None) -> CapabilityError:
    k = backend.capabilities.top_k_only
    where = "" if step is None else f" (step {step})"
    return CapabilityError(
        f"cannot sample from the top {k} log-probs of {backend.name}{where}: {why}; renormalising beyond the "
        f"top {k} needs full vocab",
        hint=f"use temperature 0 (greedy), top-k <= {k}, a top-p the known tokens reach, or a min-p that leaves "
             "out every unseen token; or a model with the full vocabulary")
