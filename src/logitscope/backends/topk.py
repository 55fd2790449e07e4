"""A top-k-only view of another backend: what a remote server with ``max_logprobs=k`` gives.

    TopKBackend(inner, k)    next_top_k, score_positions and nll_sums as ``inner`` computes
                             them, but every distribution reduced to its k most likely
                             entries: rank k+1 stands for "beyond the top k", entropy is
                             the lower bound from the top k and the remaining mass.
                             next_logits (the full vocabulary) raises CapabilityError.

It lets every analysis be tested against the top-k contract without a server, and shows
what a user would lose by pointing logitscope at such an endpoint.
"""

from __future__ import annotations

import torch

from ..core import mathops
from ..errors import CapabilityError, InputError
from .base import Backend, Capabilities, PositionScores, Tokenized, missing_capability


def limit_to_top_k(scores: PositionScores, k: int, keep: int) -> PositionScores:
    """Reduce full-vocabulary scores (with >= k alternatives) to what a top-k server reports."""
    top = scores.top_logprobs[:, :k]  # (N, k)
    return PositionScores(
        logprob=scores.logprob,
        rank=torch.where(scores.rank > k, torch.full_like(scores.rank, k + 1), scores.rank),
        entropy=mathops.entropy_lower_bound(top) if top.shape[-1] else torch.full_like(scores.entropy, float("nan")),
        top_ids=scores.top_ids[:, :keep], top_logprobs=scores.top_logprobs[:, :keep])


class TopKBackend(Backend):
    """Only the top ``k`` of ``inner``'s next-token distributions are visible."""

    def __init__(self, inner: Backend, k: int):
        if k < 1:
            raise InputError(f"k={k} is out of range", hint="a top-k view needs k >= 1")
        self.inner, self.k = inner, k
        self.name = f"{inner.name} (top-{k} only)"
        self.engine, self.dtype = inner.engine, inner.dtype
        self.vocab_size = inner.vocab_size
        self.bos_token_id, self.eos_token_id = inner.bos_token_id, inner.eos_token_id
        self.adds_bos_by_default = inner.adds_bos_by_default
        self.capabilities = Capabilities(full_vocab=False, top_k_only=k,
                                         context_length=inner.capabilities.context_length)

    def tokenize(self, text: str) -> Tokenized:
        return self.inner.tokenize(text)

    def detokenize(self, ids: list[int]) -> str:
        return self.inner.detokenize(ids)

    def token_text(self, token_id: int) -> str:
        return self.inner.token_text(token_id)

    def next_logits(self, prefixes: list[list[int]]) -> torch.Tensor:
        raise missing_capability(self, "full_vocab", "the full next-token distribution")

    def next_top_k(self, prefixes: list[list[int]], k: int) -> tuple[torch.Tensor, torch.Tensor]:
        check_top_k(self, k)
        return self.inner.next_top_k(prefixes, k)

    def score_positions(self, sequences: list[list[int]], starts: list[int], top_k: int = 0) -> list[PositionScores]:
        check_top_k(self, top_k)
        return [limit_to_top_k(s, self.k, top_k) for s in self.inner.score_positions(sequences, starts, self.k)]

    def nll_sums(self, sequences: list[list[int]], starts: list[int]) -> list[float]:
        return self.inner.nll_sums(sequences, starts)  # the chosen tokens' log-probs are always returned


def check_top_k(backend: Backend, top_k: int) -> None:
    """A top-k-only backend cannot list more alternatives than it sees."""
    k = backend.capabilities.top_k_only
    if k is not None and top_k > k:
        raise CapabilityError(f"{top_k} alternatives asked for, but {backend.name} returns at most {k}",
                              hint=f"ask for at most {k}, or use a model with the full vocabulary")
