"""Toy backends for teaching and testing: no neural network, exact numbers.

Two ways to build one (``toydata`` has a ready-made model of each kind):

* ``ToyBackend.from_table`` — a dict from a prefix (tuple of words, starting at
  ``<BOS>``) to a next-word distribution; unknown prefixes predict ``<EOS>``.
* ``ToyBackend.from_ngrams`` — an add-α smoothed n-gram count model trained on
  a list of sentences.

Tokens are whitespace-separated words; every word of a text must be in the
vocabulary (an unknown word is an InputError naming it).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence

import torch

from ..errors import InputError
from .base import Backend, Capabilities, Tokenized

BOS, EOS = "<BOS>", "<EOS>"
_WORD = re.compile(r"\S+")


class ToyBackend(Backend):
    """A backend over a word vocabulary and a function prefix-words -> {word: prob}."""

    name = "toy"
    adds_bos_by_default = True

    def __init__(self, vocab: Sequence[str], dist: Callable[[tuple[str, ...]], Mapping[str, float]],
                 floor: float = 1e-12, context_length: int = 512):
        self.vocab = list(dict.fromkeys([BOS, EOS, *vocab]))  # specials first, order kept, no duplicates
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.vocab_size = len(self.vocab)
        self.bos_token_id, self.eos_token_id = self.index[BOS], self.index[EOS]
        self.capabilities = Capabilities(full_vocab=True, context_length=context_length, kv_cache=False)
        self._dist, self._floor = dist, floor

    # -- constructors ---------------------------------------------------------
    @classmethod
    def from_table(cls, table: Mapping[tuple[str, ...], Mapping[str, float]],
                   default: Mapping[str, float] | None = None, **kwargs) -> "ToyBackend":
        default = dict(default or {EOS: 1.0})
        words = {w for dist in [*table.values(), default] for w in dist} | {w for k in table for w in k}
        return cls(sorted(words), lambda prefix: table.get(tuple(prefix), default), **kwargs)

    @classmethod
    def from_ngrams(cls, sentences: Sequence[str | Sequence[str]], order: int = 2, alpha: float = 0.5,
                    **kwargs) -> "ToyBackend":
        """Add-α smoothed n-gram model: P(w | h) = (c(h, w) + α) / (c(h) + α·|V|)."""
        if order < 1 or alpha < 0:
            raise InputError("n-gram order must be >= 1 and alpha >= 0", hint="e.g. order=2, alpha=0.5")
        sents = [s.split() if isinstance(s, str) else list(s) for s in sentences]
        sents = [([BOS] if not s or s[0] != BOS else []) + s + ([EOS] if not s or s[-1] != EOS else [])
                 for s in sents]
        vocab = sorted({w for s in sents for w in s})
        counts: dict[tuple, Counter] = defaultdict(Counter)
        for s in sents:
            padded = [BOS] * (order - 2) + s if order > 2 else s
            for i in range(order - 1, len(padded)):
                counts[tuple(padded[i - order + 1:i])][padded[i]] += 1

        def dist(prefix: tuple[str, ...]) -> dict[str, float]:
            padded = [BOS] * max(order - 2, 0) + list(prefix)  # same left padding as in training
            hist = tuple(padded[len(padded) - (order - 1):]) if order > 1 else ()
            c = counts.get(hist, Counter())
            denom = sum(c.values()) + alpha * len(vocab)
            if denom == 0:
                return {w: 1.0 / len(vocab) for w in vocab}
            return {w: (c[w] + alpha) / denom for w in vocab}

        return cls(vocab, dist, **kwargs)

    # -- tokenization -----------------------------------------------------------
    def tokenize(self, text: str) -> Tokenized:
        ids, offsets = [], []
        for m in _WORD.finditer(text):
            if m.group() not in self.index:
                raise InputError(f"word {m.group()!r} is not in the toy vocabulary",
                                 hint=f"use words from: {' '.join(self.vocab[:20])}")
            ids.append(self.index[m.group()])
            offsets.append(m.span())
        return Tokenized(text, ids, offsets)

    def detokenize(self, ids: list[int]) -> str:
        return " ".join(self.vocab[i] for i in ids)

    def token_text(self, token_id: int) -> str:
        return self.vocab[int(token_id)]

    # -- scoring ------------------------------------------------------------------
    def next_logits(self, prefixes: list[list[int]]) -> torch.Tensor:
        rows = []
        for prefix in prefixes:
            dist = self._dist(tuple(self.vocab[i] for i in prefix))
            probs = torch.full((self.vocab_size,), float(self._floor), dtype=torch.float64)
            for word, p in dist.items():
                probs[self.index[word]] = max(float(p), self._floor)
            rows.append(torch.log(probs / probs.sum()))  # normalised log-probs serve as logits
        return torch.stack(rows) if rows else torch.zeros(0, self.vocab_size, dtype=torch.float64)
