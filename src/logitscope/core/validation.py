"""The argument-validation layer of the Python API: types first, then the analyses' ranges.

``Model``'s methods declare the type of each argument with ``@checked(...)``; a value of the
wrong type is an ``InputError`` naming the argument, before any work, never a TypeError
from deep inside (``top_k=1.5``, ``texts=[None]``, ``stop=None``, ``tokenize(b"...")``):

    @checked(prompt=text, top_k=whole, temperature=number, bos=bos_policy)
    def next_token(self, prompt, top_k=10, temperature=1.0, bos="auto"): ...

Rules (each ``rule(name, value) -> value``, the value converted):

* numbers: Python ints and floats and numpy scalars (``np.int64(5)``, ``np.float32(0.5)``)
  are numbers and come out as Python ``int``/``float``; ``bool``, strings and ``None`` are not;
  ``whole`` wants an integral value (``2.0`` is 2, ``2.5`` is refused);
* text: a ``str`` that passes the text gate (``check_unicode``: no lone surrogate); ``bytes`` are
  refused with the decode to use;
* lists of texts: any iterable but a single string (a generator is read once, into a list).

Ranges (``top_k >= 1``, ``0 < top_p <= 1``...) stay with the analyses (``errors.check_range``),
which the server and the web app call too. The edges' own values — ports, timeouts, server
URLs, API keys, token ids — have their rules here as well, one function each, so the CLI,
the environment and the HTTP routes share them.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterable
from numbers import Integral, Real

from ..errors import InputError, check_range, check_sequence
from .textgate import SURROGATE_HINT, lone_surrogate, redact_url

Rule = Callable[[str, object], object]
MAX_TIMEOUT = 86_400.0  # seconds: one request may take at most a day


def checked(**rules: Rule):
    """Decorate a function so that each named argument passes its rule (defaults are trusted)."""
    def decorate(func):
        signature = inspect.signature(func)

        @functools.wraps(func)
        def run(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            for name, rule in rules.items():
                if name in bound.arguments:
                    bound.arguments[name] = rule(name, bound.arguments[name])
            return func(*bound.args, **bound.kwargs)

        return run

    return decorate


# -- numbers -----------------------------------------------------------------------------------
def _wrong_type(name: str, value, wanted: str, hint: str | None = None) -> InputError:
    return InputError(f"{name}={value!r} is {_kind(value)}, not {wanted}",
                      hint=hint or f"give {name} as {wanted}", param=name)


def number(name: str, value) -> float:
    """A real number (NaN refused) as a Python float; ints and numpy scalars accepted."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise _wrong_type(name, value, "a number")
    out = float(value)
    if math.isnan(out):
        raise InputError(f"{name}=nan is not a number", hint=f"give {name} as a number", param=name)
    return out


def whole(name: str, value) -> int:
    """An integral number as a Python int: ``5``, ``np.int64(5)`` and ``5.0`` are 5; ``5.5`` is refused."""
    if isinstance(value, Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and value == int(value):
        return int(value)
    raise _wrong_type(name, value, "a whole number")


def optional(rule: Rule) -> Rule:
    """``rule`` for a value that may also be None."""
    return lambda name, value: None if value is None else rule(name, value)


def flag(name: str, value) -> bool:
    """True or False (numpy's bool too)."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise _wrong_type(name, value, "True or False")


def bos_policy(name: str, value) -> str | bool:
    """``"auto"``, True or False."""
    if value == "auto" and isinstance(value, str):
        return value
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise InputError(f"{name}={value!r} is not a prefix policy", hint="use 'auto', True or False", param=name)


# -- text -------------------------------------------------------------------------------------
def check_unicode(name: str, value: str) -> str:
    """``value`` if it is valid Unicode; InputError at its first lone surrogate (``textgate``)."""
    problem = lone_surrogate(name, value)
    if problem is not None:
        raise InputError(problem, hint=SURROGATE_HINT, param=name)
    return value


def text(name: str, value) -> str:
    """A ``str`` that passes the text gate."""
    if isinstance(value, (bytes, bytearray)):
        raise _wrong_type(name, value, "a string", hint=f"decode it first: {name}.decode('utf-8')")
    if not isinstance(value, str):
        raise _wrong_type(name, value, "a string")
    return check_unicode(name, value)


def texts(name: str, value) -> list[str]:
    """A list of texts from any iterable of strings but a single string."""
    return [text(f"{name}[{i}]", item) for i, item in enumerate(_items(name, value))]


def texts_or_none(name: str, value) -> list[str | None]:
    """As ``texts``, where an item may be None (``score_many``'s contexts)."""
    return [None if item is None else text(f"{name}[{i}]", item) for i, item in enumerate(_items(name, value))]


def _items(name: str, value) -> list:
    check_sequence(name, value)
    if isinstance(value, dict) or not isinstance(value, Iterable):
        raise _wrong_type(name, value, "a list of strings")
    return list(value)


# -- the edges' own values: token ids, ports, timeouts, server URLs, API keys ----------------------
def token_ids(name: str, ids, vocab_size: int) -> list[int]:
    """Token ids, each a whole number in [0, vocab_size) (a negative id never counts from the end)."""
    out = [whole(f"{name}[{i}]", t) for i, t in enumerate(_items(name, ids))]
    bad = next((t for t in out if not 0 <= t < vocab_size), None)
    if bad is not None:
        raise InputError(f"token id {bad} in {name} is outside the vocabulary", param=name,
                         hint=f"token ids must be in [0, {vocab_size - 1}]")
    return out


def port(name: str, value, allow_zero: bool = True) -> int:
    """A TCP port: [1, 65535], or 0 for "pick a free one" where ``allow_zero``."""
    return check_range(name, whole(name, value), 0 if allow_zero else 1, 65535)


def timeout(name: str, value) -> float:
    """Seconds one request may take: a finite number in (0, MAX_TIMEOUT] ('inf' and 'nan' refused)."""
    return check_range(name, number(name, value), 0, MAX_TIMEOUT, low_open=True)


def api_key(name: str, value: str | None) -> str | None:
    """An API key, or None; a key that is empty or only spaces is refused (every request would fail)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise InputError(f"{name}: the key is blank or has spaces around it", param=name,
                         hint="give the key itself (no spaces around it), or leave it out")
    return value


def remote_settings(names: dict[str, str] | None = None, **values) -> dict:
    """``api_key``, ``concurrency`` and ``timeout`` of a remote model (those given), each checked and
    converted (``RemoteSettings`` calls this for every way they arrive: CLI options, ``load(url,
    remote={...})``, the environment). ``names`` says how the user spelled each, for the message;
    a CLI error names the option (``--timeout``) through the error's ``param``."""
    names = names or {}
    rules = {"api_key": api_key, "concurrency": lambda n, v: check_range(n, whole(n, v), 1, 1024),
             "timeout": timeout}
    return {key: rules[key](names.get(key, key), value) for key, value in values.items()}


def server_url(url: str) -> str:
    """An ``http(s)://host[:port][/path][#model]`` URL with a host and a valid port, else InputError
    (the password of a URL is never echoed)."""
    from urllib.parse import urlsplit

    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number in [0, 65535]
    except ValueError as exc:
        raise InputError(f"{shown!r} is not a valid server URL ({str(exc).lower()})",
                         hint="e.g. -m http://127.0.0.1:8000/v1 (the port is a number in [1, 65535])") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InputError(f"{shown!r} is not an http(s) URL with a host", hint="e.g. -m http://127.0.0.1:8000/v1")
    if parts.port == 0:
        raise InputError(f"{shown!r}: port 0 is not a server's port", hint="give the port the server listens on")
    return url


# -- messages ------------------------------------------------------------------------------------
def _kind(value) -> str:
    if value is None:
        return "None"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    article = "an" if type(value).__name__[0] in "aeiou" else "a"
    return f"{article} {type(value).__name__}"
