"""Speculative decoding with exact verification: cheap drafts, the model's own choices.

A drafter guesses the next few tokens; the model then runs ONE forward over
``[chosen token] + draft`` (a k-row forward costs little more than a one-row
decode step when the weights, not the arithmetic, are the bottleneck) and
every drafted token is accepted or replaced by the rule below, so the output
is distributed exactly as token-by-token decoding from the model:

    draft d at a position whose processed distribution is p:
        greedy   accept iff d is the argmax (otherwise the argmax replaces it)
        sampling accept with probability p(d); otherwise draw from p with d removed

Sampling is the speculative-sampling rule (Leviathan et al. 2023; Chen et al.
2023) for a drafter that proposes one token with certainty (q = point mass at d):
accepted with probability min(1, p(d) / q(d)) = p(d), residual max(0, p - q)
renormalised = p without d. So P(d) = p(d) and, for y != d,
P(y) = (1 - p(d)) * p(y) / (1 - p(d)) = p(y). The first rejection ends the
round; the trace of every emitted token comes from the model's float32 logits.

The drafter here is prompt lookup (Saxena 2023, llama.cpp's ``lookup``): find
the latest earlier occurrence of the last n tokens and propose what followed
it. It costs nothing and is right whenever the text repeats itself, its
prompt, or an earlier phrase.
"""

from __future__ import annotations

import torch

from ..core import mathops
from ..core.processors import Sampler

DRAFT_TOKENS = 6  # tokens proposed per round at most
NGRAM_SIZES = (3, 2)  # the longest tail n-gram that occurred before wins


class PromptLookup:
    """Drafts by matching the last n tokens against earlier text (prompt and generated so far)."""

    def __init__(self, ids: list[int], sizes: tuple[int, ...] = NGRAM_SIZES):
        self.sizes = sizes
        self.ids: list[int] = []
        self.after: dict[tuple[int, ...], int] = {}  # n-gram -> index just past its latest earlier occurrence
        for token in ids:
            self.push(token)

    def push(self, token: int) -> None:
        """Append a token; n-grams ending at the previous token become searchable."""
        end = len(self.ids)  # the previous tail ends just before ``end``
        for n in self.sizes:
            if end >= n:
                self.after[tuple(self.ids[end - n:end])] = end
        self.ids.append(token)

    def propose(self, k: int) -> list[int]:
        """Up to ``k`` tokens that followed the latest earlier occurrence of the longest matching tail."""
        if k <= 0:
            return []
        for n in self.sizes:
            if len(self.ids) > n:
                start = self.after.get(tuple(self.ids[-n:]))
                if start is not None:
                    return self.ids[start:start + k]
        return []


def accepts(sampler: Sampler, processed: torch.Tensor, draft: int) -> bool:
    """The acceptance test for a drafted token under processed logits (V,)."""
    if sampler.config.is_greedy:
        return int(processed.max(dim=-1).indices) == draft
    p = float(mathops.softmax(processed.double())[draft])
    return p > 0 and float(torch.rand((), dtype=torch.float64, generator=sampler.generator)) < p


def draw(sampler: Sampler, processed: torch.Tensor, rejected: int | None = None) -> int:
    """Draw the next token from processed logits (V,); a ``rejected`` draft is left out (the residual)."""
    if rejected is not None and not sampler.config.is_greedy:
        processed = processed.clone()
        processed[rejected] = float("-inf")  # p without the rejected token, renormalised by the softmax
    return int(sampler.choose(processed[None])[0, 0])
