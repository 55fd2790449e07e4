"""Weight quantization: the rounding math (hypothesis), compact KL, and parity on smol."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from logitscope.core import mathops
from logitscope.evaluation import quantization as q
from logitscope.core.boundary import encode
from logitscope.errors import InputError
from tolerances import FLOAT32_RELATIVE, FLOAT32_TOKEN, FLOAT32_VALUES, FLOAT64

TEXT = ("The cat sat on the mat. It was a sunny day, and the children were playing in the park "
        "while their parents watched from the benches.")


matrices = st.tuples(st.integers(1, 6), st.integers(1, 8), st.integers(0, 2**31 - 1)).map(
    lambda t: torch.randn(t[0], t[1], generator=torch.Generator().manual_seed(t[2])) * 3)


@settings(max_examples=80, deadline=None)
@given(matrices, st.integers(1, 12), st.sampled_from(q.SCHEMES))
def test_affine_grid_properties(w, bits, scheme):
    out = q.quantize_tensor(w, bits, scheme)
    rows = [out] if scheme == "per-tensor" else list(out)
    for row, orig in zip(rows, [w] if scheme == "per-tensor" else list(w)):
        assert row.unique().numel() <= 2 ** bits  # at most 2^b levels per grid
        assert row.min() >= orig.min() - 1e-6 and row.max() <= orig.max() + 1e-6
        step = (orig.max() - orig.min()) / (2 ** bits - 1)
        assert (row - orig).abs().max() <= step / 2 + 1e-5  # nearest grid point
    assert torch.equal(q.quantize_tensor(out, bits, scheme), out)  # the grid is a fixed point


@settings(max_examples=60, deadline=None)
@given(matrices, st.integers(1, 10), st.sampled_from(q.SCHEMES))
def test_symmetric_grid_is_symmetric(w, bits, scheme):
    out = q.quantize_tensor(w, bits, scheme, symmetric=True)
    assert FLOAT32_VALUES.allclose(q.quantize_tensor(-w, bits, scheme, symmetric=True), -out)
    levels = 2 if bits == 1 else 2 ** bits - 1
    for row in ([out] if scheme == "per-tensor" else list(out)):
        assert row.unique().numel() <= levels


def test_32_bits_is_the_identity_up_to_float32_rounding():
    w = torch.randn(64, 32, generator=torch.Generator().manual_seed(0))
    for scheme in q.SCHEMES:
        assert FLOAT32_VALUES.allclose(q.quantize_tensor(w, 32, scheme), w)


def test_one_bit_affine_keeps_min_and_max():
    w = torch.tensor([[-1.0, -0.2, 0.6, 2.0]])  # grid {-1, 2}: 0.6 is nearer 2 (midpoint 0.5)
    assert q.quantize_tensor(w, 1).tolist() == [[-1.0, -1.0, 2.0, 2.0]]
    assert q.quantize_tensor(w, 1, symmetric=True).tolist() == [[-2.0, -2.0, 2.0, 2.0]]


@pytest.mark.parametrize("bits", [0, 33, -4, 2.5, True])
def test_bits_outside_1_to_32_are_rejected(bits):
    with pytest.raises(InputError, match="bits"):
        q.quantize_tensor(torch.ones(2, 2), bits)


def test_unknown_scheme_is_rejected():
    with pytest.raises(InputError, match="per-channel"):
        q.quantize_tensor(torch.ones(2, 2), 8, "per-group")


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight  # tied like SmolLM2's LM head


def test_simulated_quantization_restores_weights_and_counts_tied_weights_once():
    model = Tied()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert len(q.quantizable_weights(model)) == 1
    with q.simulated_quantization(model, 2, "per-channel"):
        assert model.embed.weight.unique().numel() <= 4 * 10
        assert not torch.equal(model.embed.weight, before["embed.weight"])
        assert model.head.weight is model.embed.weight
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert q.model_bytes(model) == (40 + 8) * 4
    # 40 weights at 4 bits = 20 bytes, 10 rows x (scale + offset) = 80 bytes, LayerNorm 32 bytes
    assert q.simulated_bytes(model, 4, "per-channel") == 20 + 80 + 32


distributions = st.integers(3, 30).flatmap(lambda v: st.tuples(
    st.lists(st.floats(-8, 8), min_size=v, max_size=v), st.lists(st.floats(-8, 8), min_size=v, max_size=v),
    st.integers(1, v)))


@settings(max_examples=100, deadline=None)
@given(distributions)
def test_top_k_kl_is_between_zero_and_the_full_kl(case):
    p_logits, q_logits, k = case
    lp = mathops.log_softmax(torch.tensor([p_logits], dtype=torch.float64))  # (1, V)
    lq = mathops.log_softmax(torch.tensor([q_logits], dtype=torch.float64))
    ids = lp.topk(k, dim=-1).indices
    coarse = mathops.kl_top_k(lp.gather(-1, ids), lq.gather(-1, ids))
    full = mathops.kl_divergence(lp, lq)
    assert -1e-12 <= float(coarse) <= float(full) + 1e-9
    if k == lp.shape[-1]:
        assert float(coarse) == FLOAT64.approx(float(full))


@pytest.fixture(scope="module")
def smol_text(smol):
    enc = encode(smol.backend, TEXT)
    return smol, enc, q.capture_base(smol.backend, enc.ids, enc.score_from, 1024, 256)


@pytest.mark.slow
def test_base_against_itself_is_zero_kl_and_all_same_top(smol_text):
    smol, enc, base = smol_text
    cmp = q.compare_to_base(smol.backend, enc.ids, enc.score_from, 1024, base)
    assert np.all(cmp.kl == 0.0) and cmp.same_top.all() and np.all(cmp.delta_p == 0.0)
    assert np.exp(-base.target_logprob.mean()) == FLOAT32_RELATIVE.approx(smol.score(TEXT).perplexity)


@pytest.mark.slow
def test_windows_change_nothing_but_context(smol_text):
    smol, enc, base = smol_text
    small = q.capture_base(smol.backend, enc.ids, enc.score_from, 8, 256)  # disjoint 8-token windows
    assert small.target_logprob.shape == base.target_logprob.shape
    assert small.target_logprob[:6] == FLOAT32_TOKEN.approx(base.target_logprob[:6])  # first window: same context


@pytest.mark.slow
def test_top_256_kl_is_close_to_the_exact_full_vocabulary_kl(smol_text):
    smol, enc, base = smol_text
    vocab = smol.backend.vocab_size
    exact = q.capture_base(smol.backend, enc.ids, enc.score_from, 1024, vocab)  # full rows: exact KL
    with q.simulated_quantization(smol.backend.model, 6, "per-tensor"):
        approx = q.compare_to_base(smol.backend, enc.ids, enc.score_from, 1024, base).kl
        full = q.compare_to_base(smol.backend, enc.ids, enc.score_from, 1024, exact).kl
    assert np.all(approx <= full + 1e-6)
    assert approx.mean() == pytest.approx(full.mean(), rel=0.1)


@pytest.mark.slow
def test_sweep_on_smol(smol):
    weight = smol.backend.model.model.layers[0].mlp.up_proj.weight
    checksum = float(weight.detach().double().sum())
    report = q.quantization_impact(smol.backend, TEXT, bits=[32, 4], scheme="per-channel", int8=True)
    assert float(weight.detach().double().sum()) == checksum  # weights restored
    b32, b4, int8 = report.variants
    assert b32.perplexity == FLOAT32_RELATIVE.approx(report.base_perplexity)
    assert b32.same_top == 1.0 and b32.kl_mean < 1e-6
    for v in report.variants:
        assert min(v.token_kl) >= -1e-9  # KL is non-negative at every token
        kl = np.array(v.token_kl)  # the summary statistics are those of the per-token KLs (llama.cpp's definitions)
        assert (v.kl_mean, v.kl_median, v.kl_p99, v.kl_max) == FLOAT64.approx((kl.mean(), np.median(kl), np.percentile(kl, 99), kl.max()))
        assert len(kl) == report.num_tokens and v.same_top * report.num_tokens == FLOAT64.approx(round(v.same_top * report.num_tokens))  # a whole number of tokens agree
    assert b4.kl_mean > b32.kl_mean and b4.size_bytes < report.base_bytes / 6
    assert int8.bits is None and int8.size_bytes < report.base_bytes
    assert report.base_store_bytes < report.num_tokens * 256 * 8 + report.num_tokens * 8 + 1
    json.loads(report.to_json())


@pytest.mark.slow
def test_quantize_cli(cli, tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(TEXT)
    out = cli(["quantize", str(path), "--bits", "16", "8", "--no-int8", "--json", "--plot", str(tmp_path / "q.png")])
    assert out.exit_code == 0
    assert [v["bits"] for v in json.loads(out.output)["variants"]] == [16, 8]
    assert (tmp_path / "q.png").stat().st_size > 1000
    text = cli(["quantize", str(path), "--bits", "8", "--no-int8"])
    assert "8-bit" in text.output and "per-token KL" in text.output


@pytest.mark.parametrize("args, message", [
    (["--bits", "0"], "bits=0 is out of range"),
    (["--bits", "16", "64"], "bits=64 is out of range"),
    (["--bits", "eight"], "not a list of integers"),
])
def test_quantize_cli_bad_bits_are_one_line(cli, tmp_path, args, message):
    path = tmp_path / "t.txt"
    path.write_text(TEXT)
    out = cli(["quantize", str(path), *args, "--model", "toy"])
    assert out.exit_code == 2 and message in out.output and out.output.count("\n") == 1


@pytest.mark.slow
def test_quantize_cli_empty_text_is_one_line(cli, tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("  \n")
    out = cli(["quantize", str(path)])
    assert out.exit_code == 2 and "empty" in out.output and out.output.count("\n") == 1


@pytest.mark.parametrize("scheme", q.SCHEMES)
def test_int8_path_quantizes_gpt2_conv1d_on_a_copy(scheme):
    """quantize_dynamic only knows nn.Linear: GPT-2's Conv1D layers must be converted first,
    or an "int8" GPT-2 runs its attention and MLP in float32."""
    import logitscope
    from tiny_models import naive_logprobs, tiny_model, tiny_tokenizer

    model = tiny_model("gpt2")
    convs = [m for m in model.modules() if type(m).__name__ == "Conv1D"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    backend = logitscope.from_transformers(model, tiny_tokenizer(), name="tiny-gpt2").backend
    qmodel = q.int8_dynamic_backend(backend, scheme).torch_module
    assert not [m for m in qmodel.modules() if type(m).__name__ == "Conv1D"]
    dynamic = [m for m in qmodel.modules() if type(m).__module__.startswith("torch.ao.nn.quantized.dynamic")]
    assert len(convs) == 4 * 2 and len(dynamic) == len(convs) + 1  # + the LM head
    assert backend.torch_module is model and all(type(m).__name__ == "Conv1D" for m in convs)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the float model is unchanged
    ids = tiny_tokenizer()("The cat sat on the mat. To be or not to be")["input_ids"]
    base, quantized = naive_logprobs(model, ids), naive_logprobs(qmodel, ids)  # (T, V)
    assert not torch.equal(base, quantized)  # it really ran the int8 kernels
    kl = (base.exp() * (base - quantized)).sum(-1)  # (T,) KL(float32 || int8) per position
    assert float(kl.max()) < 0.05 and (base.argmax(-1) == quantized.argmax(-1)).float().mean() > 0.9


def test_impact_can_round_every_parameter_as_the_seed_sweep_does():
    import logitscope
    from tiny_models import tiny_model, tiny_tokenizer

    model = tiny_model("gpt2")
    tiny = logitscope.from_transformers(model, tiny_tokenizer(), name="tiny-gpt2")
    text = "The cat sat on the mat. To be or not to be"
    matrices = tiny.quantization_impact(text, bits=(2,), int8=False)
    every = tiny.quantization_impact(text, bits=(2,), int8=False, which="all")
    assert (matrices.which, every.which) == ("matrices", "all")
    assert every.variants[0].kl_mean != pytest.approx(matrices.variants[0].kl_mean, rel=1e-3)  # norms and biases too
    with q.simulated_quantization(model, 2, which="all"):
        by_hand = tiny.score(text).perplexity
    assert every.variants[0].perplexity == FLOAT32_RELATIVE.approx(by_hand)
    n_vectors = sum(1 for p in q.quantizable_weights(model, "all") if p.dim() == 1)
    assert every.variants[0].size_bytes < matrices.variants[0].size_bytes  # the vectors shrink too
    # per-channel: one (scale, offset) per output row instead of per matrix; vectors keep one grid each.
    # rows: wte 330 + wpe 96 + per layer c_attn 144 + c_proj 48 + c_fc 192 + c_proj 48, minus 1 per matrix (10)
    rows = 330 + 96 + 2 * (144 + 48 + 192 + 48) - 10
    assert q.simulated_bytes(model, 8, "per-channel", which="all") - q.simulated_bytes(model, 8, which="all") == 8 * rows
    assert n_vectors > 0
    with pytest.raises(InputError):
        tiny.quantization_impact(text, bits=(2,), int8=False, which="some")


def test_quantize_cli_rounds_every_parameter_with_which_all(cli, tmp_path):
    from tiny_models import tiny_model, tiny_tokenizer

    tiny_model("gpt2").save_pretrained(tmp_path / "m")
    tiny_tokenizer().save_pretrained(tmp_path / "m")
    (tmp_path / "t.txt").write_text("The cat sat on the mat. To be or not to be")
    runs = {which: json.loads(cli(["quantize", str(tmp_path / "t.txt"), "--bits", "2", "--no-int8", "--which", which,
                                   "-m", str(tmp_path / "m"), "--json"]).output) for which in ("matrices", "all")}
    assert [runs[w]["which"] for w in runs] == ["matrices", "all"]
    assert runs["all"]["variants"][0]["size_bytes"] < runs["matrices"]["variants"][0]["size_bytes"]
    assert "Invalid value for '--which'" in cli(["quantize", str(tmp_path / "t.txt"), "--which", "some"]).output
