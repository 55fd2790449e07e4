"""logitscope: see what a causal language model believes, token by token."""

from __future__ import annotations

from .backends import Backend, Capabilities, ToyBackend
from .errors import CapabilityError, InputError, LogitscopeError, ModelLoadError
from .model import Model
from .processors import Sampler, SamplerConfig
from .results import NextTokenResult, ScoreResult, TokenCandidate, TokenScore
from .perplexity import PerplexityResult
from .calibration import CalibrationReport
from .quantization import QuantizationReport
from .lift import LiftResult
from .ranking import RankResult
from .truth import TruthResult
from .uncertainty import UncertaintyResult

__version__ = "0.1.0"


def load(path=None, *, device: str | None = None, threads: int | None = None) -> Model:
    """Load a model: None/'bundled' (SmolLM2-135M-Instruct), 'toy', a local HF directory or a .gguf file.

    The default comes from $LOGITSCOPE_MODEL when set.
    """
    from .loading import load_backend

    return Model(load_backend(path, device=device, threads=threads))


def from_backend(backend: Backend) -> Model:
    """Wrap any Backend (e.g. a ToyBackend) as a Model."""
    return Model(backend)


__all__ = ["load", "from_backend", "Model", "PerplexityResult", "Backend", "Capabilities", "ToyBackend", "LogitscopeError",
           "InputError", "ModelLoadError", "CapabilityError", "NextTokenResult", "ScoreResult",
           "TokenCandidate", "TokenScore", "SamplerConfig", "Sampler", "CalibrationReport", "QuantizationReport",
           "RankResult", "LiftResult", "UncertaintyResult", "TruthResult", "__version__"]
