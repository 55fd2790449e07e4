"""The raw logits tensor of a whole text: what a transformers forward pass returns.

    ids:     The  cat  sat          row t of the logits predicts token t+1:
    rows:    [0]  [1]  [2]          row 0 scores "cat", row 1 "sat", row 2 the next token.

Most analyses never need this tensor (they score or project only the rows they
use); it is here for teaching and for the seed exercise's ``logits[0, -1]``.
"""

from __future__ import annotations

import torch

from ..backends.base import Backend, require
from ..core.boundary import check_fits, prefix_ids, require_text


def text_ids(backend: Backend, text: str, bos: str | bool = False) -> list[int]:
    """The ids the model sees for ``text``: its tokens, with the prefix token in front if ``bos`` asks."""
    require_text(text)
    return prefix_ids(backend, bos) + backend.tokenize(text).ids


@torch.inference_mode()
def all_logits(backend: Backend, text: str, bos: str | bool = False) -> torch.Tensor:
    """Logits (1, T, V) for every position of ``text`` (``Backend.position_logits``: one forward pass
    for a model with local weights or llama.cpp, one ``next_logits`` row per prefix for the toy models)."""
    require(backend, "full_vocab", "the logits tensor")
    ids = text_ids(backend, text, bos)
    check_fits(backend, len(ids), "the text", "pass a shorter text")
    return backend.position_logits(ids)[None]  # (1, T, V)
