"""What a transformers tokenizer knows beyond ids and text: raw token bytes, chat templates.

``token_bytes`` recovers a token's raw UTF-8 bytes, so a piece of a multi-byte character
is its bytes, not U+FFFD:

    GPT-2 byte-level BPE      'Ġ' -> b' '; every piece is spelled in a printable stand-in
                              alphabet for the 256 bytes (``bytes_to_unicode``), inverted here
    SentencePiece             '<0xE2>' -> b'\\xe2' (byte fallback); '▁' -> b' '
"""

from __future__ import annotations

import functools
import re

_BYTE_TOKEN = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")  # SentencePiece byte fallback


def token_bytes(tokenizer, token_id: int, text: str) -> bytes:
    """The raw bytes of ``token_id``; ``text`` is its decoded text (used when the piece says nothing more)."""
    piece = tokenizer.convert_ids_to_tokens(int(token_id))
    if piece is None:
        return text.encode("utf-8")
    if m := _BYTE_TOKEN.match(piece):
        return bytes([int(m.group(1), 16)])
    decoder = _byte_decoder()
    if "\u2581" not in piece and all(c in decoder for c in piece):
        return bytes(decoder[c] for c in piece)  # GPT-2 byte-level alphabet
    return piece.replace("\u2581", " ").encode("utf-8")


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: printable stand-ins back to bytes."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


def special_tokens(tokenizer) -> dict:
    """The tokenizer's class and its BOS/EOS/pad token strings (None when it has none)."""
    return {"tokenizer_class": type(tokenizer).__name__,
            **{name: getattr(tokenizer, name, None) for name in ("bos_token", "eos_token", "pad_token")}}
