"""Traced generation from a top-k-only backend (a remote server, ``TopKBackend``).

Each step asks the backend for the top K next tokens after everything so far:

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

from collections.abc import Iterator

import torch

from ..backends.base import Backend
from ..core import mathops
from ..core.processors import Sampler
from ..core.topk_chain import chain_on_top_k, static_refusal
from ..errors import CapabilityError
from .speculative import draw


def top_k_steps(backend: Backend, sampler: Sampler, ids: list[int], alternatives: int) -> Iterator[tuple[int, tuple]]:
    """Yield (token, trace record) pairs, one ``next_top_k`` call each; the caller stops."""
    k = backend.capabilities.top_k_only
    why = static_refusal(sampler.config)
    if why:
        raise refusal(backend, why)
    history = list(ids)
    while True:
        known_ids, known_lps = known_next(backend, history, k)  # (K,), (K,) in id order
        processed, why = chain_on_top_k(known_lps, sampler.config, unknown_count(backend, len(known_ids)))
        if processed is None:
            raise refusal(backend, why, step=len(history) - len(ids))
        token = draw(sampler, vocabulary_row(known_ids, processed, backend.vocab_size))
        yield token, _record(known_ids, known_lps, processed, token, alternatives)
        history.append(token)


def known_next(backend: Backend, history: list[int], k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The top ``k`` next tokens after ``history`` in token-id order: ids (K,) and log-probs (K,)."""
    ids, logprobs = backend.next_top_k([list(history)], k)  # (1, K) each, likeliest first
    order = ids[0].argsort()  # id order, so the processors break ties as over the whole vocabulary
    return ids[0][order], logprobs[0][order].double()


def unknown_count(backend: Backend, known: int) -> int | None:
    """Tokens outside the known ones (None when the backend does not know its vocabulary size)."""
    return max(backend.vocab_size - known, 0) if backend.vocab_size else None


def vocabulary_row(known_ids: torch.Tensor, processed: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """The processed logits as a vocabulary-sized row (-inf outside the known tokens)."""
    row = torch.full((max(vocab_size, int(known_ids.max()) + 1),), float("-inf"), dtype=torch.float64)  # (V,)
    row[known_ids] = processed
    return row


def _record(known_ids: torch.Tensor, known_lps: torch.Tensor, processed: torch.Tensor, token: int,
            alternatives: int) -> tuple:
    """The trace record of one step, laid out as generation's ``_record`` plus the remaining mass."""
    at = int((known_ids == token).nonzero()[0, 0])
    top = known_lps.topk(min(alternatives, len(known_lps)))
    return (token, known_lps[at], mathops.log_softmax(processed)[at], (known_lps > known_lps[at]).sum() + 1,
            mathops.entropy_lower_bound(known_lps), torch.isfinite(processed).sum(), known_ids[top.indices],
            top.values, mathops.remaining_mass(known_lps))


def refusal(backend: Backend, why: str, step: int | None = None) -> CapabilityError:
    k = backend.capabilities.top_k_only
    where = "" if step is None else f" (step {step})"
    return CapabilityError(
        f"cannot sample from the top {k} log-probs of {backend.name}{where}: {why}; renormalising beyond the "
        f"top {k} needs full vocab",
        hint=f"use temperature 0 (greedy), top-k <= {k}, a top-p the known tokens reach, or a min-p that leaves "
             "out every unseen token; or a model with the full vocabulary")
