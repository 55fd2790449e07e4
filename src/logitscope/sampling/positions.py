"""One decoding position: the next token's distribution, raw and as the sampler processed it.

A ``DecodeSession`` hands one of these out per position; every front end reads its
numbers through the same methods, so a token's log-prob is the same number in a trace,
a server response and the web page.

    FullPosition(raw (V,), processed (V,))      a full-vocabulary backend's logits
    TopKPosition(known ids (K,), log-probs (K,), processed (K,), V)
                                                a top-k-only backend: exact log-probs of
                                                the known tokens; the entropy is a lower
                                                bound and the remaining mass is recorded

    position.logprob(token)         log p(token) under the raw distribution (a 0-d tensor)
    position.logprobs(processed)    (V,) log-probs, raw or processed (-inf = removed / unknown)
    position.top(k)                 the raw top k: ids (k,), log-probs (k,)
    position.record(token, k)       what a trace keeps of the step, as tensors
"""

from __future__ import annotations

from functools import cached_property

import torch

from ..core import mathops
from ..core.processors import NEG_INF


class Position:
    """The interface; see the module docstring."""

    processed: torch.Tensor  # (V,) the sampler's processed logits (what is drawn from)
    vocab_size: int

    def logprob(self, token: int) -> torch.Tensor:
        raise NotImplementedError

    def logprobs(self, processed: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def top(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def rank(self, token: int) -> torch.Tensor:
        raise NotImplementedError

    @property
    def entropy(self) -> torch.Tensor:
        raise NotImplementedError

    def record(self, token: int, k: int) -> tuple:
        """(token, log-prob, processed log-prob, rank, entropy, survivors, top ids, top log-probs), as tensors
        (a trace converts them once per generation, not once per token)."""
        ids, lps = self.top(k)
        return (token, self.logprob(token), self.processed_logprob(token), self.rank(token), self.entropy,
                self._survivor_count(), ids, lps)

    @cached_property
    def processed_logprobs(self) -> torch.Tensor:
        """(V,) float64 log-probs of the processed distribution."""
        return mathops.log_softmax(self.processed.double())

    @cached_property
    def _kept(self) -> torch.Tensor:
        """The processed logits the chain left (> -inf), by one masked select: a greedy or top-p row keeps
        few, so sums over them are cheap (a logsumexp over a (V,) row of -inf took 180 us)."""
        return self.processed[self.processed > NEG_INF]

    def processed_logprob(self, token: int) -> torch.Tensor:
        """log p(token) under the processed distribution; a +inf bias shares the mass among the forced tokens."""
        lse = torch.logsumexp(self._kept, dim=-1)
        return self.processed[token] - lse if torch.isfinite(lse) else self.processed_logprobs[token]

    def _survivor_count(self) -> torch.Tensor:
        return torch.isfinite(self._kept).sum()

    @property
    def survivors(self) -> int:
        return int(self._survivor_count())


class FullPosition(Position):
    """The logits of a full-vocabulary backend. One log-normaliser pass (log Z) serves the
    chosen token's log-prob, the entropy and the top k: nothing of size V is sorted."""

    def __init__(self, raw: torch.Tensor, processed: torch.Tensor):
        self.raw, self.processed = raw, processed  # (V,), (V,)
        self.vocab_size = raw.shape[-1]

    @cached_property
    def _stats(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """(log Z, entropy, every logit finite) of the raw distribution, from one exp pass."""
        top = self.raw.max()
        shifted = self.raw - top  # (V,), largest entry 0
        weights = shifted.exp()  # (V,) unnormalised probabilities
        total = weights.sum()
        spread = torch.dot(weights, shifted)  # Σ w (z - max); NaN only where a logit is ±inf
        finite = not torch.isnan(spread)
        if not finite:
            spread = (weights * shifted.masked_fill(weights == 0, 0)).sum()
        return top + total.log(), (total.log() - spread / total).clamp_min(0), finite  # H = log Z - E_p[z]

    @property
    def entropy(self) -> torch.Tensor:
        return self._stats[1]

    def logprob(self, token: int) -> torch.Tensor:
        return self.raw[token] - self._stats[0]

    def logprobs(self, processed: bool = False) -> torch.Tensor:
        return self.processed_logprobs if processed else self.raw - self._stats[0]

    def top(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        best = self.raw.topk(min(k, self.vocab_size))
        return best.indices, best.values - self._stats[0]

    def rank(self, token: int) -> torch.Tensor:
        return (self.raw > self.raw[token]).sum() + 1

    def record(self, token: int, k: int) -> tuple:
        """As ``Position.record``, with the per-token cost a traced decode pays kept small: the rank
        comes from the top k when the token is in it, and when no stage of the sampler chain changed
        the logits the processed log-prob reuses log Z and the survivors come from the entropy pass."""
        log_z, _, all_finite = self._stats
        best = self.raw.topk(min(max(k, 1), self.vocab_size))  # most likely first
        value = self.raw[token]
        beaten = best.values if value >= best.values[-1] else self.raw  # every larger logit is in the top k
        if self.processed.data_ptr() == self.raw.data_ptr():  # no stage of the chain changed the logits
            chosen = value - log_z
            survivors = torch.tensor(self.vocab_size) if all_finite else torch.isfinite(self.raw).sum()
        else:
            chosen, survivors = self.processed_logprob(token), self._survivor_count()
        return (token, value - log_z, chosen, (beaten > value).sum() + 1, self.entropy, survivors,
                best.indices[:k], best.values[:k] - log_z)


class TopKPosition(Position):
    """What a top-k-only backend shows of the next token: its K most likely, exactly."""

    def __init__(self, known_ids: torch.Tensor, known_logprobs: torch.Tensor, processed_known: torch.Tensor,
                 vocab_size: int):
        self.known_ids, self.known_logprobs = known_ids, known_logprobs.double()  # (K,) in token-id order
        self.vocab_size = max(vocab_size, int(known_ids.max()) + 1)
        self.processed = vocabulary_row(known_ids, processed_known, self.vocab_size)  # (V,)

    @property
    def entropy(self) -> torch.Tensor:
        return mathops.entropy_lower_bound(self.known_logprobs)

    def _at(self, token: int) -> int:
        found = (self.known_ids == token).nonzero()
        if not len(found):
            raise KeyError(token)
        return int(found[0, 0])

    def logprob(self, token: int) -> torch.Tensor:
        return self.known_logprobs[self._at(token)]

    def logprobs(self, processed: bool = False) -> torch.Tensor:
        """Raw: the exact log-probs of the known tokens, -inf for the unknown (not renormalised)."""
        return self.processed_logprobs if processed else vocabulary_row(self.known_ids, self.known_logprobs,
                                                                        self.vocab_size)

    def top(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        best = self.known_logprobs.topk(min(k, len(self.known_logprobs)))
        return self.known_ids[best.indices], best.values

    def rank(self, token: int) -> torch.Tensor:
        return (self.known_logprobs > self.logprob(token)).sum() + 1

    def record(self, token: int, k: int) -> tuple:
        """As ``Position.record``, plus the probability outside the known top k."""
        return super().record(token, k) + (mathops.remaining_mass(self.known_logprobs),)


def vocabulary_row(known_ids: torch.Tensor, values: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """``values`` of the known ids as a vocabulary-sized float64 row (-inf elsewhere)."""
    row = torch.full((vocab_size,), float("-inf"), dtype=torch.float64)  # (V,)
    row[known_ids] = values.double()
    return row
