"""Every ``LOGITSCOPE_*`` environment variable, read and checked in one place.

    LOGITSCOPE_MODEL         default model for load() and every CLI --model (a path may hold spaces)
    LOGITSCOPE_CACHE         cache directory (default: $XDG_CACHE_HOME/logitscope or ~/.cache/logitscope)
    LOGITSCOPE_THREADS       torch CPU threads, an integer >= 1 (default: torch's own choice)
    LOGITSCOPE_DEVICE        "cpu", "cuda", "cuda:N" or "mps" (default: cuda when available, else cpu)
    LOGITSCOPE_FAST_PATHS    "0" turns every optimised path off — the light start, the fast forward
                             (backends/fast_forward.py) and the static-cache decoder (fast_decode.py) —
                             so Llama-family models run transformers' own code (same numbers, slower; for
                             checking). The old name LOGITSCOPE_FAST_FORWARD works until the next release.
    LOGITSCOPE_FAST_DECODE   "0" decodes Llama-family models through transformers' own cache
    LOGITSCOPE_API_KEY       bearer key: sent to a remote model (-m URL), required by `logitscope serve`
    LOGITSCOPE_CONCURRENCY   requests in flight to a remote model, an integer >= 1 (default 8)
    LOGITSCOPE_TIMEOUT       seconds one request to a remote model may take, > 0 (default 600)
    LOGITSCOPE_WORKSHOP_MODEL  the lessons' model (default: gemma3-270m when added, else bundled)

An empty variable counts as unset. A bad value raises ``InputError`` naming the
variable, its value and what it may be; ``check_environment()`` checks them all
at once (the CLI calls it before any work).
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

from .errors import InputError

_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def _get(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _bad(name: str, value: str, why: str, hint: str) -> InputError:
    return InputError(f"{name}={value!r}: {why}", hint=hint)


def default_model() -> str | None:
    """$LOGITSCOPE_MODEL as one spec (never split at spaces), or None."""
    return _get("LOGITSCOPE_MODEL")


def cache_dir() -> Path:
    """$LOGITSCOPE_CACHE, else $XDG_CACHE_HOME/logitscope, else ~/.cache/logitscope; never a file."""
    root = _get("LOGITSCOPE_CACHE")
    if root:
        path = Path(root).expanduser()
        if path.exists() and not path.is_dir():
            raise _bad("LOGITSCOPE_CACHE", root, "is a file, not a directory",
                       "point LOGITSCOPE_CACHE at a directory (it is created if missing) or unset it")
        return path
    xdg = _get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "logitscope"


def threads() -> int | None:
    """$LOGITSCOPE_THREADS as an integer >= 1, or None (torch's default)."""
    value = _get("LOGITSCOPE_THREADS")
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise _bad("LOGITSCOPE_THREADS", value, "is not a whole number >= 1",
                   "e.g. LOGITSCOPE_THREADS=4, or unset it for torch's default")
    return int(value)


def device() -> str | None:
    """$LOGITSCOPE_DEVICE if it names a device kind torch knows (availability: check_device)."""
    value = _get("LOGITSCOPE_DEVICE")
    if value is not None and not _DEVICE.match(value):
        raise _bad("LOGITSCOPE_DEVICE", value, "is not a device", "use cpu, cuda, cuda:N or mps, or unset it")
    return value


def check_device(name: str) -> str:
    """``name`` if this machine has that device; InputError otherwise (imports torch)."""
    import torch

    kind = name.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r}: CUDA is not available on this machine",
                         hint="use LOGITSCOPE_DEVICE=cpu, or unset it")
    if kind == "cuda" and ":" in name and int(name.split(":")[1]) >= torch.cuda.device_count():
        raise InputError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)",
                         hint="use cuda:0 or unset LOGITSCOPE_DEVICE")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {name!r}: MPS is not available on this machine",
                         hint="use LOGITSCOPE_DEVICE=cpu, or unset it")
    return name


def _switch(name: str) -> bool:
    value = _get(name)
    if value not in (None, "0", "1"):
        raise _bad(name, value, "is neither 0 nor 1", "use 0 (off) or 1 (on, the default)")
    return value != "0"


def fast_paths() -> bool:
    """False only when LOGITSCOPE_FAST_PATHS (or, deprecated, LOGITSCOPE_FAST_FORWARD) is "0"."""
    if _get("LOGITSCOPE_FAST_PATHS") is None and _get("LOGITSCOPE_FAST_FORWARD") is not None:
        warnings.warn("LOGITSCOPE_FAST_FORWARD is now LOGITSCOPE_FAST_PATHS; the old name works until the next "
                      "release", FutureWarning, stacklevel=2)
        return _switch("LOGITSCOPE_FAST_FORWARD")
    return _switch("LOGITSCOPE_FAST_PATHS")


def fast_decode() -> bool:
    """False only when LOGITSCOPE_FAST_DECODE is "0"."""
    return _switch("LOGITSCOPE_FAST_DECODE")


def api_key() -> str | None:
    """$LOGITSCOPE_API_KEY, or None."""
    return _get("LOGITSCOPE_API_KEY")


def concurrency() -> int | None:
    """$LOGITSCOPE_CONCURRENCY as an integer >= 1, or None (the default)."""
    value = _get("LOGITSCOPE_CONCURRENCY")
    if value is not None and (not value.isdigit() or int(value) < 1):
        raise _bad("LOGITSCOPE_CONCURRENCY", value, "is not a whole number >= 1", "e.g. LOGITSCOPE_CONCURRENCY=8")
    return None if value is None else int(value)


def timeout() -> float | None:
    """$LOGITSCOPE_TIMEOUT as seconds > 0 (finite), or None (the default)."""
    value = _get("LOGITSCOPE_TIMEOUT")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise _bad("LOGITSCOPE_TIMEOUT", value, "is not a number of seconds > 0", "e.g. LOGITSCOPE_TIMEOUT=600") \
            from None
    from .core.validation import timeout as check_timeout

    return check_timeout("LOGITSCOPE_TIMEOUT", seconds)  # the one rule: finite, in (0, a day]


def workshop_model() -> str | None:
    """$LOGITSCOPE_WORKSHOP_MODEL: the model the lessons load, or None."""
    return _get("LOGITSCOPE_WORKSHOP_MODEL")


def check_environment() -> None:
    """Raise InputError for the first bad LOGITSCOPE_* variable (imports torch only for a non-CPU device)."""
    cache_dir()
    threads()
    fast_paths()
    fast_decode()
    concurrency()
    timeout()
    name = device()
    if name is not None and name != "cpu":
        check_device(name)  # imports torch only when a non-CPU device is asked for
