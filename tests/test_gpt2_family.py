"""GPT-2-family checkpoints (Conv1D layers, learned positions) on a tiny random GPT-2:
quantization rounds the Conv1D weights, ``which="all"`` rounds every parameter
(seed 003's sweep), and ``Model.logits`` returns the [1, T, V] tensor."""

from __future__ import annotations

import pytest
import torch

import logitscope
from logitscope.evaluation import quantization as q
from tolerances import FLOAT32_RELATIVE, FLOAT32_VALUES, FLOAT64

WORDS = "the cat sat on mat dog slept a".split()


@pytest.fixture(scope="module")
def gpt2():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<|endoftext|>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_positions=32, n_embd=16, n_layer=2, n_head=2))
    with torch.no_grad():  # non-trivial norm scales and biases, so rounding them shows
        for name, p in model.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight", ".bias")):
                p.copy_(torch.randn_like(p) * 0.3 + (1.0 if name.endswith("weight") else 0.0))
    return logitscope.from_transformers(model, tokenizer, name="tiny-gpt2")


def conv1d_weights(model):
    return [m.weight for m in model.modules() if type(m).__name__ == "Conv1D"]


def test_conv1d_weights_are_quantized_and_restored(gpt2):
    model = gpt2.backend.model
    convs = conv1d_weights(model)
    assert len(convs) == 4 * 2  # c_attn, attn c_proj, c_fc, mlp c_proj per layer
    picked = {id(w) for w in q.quantizable_weights(model)}
    assert all(id(w) in picked for w in convs)
    assert len(picked) == len(convs) + 2  # + wte (the tied LM head) + wpe
    before = [w.clone() for w in convs]
    with q.simulated_quantization(model, 2, "per-tensor"):
        assert all(w.unique().numel() <= 4 for w in convs)
        assert not any(torch.equal(w, b) for w, b in zip(convs, before))
    assert all(torch.equal(w, b) for w, b in zip(convs, before))


def test_per_channel_on_conv1d_means_per_output_column(gpt2):
    w = gpt2.backend.model.transformer.h[0].mlp.c_fc.weight  # (in=16, out=64)
    with q.simulated_quantization(gpt2.backend.model, 1, "per-channel"):
        per_column = [w[:, j].unique().numel() for j in range(w.shape[1])]
        assert max(per_column) <= 2 and w.unique().numel() > 2  # 2 levels per column, not per row
    assert q.simulated_bytes(gpt2.backend.model, 8, "per-channel") > q.simulated_bytes(gpt2.backend.model, 8)


def test_all_parameters_rounds_norms_and_biases_too(gpt2):
    model = gpt2.backend.model
    ln = model.transformer.h[0].ln_1.weight
    before = ln.clone()
    with q.simulated_quantization(model, 1, "per-tensor"):
        assert torch.equal(ln, before)  # matrices only: the norm scale is untouched
    with q.simulated_quantization(model, 1, "per-tensor", which="all"):
        assert ln.unique().numel() == 2
    assert torch.equal(ln, before)
    with pytest.raises(logitscope.InputError):
        q.quantizable_weights(model, "some")


def test_quantization_impact_runs_on_gpt2(gpt2):
    report = gpt2.quantization_impact("the cat sat on the mat the dog slept", bits=(16, 1), int8=False)
    by_bits = {v.bits: v for v in report.variants}
    assert by_bits[16].kl_mean < 1e-4 < by_bits[1].kl_mean and by_bits[16].same_top == 1.0
    assert by_bits[1].perplexity != FLOAT32_RELATIVE.approx(report.base_perplexity)


@pytest.mark.parity
def test_logits_tensor_matches_the_transformers_forward(gpt2):
    text = "the cat sat on the mat"
    logits = gpt2.logits(text)
    ids = gpt2.tokenize(text).ids
    assert logits.shape == (1, len(ids), gpt2.backend.vocab_size)
    with torch.no_grad():
        ref = gpt2.backend.model(torch.tensor([ids])).logits
    FLOAT32_VALUES.assert_close(logits, ref)
    assert gpt2.logits(text, bos=True).shape[1] == len(ids) + 1
    nxt = gpt2.next_token(text, top_k=1, bos=False)
    assert nxt.top[0].token_id == int(logits[0, -1].argmax())


def test_logits_on_the_toy_model_are_its_log_probs(table_model):
    logits = table_model.logits("the cat", bos=True)  # rows: after <BOS>, after "the", after "cat"
    probs = torch.softmax(logits[0].double(), dim=-1)
    cat = table_model.tokenize("cat").ids[0]
    assert float(probs[1, cat]) == FLOAT64.approx(0.75)
    with pytest.raises(logitscope.InputError):
        table_model.logits("   ")
