"""Drafts for speculative decoding: prompt lookup.

A drafter guesses the next few tokens; ``DecodeSession`` (session.py) feeds them with
the chosen token in ONE forward (a k-row forward costs little more than a one-row
decode step when the weights, not the arithmetic, are the bottleneck) and keeps each
drafted token only when the sampler's own draw at that position equals it — the
speculative-sampling rule (Leviathan et al. 2023; Chen et al. 2023) for a drafter that
proposes one token with certainty (accepted with probability p(d), otherwise a draw
from p without d), so the output is exactly token-by-token decoding's.

The drafter here is prompt lookup (Saxena 2023, llama.cpp's ``lookup``): find
the latest earlier occurrence of the last n tokens and propose what followed
it. It costs nothing and is right whenever the text repeats itself, its
prompt, or an earlier phrase.
"""

from __future__ import annotations

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
