"""Prompts as the model sees them, and tokens as the wire shows them.

Runs in the model's worker thread (it calls the tokenizer).

* A text prompt gets the model's own prefix (BOS) policy unless the client sends
  ``add_special_tokens: false``; the empty prompt is the prefix token alone
  (``sampling.session.decode_ids``; no capability needed, so a top-k backend
  is served too). A token-id prompt is used as given.
* ``token_bytes`` gives a token's raw bytes as the wire wants them (a list of ints); the
  backend recovers them (``Backend.token_bytes``), so a piece of a multi-byte character is
  its bytes, not U+FFFD.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..backends.base import Backend
from ..errors import InputError
from ..sampling.session import decode_ids
from ..core.validation import token_ids


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
    """The token's raw bytes, as the wire lists them."""
    return list(backend.token_bytes(int(token_id)))


def chat_prompt(backend: Backend, messages: list[dict], add_generation_prompt: bool = True) -> PromptIds:
    """The model's own chat template applied to ``messages``, tokenized as text."""
    text = backend.render_chat(messages, add_generation_prompt)
    tok = backend.tokenize(text)
    if not tok.ids:
        raise InputError("the chat template produced no tokens", hint="send at least one non-empty message")
    return PromptIds(tok.ids, text, [s for s, _ in tok.offsets])
