"""The transformers backend on a CUDA device gives the CPU's numbers, float32 noise apart.

CI has no GPU, so this file skips there; on a machine with one:

    PYTHONPATH=src python -m pytest tests/test_cuda.py -v

On CUDA the CPU fast paths (``fast_forward``, ``fast_decode``) are off and transformers' own
forward runs; the CPU side keeps them on, as a user's CPU run has them. Every analysis's
``to_dict()`` is compared field by field: token ids, ranks and texts exactly, numbers within
``CPU_VS_CUDA`` (tests/tolerances.py: an absolute part, plus a relative one for perplexities), ranks
exactly in the top 100. The largest difference seen is printed.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

import logitscope
from logitscope import SamplerConfig
from logitscope.backends.hf import HFBackend

from tiny_models import FAMILIES, tiny_model, tiny_tokenizer
from tolerances import CPU_VS_CUDA

DEVICE = "cuda"
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (CI has none)")

TIMING_KEYS = {"seconds", "elapsed", "elapsed_s", "tokens_per_second", "time_s", "wall_s"}
PROMPT = "Once upon a time"
TEXT = "The cat sat on the mat. To be or not to be, that is the question."
LONG = "Once upon a time there was a small model. The capital of France is Paris. " * 12
GREEDY = SamplerConfig(temperature=0.0)
TOP_P = SamplerConfig(temperature=0.9, top_k=40, top_p=0.9)
WORST: dict[str, float] = {}


def smollm2_shaped() -> torch.nn.Module:
    """A random model of the bundled SmolLM2-135M's shape (30 layers, GQA 9/3, 49,152-token head)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048,
                         rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True, bos_token_id=0,
                         eos_token_id=1, initializer_range=1 / 24)  # SmolLM2-135M's own config value
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module", autouse=True)
def _report_the_largest_differences():
    """Prints the largest CPU/CUDA difference per analysis after the module (seen with -s):
    absolute, or relative to the value where it is larger than 1 (perplexities)."""
    yield
    for tag, worst in sorted(WORST.items()):
        print(f"max |cpu - cuda| {tag}: {worst:.2e}")


@pytest.fixture(scope="module", params=[*FAMILIES, "smollm2-shape"])
def pair(request):
    """(CPU model, CUDA model) over the same weights."""
    module = smollm2_shaped() if request.param == "smollm2-shape" else tiny_model(request.param)
    cpu = logitscope.from_transformers(module, tiny_tokenizer(), name=request.param)
    gpu = logitscope.from_transformers(copy.deepcopy(module).to(DEVICE), tiny_tokenizer(), name=request.param)
    assert gpu.backend.device.type == "cuda" and gpu.backend._fast_forward is None and gpu.backend._static_decoder is None
    yield request.param, cpu, gpu
    del gpu
    torch.cuda.empty_cache()


def assert_same(a, b, where: str = "", tag: str = "") -> None:
    """``a`` and ``b`` (to_dict() trees) agree: structure, strings and ints exactly, floats within tolerance."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            if key == "rank" and isinstance(a[key], int):
                assert_rank(a[key], b[key], f"{where}.{key}")
            elif key not in TIMING_KEYS:
                assert_same(a[key], b[key], f"{where}.{key}", tag)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]", tag)
    elif isinstance(a, float) or isinstance(b, float):
        if math.isnan(a) or math.isinf(a):
            assert (math.isnan(a) and math.isnan(b)) or a == b, where
            return
        assert b == CPU_VS_CUDA.approx(a), where
        WORST[tag] = max(WORST.get(tag, 0.0), abs(a - b) / max(1.0, abs(a)))
    else:
        assert a == b, where


def assert_rank(a: int, b: int, where: str) -> None:
    """Ranks agree exactly near the top; deep in a 49k-token tail, logits within float32 noise of
    the target's may swap places (seen: rank 10,808 on the CPU, 10,807 on CUDA)."""
    assert a == b if min(a, b) <= 100 else abs(a - b) <= a // 1000, where


def same(tag: str, cpu_result, gpu_result) -> None:
    assert_same(cpu_result.to_dict(), gpu_result.to_dict(), tag, tag)


def test_scores_and_next_token_tables(pair):
    name, cpu, gpu = pair
    same(f"{name} score", cpu.score(TEXT, top_k=5), gpu.score(TEXT, top_k=5))
    same(f"{name} next", cpu.next_token(PROMPT, top_k=10), gpu.next_token(PROMPT, top_k=10))
    same(f"{name} uncertain", cpu.uncertain(TEXT), gpu.uncertain(TEXT))


@pytest.mark.parametrize("convention", ["strided", "disjoint", "llamacpp"])
def test_perplexity_under_each_convention(pair, convention):
    name, cpu, gpu = pair
    same(f"{name} perplexity", cpu.perplexity([LONG], convention=convention, window=64),
         gpu.perplexity([LONG], convention=convention, window=64))


def test_contract_values(pair):
    """nll_sums and token_logprobs (the server's and perplexity's hot paths) on batches."""
    name, cpu, gpu = pair
    seqs = [cpu.backend.tokenize(t).ids for t in (TEXT, LONG[:150], PROMPT)]
    starts = [1, 5, 2]
    for a, b in zip(cpu.backend.nll_sums(seqs, starts), gpu.backend.nll_sums(seqs, starts)):
        assert b == pytest.approx(a, abs=CPU_VS_CUDA.abs * 10, rel=CPU_VS_CUDA.rel)  # a sum of ~200 terms
    for a, b in zip(cpu.backend.token_logprobs(seqs, starts), gpu.backend.token_logprobs(seqs, starts)):
        assert b.device.type == "cpu"
        CPU_VS_CUDA.assert_close(b, a)


def test_greedy_generation_is_transformers_generate_on_cuda(pair):
    name, cpu, gpu = pair
    result = gpu.generate(LONG[:60], 24, GREEDY, top_alternatives=3)
    ids = torch.tensor([list(result.input_ids)], device=DEVICE)
    with torch.inference_mode():
        ref = gpu.backend.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                         max_new_tokens=24, min_new_tokens=24, pad_token_id=gpu.backend.eos_token_id)
    assert list(result.token_ids) == ref[0, ids.shape[1]:].tolist()
    same(f"{name} generate greedy", cpu.generate(LONG[:60], 24, GREEDY, top_alternatives=3), result)


def test_sampled_generation_and_draws(pair):
    name, cpu, gpu = pair
    same(f"{name} generate top-p", cpu.generate(PROMPT, 16, TOP_P, seed=3), gpu.generate(PROMPT, 16, TOP_P, seed=3))
    same(f"{name} sample", cpu.sample(PROMPT, 300, TOP_P, seed=1), gpu.sample(PROMPT, 300, TOP_P, seed=1))
    same(f"{name} chain", cpu.chain(PROMPT, TOP_P), gpu.chain(PROMPT, TOP_P))


def test_beam_tree_and_ranking(pair):
    name, cpu, gpu = pair
    same(f"{name} beam", cpu.beam_search(PROMPT, num_beams=3, max_new_tokens=6),
         gpu.beam_search(PROMPT, num_beams=3, max_new_tokens=6))
    same(f"{name} tree", cpu.tree(PROMPT, depth=2, branch=3), gpu.tree(PROMPT, depth=2, branch=3))
    candidates = [" there was a cat", " the end", " a small model"]
    same(f"{name} rank", cpu.rank(PROMPT, candidates, top_k=3), gpu.rank(PROMPT, candidates, top_k=3))


def test_quantization_impact(pair):
    """Simulated bits round the CUDA weights in place (and restore them); int8 runs on a CPU copy."""
    name, cpu, gpu = pair
    if name == "smollm2-shape":
        pytest.skip("the tiny models cover it; the 135M-shaped one would add minutes of int8 CPU work")
    before = [p.detach().clone() for p in gpu.backend.model.parameters()]
    same(f"{name} quantization", cpu.quantization_impact(LONG, bits=(8, 4), window=64),
         gpu.quantization_impact(LONG, bits=(8, 4), window=64))
    assert all(torch.equal(p, q) for p, q in zip(before, gpu.backend.model.parameters()))
    assert next(gpu.backend.model.parameters()).device.type == "cuda"


def test_loading_a_checkpoint_onto_cuda(tmp_path):
    """``logitscope.load(dir, device="cuda")`` (the light CPU start does not apply) scores as on the CPU."""
    module = tiny_model("llama")
    module.save_pretrained(tmp_path)
    tiny_tokenizer().save_pretrained(tmp_path)
    gpu, cpu = logitscope.load(str(tmp_path), device=DEVICE), logitscope.load(str(tmp_path), device="cpu")
    assert isinstance(gpu.backend, HFBackend) and gpu.backend.device.type == "cuda"
    same("load", cpu.score(TEXT, top_k=5), gpu.score(TEXT, top_k=5))
