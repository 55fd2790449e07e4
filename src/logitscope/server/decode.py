"""Generation for the server, with OpenAI's stop semantics.

Decoding is the library's one decode loop (``sampling.session.DecodeSession``: the KV
cache, prompt-lookup drafts verified in one forward, the top-k path of a remote model),
so a completion's tokens and log-probs are ``Model.generate``'s for the same prompt,
seed and sampler. The worker calls ``step`` once per round (one token, or a drafted
run), so concurrent generations and scoring batches interleave; the new text follows
the OpenAI rules: a stop string ends the text *before* it, EOS is not text.

Log-probs of generated tokens are the raw distribution's (``mode="raw"``, before
temperature and the chain) or the sampler's processed distribution (``mode="processed"``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..backends.base import Backend
from ..core.processors import SamplerConfig
from ..sampling.session import DecodeSession, Emitted, new_sampler
from .engine import Stepper


@dataclass
class GeneratedToken:
    token_id: int
    logprob: float
    top_ids: list[int]
    top_logprobs: list[float]
    offset: int  # character offset of the token in the new text


@dataclass
class Decoding(Stepper):
    """One generation in progress; ``step`` adds a token (or a drafted run) and returns True when done."""

    ids: list[int]  # the prompt
    max_tokens: int
    config: SamplerConfig
    seed: int | None = None
    stop: Sequence[str] = ()
    top_k: int = 0  # alternatives recorded per token
    mode: str = "raw"
    on_token: Callable[["Decoding", str], None] | None = None  # (self, newly visible text), in the worker
    context: Any = None  # the caller's bookkeeping (e.g. what the response needs)
    tokens: list[GeneratedToken] = field(default_factory=list)
    text: str = ""  # the new text so far (final once done)
    finish_reason: str | None = None  # "stop" | "length"
    stop_reason: str | int | None = None  # the stop string, or the EOS id
    shown: int = 0  # characters of ``text`` already handed to on_token
    _session: DecodeSession | None = None

    def step(self, backend: Backend) -> bool:
        if self._session is None:
            self._session = DecodeSession(backend, self.ids, new_sampler(backend, self.config, self.seed), drafts=True)
        for emitted in self._session.step(self.max_tokens - len(self.tokens)):
            self._record(emitted)
            self._update_text(backend, emitted.token)
            done = self._finished(backend, emitted.token)
            if self.on_token is not None:
                self._emit(done)
            if done:
                return True
        return False

    def _record(self, emitted: Emitted) -> None:
        position, token = emitted.position, emitted.token
        if self.mode == "processed":
            logp = position.logprobs(processed=True)  # (V,)
            top = logp.topk(min(self.top_k, logp.shape[-1]))
            self.tokens.append(GeneratedToken(token, float(logp[token]), top.indices.tolist(), top.values.tolist(),
                                              len(self.text)))
            return
        ids, lps = position.top(self.top_k)
        self.tokens.append(GeneratedToken(token, float(position.logprob(token)), ids.tolist(), lps.tolist(),
                                          len(self.text)))

    def _update_text(self, backend: Backend, token: int) -> None:
        kept = [t.token_id for t in self.tokens if t.token_id != backend.eos_token_id]
        self.text = backend.detokenize(kept) if kept else ""

    def _finished(self, backend: Backend, token: int) -> bool:
        hit = min(((self.text.find(s), s) for s in self.stop if s in self.text), default=None)
        if hit is not None:
            self.text, self.finish_reason, self.stop_reason = self.text[:hit[0]], "stop", hit[1]
        elif token == backend.eos_token_id:
            self.finish_reason, self.stop_reason = "stop", token
        elif len(self.tokens) >= self.max_tokens or len(self.ids) + len(self.tokens) >= backend.capabilities.context_length:
            self.finish_reason = "length"
        return self.finish_reason is not None

    def _emit(self, done: bool) -> None:
        """Hand on the text that can no longer change: not a split UTF-8 character, not a
        possible start of a stop string (unless decoding is over)."""
        visible = len(self.text) if done else _settled_length(self.text, self.stop)
        piece = self.text[self.shown:visible] if visible > self.shown else ""
        self.shown = max(self.shown, visible)
        self.on_token(self, piece)


def _settled_length(text: str, stops: Sequence[str]) -> int:
    end = len(text.rstrip("\ufffd"))
    hold = max((n for s in stops for n in range(1, min(len(s) - 1, end) + 1) if text[:end].endswith(s[:n])),
               default=0)  # a tail that could still grow into a stop string
    return end - hold
