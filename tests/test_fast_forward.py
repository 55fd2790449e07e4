"""The fast Llama-family forward equals transformers' forward, and is used only where it applies."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from logitscope.backends import fast_forward
from logitscope.backends.fast_forward import FastForward
from tolerances import FLOAT32_HIDDEN, FLOAT32_VALUES

TINY = dict(vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=512)


def tiny(kind: str, **overrides) -> nn.Module:
    """A randomly initialised tiny causal LM of one family (weights seeded)."""
    from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config,
                              Qwen2ForCausalLM)

    config_cls, model_cls = {"llama": (LlamaConfig, LlamaForCausalLM), "mistral": (MistralConfig, MistralForCausalLM),
                             "qwen2": (Qwen2Config, Qwen2ForCausalLM)}[kind]
    torch.manual_seed(0)
    model = model_cls(config_cls(**{**TINY, **overrides})).eval()
    with torch.no_grad():  # random biases too (Qwen2 has q/k/v biases, initialised to zero)
        for module in model.modules():
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.normal_(0, 0.5)
    return model


def reference(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model.get_decoder()(input_ids=ids, use_cache=False).last_hidden_state


def random_ids(batch: int, width: int) -> torch.Tensor:
    return torch.randint(0, TINY["vocab_size"], (batch, width), generator=torch.Generator().manual_seed(width))


@pytest.mark.parametrize("kind, overrides", [
    ("llama", {}),
    ("llama", {"num_key_value_heads": 4, "tie_word_embeddings": True}),  # no GQA
    ("qwen2", {}),  # q/k/v biases
    ("mistral", {"sliding_window": None}),
])
@pytest.mark.parity
@pytest.mark.parametrize("width", [1, 2, 63, 64, 65, 200])
def test_fast_forward_equals_transformers(kind, overrides, width):
    model = tiny(kind, **overrides)
    ids = random_ids(3, width)
    expected = reference(model, ids)
    fast = FastForward.for_model(model)
    assert fast is not None
    FLOAT32_VALUES.assert_close(fast(ids), expected)
    torch.testing.assert_close(reference(model, ids), expected, rtol=0, atol=0)  # the model is left as it was


def test_query_blocks_cover_every_position(monkeypatch):
    """Block-causal attention with blocks that do not divide the width: same as one causal call."""
    model = tiny("llama")
    ids = random_ids(2, 77)
    expected = reference(model, ids)
    fast = FastForward.for_model(model)
    for block in (5, 16, 76, 77, 500):
        monkeypatch.setattr(fast_forward, "QUERY_BLOCK", block)
        FLOAT32_VALUES.assert_close(fast(ids), expected)


@pytest.mark.parity
def test_right_padding_does_not_touch_real_rows():
    model = tiny("llama")
    fast = FastForward.for_model(model)
    short = random_ids(1, 30)
    padded = torch.cat([short, torch.zeros(1, 90, dtype=torch.long)], dim=1)
    FLOAT32_VALUES.assert_close(fast(padded)[:, :30], fast(short))


def test_in_place_weight_edits_reach_the_fast_forward():
    """Simulated quantization edits the per-module weights in place: the fast path must see it."""
    model = tiny("llama")
    fast = FastForward.for_model(model)
    ids = random_ids(2, 40)
    before = fast(ids)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.k_proj.weight.mul_(0.5)
            layer.mlp.up_proj.weight.add_(0.01)
    after = fast(ids)
    assert (after - before).abs().max() > 1e-3
    FLOAT32_VALUES.assert_close(after, reference(model, ids))


def test_sliding_window_models_fall_back_beyond_the_window():
    model = tiny("mistral", sliding_window=16)
    fast = FastForward.for_model(model)
    assert fast.covers(16) and not fast.covers(17)
    ids = random_ids(2, 16)
    FLOAT32_VALUES.assert_close(fast(ids), reference(model, ids))


def test_models_it_does_not_cover_get_none():
    from transformers import GPT2Config, GPT2LMHeadModel

    assert FastForward.for_model(GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50))) is None
    assert FastForward.for_model(tiny("llama", hidden_act="gelu")) is None
    extra = tiny("llama")
    extra.model.layers[1].self_attn.q_norm = nn.Identity()  # e.g. Qwen3-style q/k norms
    assert FastForward.for_model(extra) is None
    assert FastForward.for_model(tiny("llama").to(torch.bfloat16)) is None


# -- in the transformers backend (bundled model) ----------------------------------------------
@pytest.mark.parity
@pytest.mark.slow
def test_smol_backend_hidden_equals_transformers(smol):
    b = smol.backend
    assert b._fast_forward is not None  # SmolLM2 is a Llama: the fast path is on
    seqs = [b.tokenize(t).ids for t in ("Hello", "The capital of France is Paris. " * 12, "a b c " * 30)]
    ids = b._pad_batch(seqs)
    FLOAT32_HIDDEN.assert_close(b.hidden_states(ids), reference(b.model, ids))


@pytest.mark.parity
@pytest.mark.slow
def test_smol_blocked_target_nll_equals_full_logits(smol, monkeypatch):
    b = smol.backend
    ids = b.tokenize("Blocked log-sum-exp over the vocabulary gives the same negative log-likelihood.").ids
    targets = torch.tensor(ids[1:])
    with torch.inference_mode():
        rows = b.hidden_states(torch.tensor([ids[:-1]]))[0]
        FLOAT32_VALUES.assert_close(b._target_nll(rows, targets), b._target_nll_full(rows, targets))
        monkeypatch.setattr(b, "_softcap", 5.0)  # Gemma-2-style capping, on both paths
        FLOAT32_VALUES.assert_close(b._target_nll(rows, targets), b._target_nll_full(rows, targets))


@pytest.mark.slow
def test_int8_copy_runs_its_own_forward_not_the_fast_float_one(smol):
    from logitscope.evaluation.quantization import int8_dynamic_backend

    q = int8_dynamic_backend(smol.backend)
    ids = torch.tensor([q.tokenize("Quantized weights give other hidden states.").ids])
    torch.testing.assert_close(q.hidden_states(ids), reference(q.model, ids), rtol=0, atol=0)
    assert (q.hidden_states(ids) - smol.backend.hidden_states(ids)).abs().max() > 1e-3
