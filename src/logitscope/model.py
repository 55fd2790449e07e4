"""``Model``: the user-facing object. Thin methods over the analysis modules."""

from __future__ import annotations

from collections.abc import Sequence

from .backends.base import Backend
from .results import NextTokenResult, ScoreResult
from . import scoring


class Model:
    """A loaded model. Every method is a thin call into an analysis module that is
    written against ``self.backend`` (see ``logitscope.backends.base``)."""

    def __init__(self, backend: Backend):
        self.backend = backend

    @property
    def name(self) -> str:
        return self.backend.name

    def __repr__(self) -> str:
        c = self.backend.capabilities
        return f"Model({self.name!r}, vocab={self.backend.vocab_size}, context={c.context_length}, kv_cache={c.kv_cache})"

    # -- tokenization view ---------------------------------------------------------
    def tokenize(self, text: str) -> list[tuple[int, str, tuple[int, int]]]:
        """(id, token text, character span) for every token of ``text``."""
        tok = self.backend.tokenize(text)
        return [(i, self.backend.token_text(i), o) for i, o in zip(tok.ids, tok.offsets)]

    # -- next token and scoring ------------------------------------------------------
    def next_token(self, prompt: str, top_k: int = 10, temperature: float = 1.0,
                   bos: str | bool = "auto") -> NextTokenResult:
        """The next-token distribution after ``prompt`` (top-k table + full distribution)."""
        return scoring.next_token(self.backend, prompt, top_k, temperature, bos)

    def score(self, text: str, context: str | None = None, top_k: int = 5, bos: str | bool = "auto",
              window: int | None = None, stride: int | None = None) -> ScoreResult:
        """Per-token log-probs of ``text`` (only the continuation when ``context`` is given)."""
        return scoring.score_texts(self.backend, [text], [context], top_k, bos, window, stride)[0]

    def score_many(self, texts: Sequence[str], contexts: Sequence[str | None] | None = None, top_k: int = 5,
                   bos: str | bool = "auto", window: int | None = None,
                   stride: int | None = None) -> list[ScoreResult]:
        """Score many texts in batches (right padding; pads never scored)."""
        return scoring.score_texts(self.backend, texts, contexts, top_k, bos, window, stride)
