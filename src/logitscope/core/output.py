"""The one output writer: files appear whole or not at all, and a failure names the target.

Every file logitscope writes (HTML heatmaps, plots, copied notebooks, the converted-model
cache) is written to a temporary name in the target's own folder and renamed over the
target only once it is complete, so a full disk, a read-only folder or a crash never
leaves a half-written file (or a ``.tmp`` folder) behind, and an earlier good file survives.
A failure is an ``InputError`` that names the target, says why, and what to do:

    write_file("out.png", lambda tmp: fig.savefig(tmp, format="png"))
    -> InputError("out.png: cannot write it (no space left on device)", hint="free some space ...")

The CLI shows a command's results before it writes its files, so a failed write loses
no numbers.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError


def write_file(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Run ``write(tmp)`` on a temporary path in ``path``'s folder, then rename it to ``path``."""
    target = Path(path).expanduser()
    tmp = _temporary(target)
    try:
        write(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        _remove(tmp)
        raise write_error(target, exc) from None
    except BaseException:
        _remove(tmp)
        raise
    return target


def write_text(path: str | Path, text: str) -> Path:
    """``path`` holding ``text`` (UTF-8), written whole or not at all."""
    return write_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


@contextmanager
def staged_folder(target: Path, variable: str | None = None) -> Iterator[Path]:
    """A temporary folder next to ``target``, renamed to ``target`` when the block succeeds and
    removed when it fails (an OSError becomes ``write_error`` naming ``target`` and ``variable``)."""
    tmp = _temporary(target)
    try:
        tmp.mkdir(parents=True)
        yield tmp
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_error(target, exc, variable) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_writable_folder(folder: Path, variable: str | None = None) -> Path:
    """``folder`` (created if missing) if files can be written in it, else ``write_error`` —
    checked before slow work whose result goes there (e.g. a model conversion)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = _temporary(folder / "probe")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise write_error(folder, exc, variable) from None
    return folder


def write_error(target: Path, exc: OSError, variable: str | None = None) -> InputError:
    """``TARGET: cannot write it (why)`` with a hint that fits the cause (and the variable that sets the folder)."""
    why = (exc.strerror or str(exc) or type(exc).__name__).lower()
    elsewhere = f"set {variable} to a folder" if variable else "write to a folder"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = f"free some space on that disk, or {elsewhere} on another disk"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = f"{elsewhere} you can write to"
    else:
        hint = "check the path and its permissions" + (f", or {elsewhere} elsewhere" if variable else "")
    return InputError(f"{target}: cannot write it ({why})", hint=hint)


def rust_io_error(exc: Exception) -> OSError:
    """The OSError inside a Rust library's error (safetensors, tokenizers: "... (os error 28)")."""
    import re

    found = re.search(r"os error (\d+)", str(exc))
    code = int(found.group(1)) if found else errno.EIO
    return OSError(code, os.strerror(code))


def _temporary(target: Path) -> Path:
    """A fresh hidden name beside ``target``: ``.NAME.<random>.tmp``."""
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass  # the folder went away or became read-only: nothing more can be done
