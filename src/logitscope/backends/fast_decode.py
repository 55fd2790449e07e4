"""Incremental decoding for Llama-family models: a static KV cache and a lean step.

``fast_forward.FastForward`` runs cache-free forwards for scoring; this module is
its decoding twin, for generation, beam search and trees. The arithmetic is
transformers' Llama/Mistral/Qwen2 decoder with a KV cache, using the model's own
modules and weights (nothing copied or changed), but:

- the cache is one preallocated tensor per layer, (n_kv, capacity, D) for keys
  and for values; a step writes its new rows in place and attends to a view of
  the filled part, so nothing is concatenated or reallocated per step (capacity
  doubles when it runs out, rarely);
- rotary cos/sin come from a table built once for all positions;
- RMSNorm is one ``F.rms_norm`` call, SiLU x up and the residual adds run in place;
- a step takes any number T of new tokens: T = 1 is a decode step, T = prompt
  length is a prefill, T = k + 1 verifies k drafted tokens in one forward
  (speculative decoding), and ``truncate`` rolls the cache back to the accepted part.

    cache = decoder.new_cache(len(prompt))
    hidden = decoder.step(cache, prompt)      # (T, H) final hidden states
    logits = decoder.project(hidden[-1:])     # (1, V) float32
    other = cache.copy()                      # fork: an independent copy

``StaticCacheDecoder.for_model(model)`` returns None where fast_forward does not apply or
the rotary embedding depends on the sequence length (dynamic RoPE); the
transformers backend then decodes through transformers' own cache. Set
``LOGITSCOPE_FAST_DECODE=0`` to turn it off. Parity with transformers' cached
forward is tested per architecture in tests/test_fast_decode.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import settings
from .fast_forward import FastForward, _mlp, _rms, _rotate_

QUERY_BLOCK = 64  # query rows per attention call when a step feeds many tokens (a prefill)
MIN_CAPACITY = 256  # cache rows allocated at least for a new sequence; capacity doubles from there
FORK_ROOM = 64  # free rows a forked copy starts with: beams and tree branches fork often and grow little
FEW_ROWS = 16  # steps of 2..FEW_ROWS tokens (verifying drafts) multiply as W @ x.T, see _linear


def enabled() -> bool:
    """The environment switch: LOGITSCOPE_FAST_DECODE=0 turns the fast decode path off."""
    return settings.fast_decode()


class StaticCache:
    """Keys and values of the tokens decoded so far, in preallocated per-layer tensors."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: int = 0):
        self.keys, self.values = keys, values  # (L, n_kv, capacity, D) each
        self.length = length  # rows filled

    @property
    def capacity(self) -> int:
        return self.keys.shape[2]

    def reserve(self, rows: int) -> None:
        """Make room for ``rows`` more tokens, doubling the capacity when it runs out."""
        need = self.length + rows
        if need <= self.capacity:
            return
        capacity = max(need, 2 * self.capacity)
        self.keys, self.values = (_regrow(t, self.length, capacity) for t in (self.keys, self.values))

    def copy(self) -> "StaticCache":
        """An independent copy (a fork): the filled rows plus FORK_ROOM rows to grow into."""
        capacity = self.length + FORK_ROOM
        return StaticCache(_regrow(self.keys, self.length, capacity), _regrow(self.values, self.length, capacity),
                           self.length)

    def truncate(self, length: int) -> None:
        """Forget every row from ``length`` on (rejected draft tokens); no data moves."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot truncate a cache of {self.length} rows to {length}")
        self.length = length

    def layer(self, index: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Views of layer ``index``'s keys and values for rows [0, end): (n_kv, end, D) each."""
        return self.keys[index, :, :end], self.values[index, :, :end]


def _regrow(t: torch.Tensor, rows: int, capacity: int) -> torch.Tensor:
    """(L, n_kv, C, D) -> (L, n_kv, capacity, D) holding t's first ``rows`` rows; the rest uninitialised."""
    out = t.new_empty(t.shape[0], t.shape[1], capacity, t.shape[3])
    out[:, :, :rows].copy_(t[:, :, :rows])
    return out


class StaticCacheDecoder:
    """One Llama-family model's decode step over a ``StaticCache``."""

    def __init__(self, model: nn.Module, forward: FastForward):
        self.model = model
        self.inner = forward.inner
        self.head = model.get_output_embeddings()
        self.n_heads, self.n_kv, self.head_dim = forward.n_heads, forward.n_kv, forward.head_dim
        self.sliding_window = forward.sliding_window
        self.context = int(getattr(model.config, "max_position_embeddings", 2048))
        self._cos = self._sin = torch.zeros(0, self.head_dim // 2)  # (P, D/2) rotary tables, see _rotary

    @classmethod
    def for_model(cls, model: nn.Module) -> StaticCacheDecoder | None:
        """The decode path for ``model``, or None when it does not apply."""
        forward = FastForward.for_model(model)
        if forward is None or not isinstance(model.get_output_embeddings(), nn.Linear):
            return None
        if getattr(model.config, "final_logit_softcapping", None):
            return None
        rope = getattr(model.config, "rope_parameters", None) or getattr(model.config, "rope_scaling", None) or {}
        if "dynamic" in str(rope.get("rope_type", rope.get("type", "default"))):
            return None  # cos/sin would depend on the sequence length, not only on the position
        return cls(model, forward)

    def covers(self, length: int) -> bool:
        """Sliding-window models match only while the window covers the whole sequence."""
        return self.sliding_window is None or length <= self.sliding_window

    def new_cache(self, rows: int) -> StaticCache:
        """An empty cache with room for ``rows`` tokens (at least MIN_CAPACITY)."""
        weight = self.inner.embed_tokens.weight
        shape = (len(self.inner.layers), self.n_kv, max(rows, MIN_CAPACITY), self.head_dim)
        return StaticCache(weight.new_empty(shape), weight.new_empty(shape))

    @torch.inference_mode()
    def step(self, cache: StaticCache, ids: list[int]) -> torch.Tensor:
        """Feed ``ids`` after the cached tokens; the cache grows by len(ids). Returns (T, H) final hidden states."""
        start, width = cache.length, len(ids)
        cache.reserve(width)
        x = self.inner.embed_tokens(torch.tensor(ids, device=cache.keys.device))  # (T, H), fresh: safe to add into
        cos, sin = self._rotary(start + width, x)
        cos, sin = cos[start:start + width, None], sin[start:start + width, None]  # (T, 1, D/2)
        for index, layer in enumerate(self.inner.layers):
            x.add_(self._attention(layer.self_attn, _rms(layer.input_layernorm, x), cos, sin, cache, index))
            x.add_(_mlp(layer.mlp, _rms(layer.post_attention_layernorm, x), _linear))
        cache.length = start + width
        return _rms(self.inner.norm, x)

    @torch.inference_mode()
    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """(T, H) -> (T, V) float32 logits through the LM head."""
        return _linear(self.head, hidden).float()

    def _attention(self, attn: nn.Module, h: torch.Tensor, cos, sin, cache: StaticCache, index: int) -> torch.Tensor:
        width, start = h.shape[0], cache.length
        q = _linear(attn.q_proj, h).view(width, self.n_heads, self.head_dim)
        k = _linear(attn.k_proj, h).view(width, self.n_kv, self.head_dim)
        v = _linear(attn.v_proj, h).view(width, self.n_kv, self.head_dim)
        _rotate_(q, cos, sin)
        _rotate_(k, cos, sin)
        cache.keys[index, :, start:start + width] = k.transpose(0, 1)  # (n_kv, T, D) written in place
        cache.values[index, :, start:start + width] = v.transpose(0, 1)
        keys, values = cache.layer(index, start + width)  # (n_kv, P + T, D) views
        out = self._attend(q.transpose(0, 1), keys, values, start, attn.scaling)  # (nq, T, D)
        return _linear(attn.o_proj, out.transpose(0, 1).reshape(width, -1))

    def _attend(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, start: int,
                scale: float) -> torch.Tensor:
        """Attention of T new queries at positions start.. over the cached keys, causal among the new ones.

        Query rows go QUERY_BLOCK at a time, each block against only the keys it may see.
        """
        width, gqa = q.shape[1], self.n_heads != self.n_kv
        if width == 1:  # one new token sees every cached key: no mask
            return F.scaled_dot_product_attention(q[None], keys[None], values[None], scale=scale, enable_gqa=gqa)[0]
        out = torch.empty_like(q)  # (nq, T, D)
        for begin in range(0, width, QUERY_BLOCK):
            end = min(width, begin + QUERY_BLOCK)
            seen = start + end  # keys visible to the block's last row
            mask = _causal_mask(end - begin, seen, q)
            out[:, begin:end] = F.scaled_dot_product_attention(
                q[None, :, begin:end], keys[None, :, :seen], values[None, :, :seen], attn_mask=mask, scale=scale,
                enable_gqa=gqa)[0]
        return out

    def _rotary(self, positions: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (P, D/2) for positions [0, P), computed by the model's rotary module once and reused."""
        if self._cos.shape[0] < positions or self._cos.dtype != like.dtype or self._cos.device != like.device:
            size = max(positions, min(self.context, 2 * self._cos.shape[0]), MIN_CAPACITY)
            cos, sin = self.inner.rotary_emb(like, torch.arange(size, device=like.device)[None])  # (1, P, D)
            half = self.head_dim // 2
            self._cos, self._sin = cos[0, :, :half].contiguous(), sin[0, :, :half].contiguous()
        return self._cos, self._sin


def _linear(module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` for (T, in) rows. For 2..FEW_ROWS rows it is computed as W @ x.T: with so few
    rows MKL's x @ W.T runs at about half the speed here (benchmarks/generation.md, decode_probes)."""
    if not 1 < x.shape[0] <= FEW_ROWS or type(module).forward is not nn.Linear.forward:  # e.g. an int8 drafter
        return module(x)
    y = torch.mm(module.weight, x.t()).t().contiguous()  # (T, out)
    return y if module.bias is None else y.add_(module.bias)


def _causal_mask(rows: int, keys: int, like: torch.Tensor) -> torch.Tensor:
    """Additive (rows, keys) mask: the last query row sees every key, each row above one fewer."""
    return torch.full((rows, keys), float("-inf"), dtype=like.dtype, device=like.device).triu_(keys - rows + 1)
