"""A backend whose next-token logits for a prefix it has seen come from a store, not the model.

The web app's sampler lab moves a slider many times over one prompt: ``distribution_chain``
and ``sample_next`` run unchanged on ``CachedLogits(backend, store)``, so the lab's numbers
are ``logitscope dist``'s and ``logitscope sample``'s by construction and a slider runs no model.
"""

from __future__ import annotations

import collections

import torch

from .base import Backend


class LogitsStore:
    """The last ``size`` next-token logit rows of one model, by prefix ids (LRU)."""

    def __init__(self, size: int = 32):
        self.size = size
        self.rows: collections.OrderedDict[tuple[int, ...], torch.Tensor] = collections.OrderedDict()
        self.hits = self.misses = 0

    def get(self, backend: Backend, ids: list[int]) -> torch.Tensor:
        key = tuple(ids)
        if key in self.rows:
            self.hits += 1
            self.rows.move_to_end(key)
            return self.rows[key]
        self.misses += 1
        row = backend.next_logits([list(ids)])[0]  # (V,)
        self.rows[key] = row
        if len(self.rows) > self.size:
            self.rows.popitem(last=False)
        return row


class CachedLogits:
    """A backend whose single-prefix ``next_logits`` goes through a ``LogitsStore``."""

    def __init__(self, backend: Backend, store: LogitsStore):
        self._backend, self._store = backend, store

    def next_logits(self, prefixes: list[list[int]]) -> torch.Tensor:
        if len(prefixes) != 1:
            return self._backend.next_logits(prefixes)
        return self._store.get(self._backend, prefixes[0])[None]  # (1, V)

    def __getattr__(self, name: str):  # everything else is the wrapped backend's
        return getattr(self._backend, name)
