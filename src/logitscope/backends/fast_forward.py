"""A cache-free decoder forward for Llama-family models, laid out for CPU scoring.

The same arithmetic as transformers' Llama/Mistral/Qwen2 decoders for one
right-padded batch without a KV cache (what perplexity and scoring run), using
the model's own modules and weights (nothing is copied or changed), but:

- RMSNorm is one ``F.rms_norm`` call instead of five element-wise steps;
- rotary embedding, SiLU x up and the residual adds write in place: a fresh
  multi-MB activation tensor costs page faults on every first touch;
- causal attention runs in blocks of QUERY_BLOCK query rows, each against only
  the keys it may see, so most of the masked upper triangle is never computed.

``FastForward.for_model(model)`` returns None for models it does not cover
(other architectures, extra modules such as q/k norms, non-SiLU MLPs, half
precision) and on torch older than 2.5 (``F.rms_norm`` is 2.4, ``enable_gqa`` 2.5),
where transformers' forward runs instead; ``covers(width)`` is False past a sliding window. Agreement with
transformers' forward is tested within float32 rounding.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

SUPPORTED = ("llama", "mistral", "qwen2")
QUERY_BLOCK = 64  # query rows per attention call (64 measured fastest here; see benchmarks/perplexity.md)
MIN_TORCH = (2, 5)  # F.rms_norm (2.4) and scaled_dot_product_attention(enable_gqa=...) (2.5)


def torch_supported() -> bool:
    """Is the installed torch new enough for this forward? (Read at call time, so tests can patch it.)"""
    found = re.match(r"(\d+)\.(\d+)", str(torch.__version__))
    return found is not None and tuple(int(g) for g in found.groups()) >= MIN_TORCH


class FastForward:
    """Callable ``ids (B, T) -> final hidden states (B, T, H)`` for right-padded batches."""

    def __init__(self, model: nn.Module):
        self.inner = model.get_decoder()
        cfg = model.config
        self.head_dim = self.inner.layers[0].self_attn.head_dim
        self.n_heads, self.n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
        self.sliding_window = _sliding_window(cfg)
        self._template = torch.zeros(0, 0)  # block mask template, see _block_mask

    @classmethod
    def for_model(cls, model: nn.Module) -> FastForward | None:
        """A fast decoder for ``model``, or None when it is not one this module covers."""
        cfg = model.config
        if not torch_supported():
            return None
        if getattr(cfg, "model_type", None) not in SUPPORTED or getattr(cfg, "hidden_act", None) != "silu":
            return None
        inner = model.get_decoder()
        layers = getattr(inner, "layers", None)
        if layers is None or not hasattr(inner, "rotary_emb") or not hasattr(inner, "embed_tokens"):
            return None
        if getattr(cfg, "pretraining_tp", 1) != 1 or inner.embed_tokens.weight.dtype != torch.float32:
            return None  # RMSNorm upcasting of half-precision models is not mirrored here
        return cls(model) if all(_plain_llama_layer(layer) for layer in layers) else None

    def covers(self, width: int) -> bool:
        """Sliding-window models match only while the window covers the whole batch."""
        return self.sliding_window is None or width <= self.sliding_window

    @torch.inference_mode()
    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        bsz, width = ids.shape
        x = self.inner.embed_tokens(ids)  # (B, T, H), a fresh tensor: safe to add into
        positions = torch.arange(width, device=ids.device)[None].expand(bsz, -1)
        cos, sin = self.inner.rotary_emb(x, positions)  # (B, T, D), both halves equal
        half = self.head_dim // 2
        cos, sin = cos[..., None, :half], sin[..., None, :half]  # (B, T, 1, D/2)
        for layer in self.inner.layers:
            x.add_(self._attention(layer.self_attn, _rms(layer.input_layernorm, x), cos, sin))
            x.add_(_mlp(layer.mlp, _rms(layer.post_attention_layernorm, x)))
        return _rms(self.inner.norm, x)

    def _attention(self, attn: nn.Module, h: torch.Tensor, cos, sin) -> torch.Tensor:
        bsz, width, _ = h.shape
        q = attn.q_proj(h).view(bsz, width, self.n_heads, self.head_dim)
        k = attn.k_proj(h).view(bsz, width, self.n_kv, self.head_dim)
        v = attn.v_proj(h).view(bsz, width, self.n_kv, self.head_dim)
        _rotate_(q, cos, sin)
        _rotate_(k, cos, sin)
        out = self._causal(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn.scaling)  # (B, nq, T, D)
        return attn.o_proj(out.transpose(1, 2).reshape(bsz, width, -1))

    def _causal(self, q, k, v, scale: float) -> torch.Tensor:
        """Causal attention, QUERY_BLOCK query rows at a time against the keys they may see."""
        width = q.shape[2]
        gqa = self.n_heads != self.n_kv
        if width <= QUERY_BLOCK:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale, enable_gqa=gqa)
        out = torch.empty_like(q)
        for begin in range(0, width, QUERY_BLOCK):
            end = min(width, begin + QUERY_BLOCK)
            mask = None if begin == 0 else self._block_mask(begin, end, q)
            out[:, :, begin:end] = F.scaled_dot_product_attention(
                q[:, :, begin:end], k[:, :, :end], v[:, :, :end], attn_mask=mask,
                is_causal=begin == 0, scale=scale, enable_gqa=gqa)
        return out

    def _block_mask(self, begin: int, end: int, like: torch.Tensor) -> torch.Tensor:
        """Additive mask of query rows [begin, end) over keys [0, end): row begin + i sees keys <= begin + i.

        Every block's mask is a view of one (QUERY_BLOCK, W) template whose row i
        allows columns <= W - QUERY_BLOCK + i (right-aligned), regrown only for a
        wider batch: 64 x 8192 floats at most for an 8k context.
        """
        rows, tpl = end - begin, self._template
        width = max(end, tpl.shape[1])
        if tpl.shape != (QUERY_BLOCK, width) or tpl.dtype != like.dtype or tpl.device != like.device:
            tpl = torch.full((QUERY_BLOCK, width), float("-inf"), dtype=like.dtype, device=like.device)
            self._template = tpl = tpl.triu_(width - QUERY_BLOCK + 1)
        return tpl[QUERY_BLOCK - rows:, width - end:]


def _mlp(mlp: nn.Module, h: torch.Tensor, linear=nn.Module.__call__) -> torch.Tensor:
    """down(silu(gate h) * up h), the element-wise part in place; ``linear(module, x)`` applies a
    projection (fast_decode passes its few-row product)."""
    return linear(mlp.down_proj, F.silu(linear(mlp.gate_proj, h), inplace=True).mul_(linear(mlp.up_proj, h)))


def _rms(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    eps = getattr(norm, "variance_epsilon", None) or getattr(norm, "eps", 1e-6)
    return F.rms_norm(x, (x.shape[-1],), norm.weight, eps)


def _rotate_(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> None:
    """Rotary embedding in place, transformers' half-split layout: (x1, x2) <- (x1 c - x2 s, x2 c + x1 s)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    first = x1.clone()
    x1.mul_(cos).addcmul_(x2, sin, value=-1)
    x2.mul_(cos).addcmul_(first, sin)


def _plain_llama_layer(layer: nn.Module) -> bool:
    """Does the layer have exactly the Llama structure, nothing more (no q/k norms, sinks, ...)?"""
    attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
    if attn is None or mlp is None:
        return False
    expected = (
        (layer, {"self_attn", "mlp", "input_layernorm", "post_attention_layernorm"}, ()),
        (attn, {"q_proj", "k_proj", "v_proj", "o_proj"}, ("q_proj", "k_proj", "v_proj", "o_proj")),
        (mlp, {"gate_proj", "up_proj", "down_proj", "act_fn"}, ("gate_proj", "up_proj", "down_proj")),
    )
    for module, allowed, linears in expected:
        children = {name for name, _ in module.named_children()}
        if not children <= allowed or not all(isinstance(getattr(module, n, None), nn.Linear) for n in linears):
            return False
    direct = {name for name, _ in attn.named_parameters(recurse=False)} | \
        {name for name, _ in mlp.named_parameters(recurse=False)}
    return not direct and hasattr(attn, "scaling") and hasattr(attn, "head_dim")


def _sliding_window(cfg) -> int | None:
    """The attention window when some layer uses one (None: every layer attends to everything)."""
    window = getattr(cfg, "sliding_window", None)
    layer_types = getattr(cfg, "layer_types", None)
    if layer_types is not None and all(t == "full_attention" for t in layer_types):
        return None
    if getattr(cfg, "use_sliding_window", True) is False:
        return None
    return window
