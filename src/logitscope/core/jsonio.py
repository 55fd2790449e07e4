"""The one JSON reader for what users give logitscope (dataset lines, JSONL corpora).

Stricter than ``json.loads``, and every refusal is an ``InputError`` naming where:

* **duplicate keys** in one object are refused (``json.loads`` keeps the last value silently);
* **NaN, Infinity and -Infinity** are refused (they are not JSON, RFC 8259);
* **nesting deeper than MAX_DEPTH** levels is refused (a line nested 100,000 deep would
  otherwise end in a RecursionError).

    record = loads(line, "data.jsonl:3")     # -> InputError "data.jsonl:3: not valid JSON (...)"
"""

from __future__ import annotations

import json

from ..errors import InputError

MAX_DEPTH = 64  # nested arrays/objects; a dataset line needs 3
HINT = "each line must be one JSON object"


class _Refused(ValueError):
    """Raised inside the parser's hooks; becomes the InputError of ``loads``."""


def loads(text: str, where: str = "", hint: str | None = HINT):
    """One strict JSON value from ``text``, or InputError ``where: why`` (``why`` alone without ``where``)."""
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise _refused(where, describe_json_error(exc), hint) from None
    except _Refused as exc:
        raise _refused(where, str(exc), hint) from None
    except RecursionError:
        raise _refused(where, f"JSON nested deeper than {MAX_DEPTH} levels", hint) from None  # past the limit too
    if _too_deep(value):
        raise _refused(where, f"JSON nested deeper than {MAX_DEPTH} levels", hint)
    return value


def _refused(where: str, why: str, hint: str | None) -> InputError:
    return InputError(f"{where}: {why}" if where else why, hint=hint)


def describe_json_error(exc: json.JSONDecodeError) -> str:
    """'not valid JSON (Expecting value at column 3)'; json's own 'Unterminated string
    starting at' gets its column instead of a dangling 'at'."""
    joint = " " if exc.msg.endswith(" at") else " at "
    return f"not valid JSON ({exc.msg}{joint}column {exc.colno})"


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    out = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"the key {key!r} appears twice in one object")
        out[key] = value
    return out


def _no_constant(name: str):
    raise _Refused(f"{name} is not a JSON number")


def _too_deep(value) -> bool:
    """Is ``value`` nested deeper than MAX_DEPTH? (an explicit stack: no recursion)"""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False
