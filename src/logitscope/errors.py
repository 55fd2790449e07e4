"""The small error family every user-facing failure goes through.

Each error carries a ``hint``: one sentence telling the user what to do next, and
optionally ``problems``: one ``where: why`` line per bad item (e.g. dataset lines).
The CLI prints each problem as ``error: <problem>``, then ``error: <message> (hint:
<hint>)`` on one line, and exits 2 (see docs/errors.md); the HTTP server answers
with the ``{"error": {...}}`` envelope, message and hint kept apart.

Every message, hint and problem passes through ``core.textgate.clean_message`` when the error
is made: an echo of user input is capped, control characters are escaped and a URL's
password is hidden, whichever edge shows the error. ``param`` names the argument at fault
(the CLI shows it as its option, ``--show`` for ``top_k``; the server as OpenAI's ``param``).
"""

from __future__ import annotations


class LogitscopeError(ValueError):
    """Base class: bad input or an unusable model, with a hint for the user."""

    def __init__(self, message: str, hint: str | None = None, problems: tuple[str, ...] = (),
                 param: str | None = None):
        from .core.textgate import clean_message

        message = clean_message(message)
        super().__init__(message)
        self.message = message
        self.hint = None if hint is None else clean_message(hint)
        self.problems = tuple(clean_message(p) for p in problems)
        self.param = param

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class InputError(LogitscopeError):
    """Text, file or parameter the user gave cannot be used as it is."""


class ModelLoadError(LogitscopeError):
    """A model path is missing, is not a causal LM, or is corrupt."""


class CapabilityError(LogitscopeError):
    """The backend cannot do what was asked (e.g. full vocabulary from a top-k API)."""


def check_sequence(name: str, value) -> None:
    """InputError when a bare string (or bytes) is given where a sequence of items is expected:
    iterating it would silently treat every character as an item."""
    if isinstance(value, (str, bytes)):
        raise InputError(f"{name} must be a list of strings, not one string", param=name,
                         hint=f"wrap it in a list: [{value!r}]" if len(value) < 40 else "wrap it in a list")


def check_range(name: str, value, low=None, high=None, *, low_open=False, high_open=False):
    """Raise InputError naming ``name`` and its valid range unless low <= value <= high.

    ``low_open``/``high_open`` make that end exclusive. Returns ``value`` for chaining.
    A value that is not a number at all (a string, a bool, None) is refused as such;
    ``validation.number`` and ``validation.whole`` add the type rules of the API.
    """
    if isinstance(value, (str, bytes, bool)) or (value is not None and not _is_number(value)):
        raise InputError(f"{name}={value!r} is not a number", hint=f"give {name} as a number", param=name)
    bad = value is None or value != value  # None or NaN
    if not bad and low is not None:
        bad = value <= low if low_open else value < low
    if not bad and high is not None:
        bad = value >= high if high_open else value > high
    if bad:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise InputError(f"{name}={value!r} is out of range", hint=f"{name} must be in {interval}", param=name)
    return value


def _is_number(value) -> bool:
    from numbers import Real

    return isinstance(value, Real)


def missing_weights(names, where) -> ModelLoadError:
    """The error for a checkpoint without some of the model's weights (they would be left random)."""
    names = sorted(names)
    return ModelLoadError(f"the checkpoint in {where} lacks {len(names)} weight(s) the model needs: "
                          f"{', '.join(names[:8])}{' ...' if len(names) > 8 else ''}",
                          hint="the weights file is incomplete or from another model; re-download or re-convert it")
