"""Start a Llama-family model without importing transformers' modelling code.

Importing ``transformers.models.llama`` costs more than a second (it pulls in
torch.distributed, torch._dynamo and sympy); building the model through
``from_pretrained`` adds more. A ``logitscope next`` needs neither: the scoring
forward is ``fast_forward.FastForward``, which only reads the modules' weights.

So for a Llama checkpoint saved as safetensors with a plain ``tokenizer.json``
(the bundled SmolLM2 and most Llama-architecture models), ``load`` builds

- ``LightCausalLM``: the same module tree and parameter names as transformers'
  ``*ForCausalLM`` (embed_tokens, layers.N.self_attn.q_proj, ..., lm_head), made on
  the meta device and given the checkpoint's tensors (``assign=True``: no random
  initialisation, no copy); it has no forward of its own;
- ``LightTokenizer``: the checkpoint's ``tokenizers.Tokenizer`` with the part of
  the transformers tokenizer API that ``HFBackend`` calls;
- ``LazyHFBackend``: an ``HFBackend`` that scores through ``FastForward`` over the
  light model, and builds the real transformers model (sharing the same Parameter
  objects) the first time anything else is asked of ``backend.model``: KV-cache
  decoding, ``backend.model(...)``, quantization. The tokenizer likewise becomes a
  real ``PreTrainedTokenizerFast`` on first use of anything beyond encode/decode.

``plan(path)`` says whether a directory qualifies (None: use the generic path).
Mistral and Qwen2 weights would fit the same tree, but transformers gives those
model types tokenizer classes that rewrite ``tokenizer.json`` (Qwen2's own
pre-tokenizer, Mistral's tekken check), so they take the generic path.
The numbers are the same on both paths (tests/test_loading.py compares them).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from ..errors import ModelLoadError, missing_weights
from .hf import HFBackend, _cache_kwarg
from .fast_decode import StaticCacheDecoder
from .fast_forward import FastForward, torch_supported

# config.json keys the light model reads; an older config.json that leaves one out
# (relying on transformers' class defaults) takes the generic path instead
REQUIRED_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                 "num_key_value_heads", "rms_norm_eps", "max_position_embeddings", "hidden_act", "tie_word_embeddings")
PLAIN_TOKENIZERS = ("TokenizersBackend", "PreTrainedTokenizerFast")  # tokenizer.json as it is, no class rules


def plan(path: Path) -> SimpleNamespace | None:
    """The config and files for a light start of the model in ``path``, or None when it does not qualify."""
    config_file, tok_file = path / "config.json", path / "tokenizer.json"
    if not (torch_supported() and config_file.is_file() and tok_file.is_file()):
        return None
    cfg = json.loads(config_file.read_text())
    kind = cfg.get("model_type")
    if kind != "llama" or cfg.get("hidden_act") != "silu" or cfg.get("pretraining_tp", 1) != 1:
        return None
    if any(k not in cfg for k in REQUIRED_KEYS) or _rope_theta(cfg) is None:
        return None
    weights = _weight_files(path)
    tok_cfg = _read_json(path / "tokenizer_config.json")
    if not weights or tok_cfg.get("tokenizer_class") not in PLAIN_TOKENIZERS:
        return None
    if any(k in tok_cfg for k in ("add_bos_token", "add_eos_token")):
        return None
    specials = _read_json(path / "special_tokens_map.json")  # written by transformers 4
    if any(_content(specials.get(k)) not in (None, _content(tok_cfg.get(k))) for k in ("bos_token", "eos_token")):
        return None
    tok_cfg = {**tok_cfg, **{k: v for k, v in specials.items() if k not in tok_cfg}}
    return SimpleNamespace(config=SimpleNamespace(**cfg), weights=weights, tokenizer_file=tok_file,
                           tokenizer_config=tok_cfg)


def load(path: Path, start: SimpleNamespace, name: str) -> LazyHFBackend:
    """Build the light model and tokenizer from ``plan(path)`` and wrap them in a backend."""
    model = LightCausalLM.from_checkpoint(start.config, start.weights)
    tokenizer = LightTokenizer(start.tokenizer_file, start.tokenizer_config, path)
    return LazyHFBackend(model, tokenizer, path, name)


# -- the model ----------------------------------------------------------------------
# Modules are made on the meta device and then handed the checkpoint's tensors, so
# they skip their random initialisation: on meta it would still cost an import of
# torch._dynamo (~1 s) for the reference implementation of normal_.
class Linear(nn.Linear):
    def reset_parameters(self) -> None:
        pass


class Embedding(nn.Embedding):
    def reset_parameters(self) -> None:
        pass


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(size))
        self.variance_epsilon = eps


class RotaryEmbedding(nn.Module):
    """transformers' default RoPE: cos/sin (B, T, D) of positions (B, T), both halves equal."""

    def __init__(self, head_dim: int, theta: float):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))  # (D/2,)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, x: torch.Tensor, position_ids: torch.Tensor):
        freqs = position_ids[..., None].float() * self.inv_freq.to(device=x.device, dtype=torch.float)  # (B, T, D/2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype=x.dtype), emb.sin().to(dtype=x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg, head_dim: int, bias: bool):
        super().__init__()
        self.head_dim, self.scaling = head_dim, head_dim ** -0.5
        self.q_proj = Linear(cfg.hidden_size, cfg.num_attention_heads * head_dim, bias=bias)
        self.k_proj = Linear(cfg.hidden_size, cfg.num_key_value_heads * head_dim, bias=bias)
        self.v_proj = Linear(cfg.hidden_size, cfg.num_key_value_heads * head_dim, bias=bias)
        self.o_proj = Linear(cfg.num_attention_heads * head_dim, cfg.hidden_size, bias=False)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.gate_proj = Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)


class DecoderLayer(nn.Module):
    def __init__(self, cfg, head_dim: int, bias: bool):
        super().__init__()
        self.self_attn = Attention(cfg, head_dim, bias)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class Decoder(nn.Module):
    def __init__(self, cfg, head_dim: int, bias: bool):
        super().__init__()
        self.embed_tokens = Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(cfg, head_dim, bias) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class LightCausalLM(nn.Module):
    """The weights of a ``LlamaForCausalLM`` under the same names; run by ``FastForward``."""

    def __init__(self, cfg, bias: bool):
        super().__init__()
        self.config = cfg
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.model = Decoder(cfg, head_dim, bias)
        self.lm_head = Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.head_dim = head_dim

    @classmethod
    def from_checkpoint(cls, cfg, files: list[Path]) -> LightCausalLM:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            tensors = {k: v.float() for f in files for k, v in load_file(f).items()}  # float32 as the generic path
            with torch.device("meta"):
                model = cls(cfg, bias="model.layers.0.self_attn.q_proj.bias" in tensors)
            missing, unexpected = model.load_state_dict(tensors, strict=False, assign=True)
        except (OSError, SafetensorError, RuntimeError) as exc:  # unreadable file, a tensor of the wrong shape
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelLoadError(f"cannot load {files[0].parent}: {reason}",
                                 hint="the weights look corrupt or incomplete; re-download or re-convert them") from exc
        if cfg.tie_word_embeddings:  # as transformers: the head is the embedding, whatever else is stored
            model.lm_head.weight = model.model.embed_tokens.weight
            missing = [k for k in missing if k != "lm_head.weight"]
        check_complete(missing, unexpected, files[0].parent)
        model.model.rotary_emb = RotaryEmbedding(model.head_dim, _rope_theta(vars(cfg)))  # built on the CPU
        return model.eval()

    def get_decoder(self) -> nn.Module:
        return self.model

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head


def check_complete(missing, unexpected, where: Path) -> None:
    """Every parameter must come from the checkpoint; an unexpected tensor means another architecture."""
    if missing:
        raise missing_weights(missing, where)
    if unexpected:
        raise NotPlain(sorted(unexpected))


class NotPlain(Exception):
    """The checkpoint has tensors a plain Llama layer does not (q/k norms, ...): use the generic path."""


# -- the tokenizer ------------------------------------------------------------------
class LightTokenizer:
    """A ``tokenizers.Tokenizer`` answering the calls HFBackend makes; anything else goes to the real one."""

    def __init__(self, tokenizer_file: Path, tokenizer_config: dict, path: Path):
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(tokenizer_file))
        self._path, self._real = path, None
        self.bos_token_id = self._special_id(tokenizer_config.get("bos_token"))
        self.eos_token_id = self._special_id(tokenizer_config.get("eos_token"))

    def _special_id(self, token) -> int | None:
        content = _content(token)
        return None if content is None else self._tok.token_to_id(content)

    def __call__(self, text: str, add_special_tokens: bool = True, return_offsets_mapping: bool = False, **kwargs):
        if kwargs or not isinstance(text, str):
            return self.real(text, add_special_tokens=add_special_tokens,
                             return_offsets_mapping=return_offsets_mapping, **kwargs)
        enc = self._tok.encode(text, add_special_tokens=add_special_tokens)
        out = {"input_ids": enc.ids, "attention_mask": enc.attention_mask}
        if return_offsets_mapping:
            out["offset_mapping"] = enc.offsets
        return out

    def decode(self, ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None,
               **kwargs) -> str:
        if kwargs or clean_up_tokenization_spaces is not False:
            return self.real.decode(ids, skip_special_tokens=skip_special_tokens,
                                    clean_up_tokenization_spaces=clean_up_tokenization_spaces, **kwargs)
        return self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens)

    @property
    def real(self):
        """The transformers tokenizer of the same directory, loaded on first need."""
        if self._real is None:
            from transformers import AutoTokenizer

            self._real = AutoTokenizer.from_pretrained(str(self._path), local_files_only=True)
        return self._real

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.real, name)

    def __len__(self) -> int:
        return len(self.real)


# -- the backend --------------------------------------------------------------------
class LazyHFBackend(HFBackend):
    """HFBackend over a LightCausalLM; ``.model`` becomes the transformers model on first use."""

    def __init__(self, light: LightCausalLM, tokenizer: LightTokenizer, path: Path, name: str):
        self._light, self._path, self._real = light, path, None
        super().__init__(light, tokenizer, name=name)

    @property
    def model(self) -> nn.Module:
        if self._real is None:
            self.model = build_transformers_model(self._light, self._path)
        return self._real

    @model.setter
    def model(self, value: nn.Module) -> None:
        if value is self._light:
            return  # HFBackend.__init__ storing the light model: it stays behind the fast path
        self._real = value
        if getattr(self, "_fast_forward", None) is not None:  # the fast forward follows the model it serves
            self._fast_forward = FastForward.for_model(value)
        if getattr(self, "_static_decoder", None) is not None:  # and so does the static-cache decoder
            self._static_decoder = StaticCacheDecoder.for_model(value)

    def _decoder_for(self, length: int):
        """Decoding needs no transformers model: the fast decode step runs on the light model's weights."""
        if self._real is None:
            fast = self._static_decoder
            return fast if fast is not None and fast.covers(length) else None
        return super()._decoder_for(length)

    @property
    def cache_arg(self) -> str:
        return _cache_kwarg(self.model)

    @cache_arg.setter
    def cache_arg(self, value: str) -> None:
        pass  # known once the real model exists

    def hidden_states(self, ids: torch.Tensor) -> torch.Tensor:
        if self._real is None and self._fast_forward is not None and self._fast_forward.covers(ids.shape[1]):
            return self._fast_forward(ids.to(self.device))  # (B, T, H)
        return super().hidden_states(ids)

    def lm_head(self) -> nn.Module:
        return self._light.lm_head if self._real is None else super().lm_head()

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        if self._real is None:
            return self._cap(self._light.lm_head(hidden).float())  # (N, V)
        return super().project(hidden)


def build_transformers_model(light: LightCausalLM, path: Path) -> nn.Module:
    """The transformers model of ``path`` made on the meta device, holding the light model's Parameters."""
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    with torch.device("meta"):
        real = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    real.load_state_dict(light.state_dict(keep_vars=True), strict=True, assign=True)  # the same Parameter objects
    decoder = real.get_decoder()
    decoder.rotary_emb = type(decoder.rotary_emb)(config=config)  # its buffers are not in the checkpoint
    if (path / "generation_config.json").exists():
        real.generation_config = GenerationConfig.from_pretrained(str(path))
    left = [n for n, t in [*real.named_parameters(), *real.named_buffers()] if t.is_meta]
    if left:
        raise ModelLoadError(f"cannot rebuild the transformers model of {path}: {', '.join(left[:5])} not set",
                             hint="set LOGITSCOPE_FAST_PATHS=0 to load through transformers directly")
    return real.eval()


# -- helpers --------------------------------------------------------------------------
def _rope_theta(cfg: dict) -> float | None:
    """The RoPE base of a default-RoPE model (None for scaled variants: generic path)."""
    params = cfg.get("rope_parameters") or cfg.get("rope_scaling")
    if params and params.get("rope_type", params.get("type", "default")) != "default":
        return None
    if params and "rope_theta" in params:
        return float(params["rope_theta"])
    return float(cfg["rope_theta"]) if "rope_theta" in cfg else None


def _weight_files(path: Path) -> list[Path]:
    single = path / "model.safetensors"
    if single.is_file():
        return [single]
    index = path / "model.safetensors.index.json"
    if index.is_file():
        return [path / f for f in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
    return []


def _content(token) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or {"content": ...}."""
    return token.get("content") if isinstance(token, dict) else token


def _read_json(file: Path) -> dict:
    return json.loads(file.read_text()) if file.is_file() else {}
