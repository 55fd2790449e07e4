"""The sampler lab: a prompt's logits computed once, the library's chain re-applied on every change.

``backends.cached.CachedLogits`` wraps a backend so that ``next_logits`` for a prefix it
has seen returns the stored row; ``distribution_chain`` and ``sample_next`` then run
unchanged on top of it, so the lab's numbers are ``logitscope dist``'s and
``logitscope sample``'s by construction, and moving a slider runs no model.
"""

from __future__ import annotations

from ..backends.base import Backend
from ..backends.cached import CachedLogits, LogitsStore
from ..core.processors import SamplerConfig
from ..sampling.chain import ChainResult, SampleResult, distribution_chain, sample_next


def lab_chain(backend: Backend, store: LogitsStore, prompt: str, config: SamplerConfig, top: int) -> ChainResult:
    """``Model.chain`` on the stored logits of ``prompt``."""
    return distribution_chain(CachedLogits(backend, store), prompt, config, top=top)


def lab_sample(backend: Backend, store: LogitsStore, prompt: str, config: SamplerConfig, n: int,
               seed: int) -> SampleResult:
    """``Model.sample`` on the stored logits of ``prompt``."""
    return sample_next(CachedLogits(backend, store), prompt, n, config, seed)
