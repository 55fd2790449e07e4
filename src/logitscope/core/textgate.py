"""The text gate: the rules for text going in (to a tokenizer) and coming out (in a message
or on a terminal), in one place.

Going in:

* **Lone surrogates** (U+D800–U+DFFF on their own: a broken decode, or a JSON ``"\\ud800"``
  escape without its pair) are not Unicode text; no tokenizer can take them.
  ``lone_surrogate`` says where the first one is; ``validation.check_unicode`` refuses them.
* **A byte-order mark** (U+FEFF) at the very start of a file or of stdin is the encoding's
  signature, not text: the readers drop it (``strip_bom``). U+FEFF anywhere else, or at the
  start of a string the caller passes, is text and is kept.

Coming out:

* **Control characters** (C0 but tab and newline, DEL, C1 — ESC among them) are written
  as escapes, ``\\x1b``, so text from the input cannot move the cursor, recolour or clear a
  terminal (``for_terminal``).
* **Echoes of user input** in a message are capped: a run of more than ``MAX_RUN``
  characters without a space keeps its head and says how long it was, and a message keeps
  at most ``MAX_MESSAGE`` characters; the password of a URL is never shown
  (``clean_message``, applied to every ``LogitscopeError``).
"""

from __future__ import annotations

import re

MAX_RUN = 120  # characters of one space-free run shown in a message (a 50 MB word included)
MAX_MESSAGE = 2000  # characters of a whole message
BOM = "\ufeff"
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # Cc but \t and \n
_URL_PASSWORD = re.compile(r"(?i)\b(https?://[^\s/@:]*:)[^\s/@]*@")
_LONG_RUN = re.compile(r"\S{%d,}" % (MAX_RUN + 1))


# -- text going in ---------------------------------------------------------------------------
SURROGATE_HINT = ("give valid Unicode text: a lone surrogate comes from a broken decode or from a JSON \\ud800 "
                  "escape without its pair")


def lone_surrogate(name: str, text: str) -> str | None:
    """Why ``text`` is not valid Unicode (its first lone surrogate and where), or None when it is."""
    found = _SURROGATE.search(text)
    if found is None:
        return None
    return f"{name} holds a lone surrogate U+{ord(found.group()):04X} at character {found.start()}"


def strip_bom(text: str) -> str:
    """``text`` without one leading byte-order mark (the readers call this on a file's first text)."""
    return text[1:] if text.startswith(BOM) else text


def valid_text(value):
    """A pydantic ``BeforeValidator`` for request fields: a string with a lone surrogate is a ValueError
    (so the field's 422 names it); anything else is left to the field's own type."""
    problem = lone_surrogate("the text", value) if isinstance(value, str) else None
    if problem is not None:
        raise ValueError(f"{problem} (hint: {SURROGATE_HINT})")
    return value


# -- text coming out -------------------------------------------------------------------------
def for_terminal(text: str) -> str:
    """Control characters written as escapes (``\\x1b``); tab and newline kept."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def redact_url(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` with the password replaced by ``***``."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def shorten(text: str, limit: int = MAX_RUN) -> str:
    """``text`` if it has at most ``limit`` characters, else its head and its length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit // 2]}…(+{len(text) - limit // 2:,} characters)"


def clean_message(message: str) -> str:
    """A message fit to show: URL passwords hidden, control characters escaped, long runs and
    the whole message capped (see the module docstring)."""
    message = _LONG_RUN.sub(lambda m: shorten(m.group()), for_terminal(redact_url(message)))
    if len(message) <= MAX_MESSAGE:
        return message
    return f"{message[:MAX_MESSAGE - 200]} …({len(message) - MAX_MESSAGE + 200:,} characters cut)… {message[-150:]}"
