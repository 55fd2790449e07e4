"""logitscope: see what a causal language model believes, token by token.

``import logitscope`` is cheap: it imports the error types and nothing that needs
torch. The result types and helpers named in ``__all__`` load on first use
(module ``__getattr__``), so ``logitscope.load`` does not pay for calibration,
quantization or plotting code it does not run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import CapabilityError, InputError, LogitscopeError, ModelLoadError

if TYPE_CHECKING:  # for type checkers and IDEs only; at run time these load lazily
    from .backends.base import Backend
    from .model import Model

__version__ = "0.1.0"

# public name -> module that defines it (relative to this package)
_LAZY = {
    "Model": ".model",
    "Backend": ".backends.base", "Capabilities": ".backends.base", "ToyBackend": ".backends.toy",
    "Sampler": ".core.processors", "SamplerConfig": ".core.processors",
    "NextTokenResult": ".results", "ScoreResult": ".results", "TokenCandidate": ".results",
    "TokenScore": ".results", "TokenizeResult": ".results", "TokenPiece": ".results",
    "PerplexityResult": ".scoring.perplexity", "PerplexityComparison": ".scoring.perplexity",
    "ChainResult": ".sampling.chain", "SampleResult": ".sampling.chain",
    "GenerationResult": ".sampling.generation", "TraceStep": ".sampling.generation",
    "BeamResult": ".sampling.beam", "TreeResult": ".sampling.tree",
    "RankResult": ".confidence.ranking", "LiftResult": ".confidence.lift",
    "TruthResult": ".confidence.truth", "UncertaintyResult": ".confidence.uncertainty",
    "CalibrationReport": ".evaluation.calibration", "QuantizationReport": ".evaluation.quantization",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'logitscope' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def load(path=None, *, device: str | None = None, threads: int | None = None, engine: str | None = None,
         dtype: str | None = None, remote: dict | None = None) -> "Model":
    """Load a model: None/'bundled' (SmolLM2-135M-Instruct), 'toy', a local HF directory, a .gguf file, or
    an OpenAI-compatible server's URL (``remote``: {"api_key": ..., "concurrency": ..., "timeout": ...}).

    ``engine``: "torch", "llamacpp" (.gguf files; ``bash scripts/install_llamacpp.sh``) or "auto" (default:
    llama.cpp only for .gguf files over 600 MB); ``dtype``: the torch engine's "float32" (default, the
    reference) or "bfloat16". The default model comes from $LOGITSCOPE_MODEL when set.
    """
    from .loading import load_backend
    from .model import Model

    return Model(load_backend(path, device=device, threads=threads, engine=engine, dtype=dtype, remote=remote))


def from_backend(backend: "Backend") -> "Model":
    """Wrap any Backend (e.g. a ToyBackend) as a Model."""
    from .model import Model

    return Model(backend)


def from_transformers(model, tokenizer, name: str | None = None) -> "Model":
    """Wrap a transformers ``*ForCausalLM`` and its (fast) tokenizer already in memory.

    The model is used as it is (device, dtype and weights untouched) and put in eval mode.
    """
    from .backends.hf import HFBackend
    from .model import Model

    return Model(HFBackend(model, tokenizer, name=name))


__all__ = ["load", "from_backend", "from_transformers", "__version__", "LogitscopeError", "InputError",
           "ModelLoadError", "CapabilityError", *_LAZY]
