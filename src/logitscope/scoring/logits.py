"""The raw logits tensor of a whole text: what a transformers forward pass returns.

    ids:     The  cat  sat          row t of the logits predicts token t+1:
    rows:    [0]  [1]  [2]          row 0 scores "cat", row 1 "sat", row 2 the next token.

Most analyses never need this tensor (they score or project only the rows they
use); it is here for teaching and for the seed exercise's ``logits[0, -1]``.
"""

from __future__ import annotations

import torch

from ..backends.base import Backend
from ..core.boundary import prefix_token_id, require_text, wants_prefix
from ..errors import InputError


def text_ids(backend: Backend, text: str, bos: str | bool = False) -> list[int]:
    """The ids the model sees for ``text``: its tokens, with the prefix token in front if ``bos`` asks."""
    require_text(text)
    ids = backend.tokenize(text).ids
    if not wants_prefix(backend, bos):
        return ids
    prefix = prefix_token_id(backend)
    if prefix is None:
        raise InputError("this model has no BOS or EOS token to use as a prefix", hint="use bos=False")
    return [prefix] + ids


@torch.inference_mode()
def all_logits(backend: Backend, text: str, bos: str | bool = False) -> torch.Tensor:
    """Logits (1, T, V) for every position of ``text``, in one forward pass where the backend allows."""
    ids = text_ids(backend, text, bos)
    if len(ids) > backend.capabilities.context_length:
        raise InputError(f"{len(ids)} tokens exceed the model's context of {backend.capabilities.context_length}",
                         hint="pass a shorter text")
    hidden_states = getattr(backend, "hidden_states", None) or getattr(backend, "_hidden", None)
    project = getattr(backend, "project", None) or getattr(backend, "_project", None)
    if hidden_states is not None and project is not None:  # local transformers model: one forward pass
        hidden = hidden_states(torch.tensor([ids]))[0]  # (T, H)
        return project(hidden).cpu()[None]  # (1, T, V)
    return backend.next_logits([ids[:t + 1] for t in range(len(ids))])[None]  # (1, T, V): one call per prefix
