"""Prompts as the model sees them, and tokens as the wire shows them.

Runs in the model's worker thread (it calls the tokenizer).

* A text prompt gets the model's own prefix (BOS) policy unless the client sends
  ``add_special_tokens: false``; the empty prompt is the prefix token alone
  (``sampling.generation.decode_ids``; no capability needed, so a top-k backend
  is served too). A token-id prompt is used as given.
* ``token_bytes`` recovers a token's raw UTF-8 bytes, so a piece of a multi-byte
  character is its bytes, not U+FFFD.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from ..backends.base import Backend
from ..errors import CapabilityError, InputError
from ..sampling.generation import decode_ids
from ..validation import token_ids

_BYTE_TOKEN = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")  # SentencePiece byte fallback


@dataclass(frozen=True)
class PromptIds:
    ids: list[int]
    text: str  # what echo shows: the client's string, or the decoded ids
    offsets: list[int]  # character offset of each id in ``text``


def text_prompt(backend: Backend, prompt: str, add_special_tokens: bool = True) -> PromptIds:
    ids = decode_ids(backend, prompt, "auto" if add_special_tokens else False)
    tok = backend.tokenize(prompt) if prompt else None
    spans = [s for s, _ in tok.offsets] if tok else []
    return PromptIds(ids, prompt, [0] * (len(ids) - len(spans)) + spans)  # a prefix token sits at offset 0


def id_prompt(backend: Backend, ids: list[int]) -> PromptIds:
    check_ids(backend, ids, "prompt")
    return PromptIds(list(ids), backend.detokenize(ids), cumulative_offsets(backend, ids))


def check_ids(backend: Backend, ids: list[int], what: str) -> None:
    if not ids:
        raise InputError(f"the {what} is an empty list of token ids", hint="give at least one token id")
    token_ids(f"the {what}", ids, backend.vocab_size)


def cumulative_offsets(backend: Backend, ids: list[int], base: int = 0) -> list[int]:
    """Offsets of ids laid end to end by their decoded strings (vLLM's rule for id prompts)."""
    out, at = [], base
    for i in ids:
        out.append(at)
        at += len(backend.token_text(i))
    return out


def token_label(backend: Backend, token_id: int, as_ids: bool) -> str:
    """How a token is named on the wire: its text, or ``token_id:<id>`` (vLLM)."""
    return f"token_id:{token_id}" if as_ids else backend.token_text(token_id)


def token_bytes(backend: Backend, token_id: int) -> list[int]:
    """The token's raw bytes (byte-level BPE and SentencePiece byte fallback decoded)."""
    tokenizer = getattr(backend, "tokenizer", None)
    if tokenizer is None:
        return list(backend.token_text(token_id).encode("utf-8"))
    piece = tokenizer.convert_ids_to_tokens(int(token_id))
    if piece is None:
        return list(backend.token_text(token_id).encode("utf-8"))
    if m := _BYTE_TOKEN.match(piece):
        return [int(m.group(1), 16)]
    decoder = _byte_decoder()
    if "\u2581" not in piece and all(c in decoder for c in piece):
        return [decoder[c] for c in piece]  # GPT-2 byte-level alphabet
    return list(piece.replace("\u2581", " ").encode("utf-8"))


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


def chat_prompt(backend: Backend, messages: list[dict], add_generation_prompt: bool = True) -> PromptIds:
    """The model's own chat template applied to ``messages``, tokenized as text."""
    text = render_chat(backend, messages, add_generation_prompt)
    tok = backend.tokenize(text)
    if not tok.ids:
        raise InputError("the chat template produced no tokens", hint="send at least one non-empty message")
    return PromptIds(tok.ids, text, [s for s, _ in tok.offsets])


def render_chat(backend: Backend, messages: list[dict], add_generation_prompt: bool = True) -> str:
    tokenizer = getattr(backend, "tokenizer", None)
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=False)
    template = getattr(backend, "chat_template", None)  # a Jinja string set on a non-HF backend
    if template:
        import jinja2

        return jinja2.Environment().from_string(template).render(messages=messages,
                                                                 add_generation_prompt=add_generation_prompt)
    raise CapabilityError(f"model {backend.name!r} has no chat template",
                          hint="use /v1/completions with a plain prompt, or serve an instruct model")


def chat_template_of(backend: Backend) -> str | None:
    tokenizer = getattr(backend, "tokenizer", None)
    return getattr(tokenizer, "chat_template", None) or getattr(backend, "chat_template", None)
