"""Traced generation: autoregressive decoding that records every step.

``generate`` drives the one decode loop (``session.DecodeSession``: the KV cache when
the backend has one, prompt-lookup drafts verified in one forward when it can, the
backend's top k on a top-k-only backend) and keeps, for every new token, what the model
believed when it was chosen: its raw and processed log-prob, rank, entropy, how many
tokens survived the sampler chain, and the top alternatives. On a top-k-only backend
(a remote server) greedy always works and sampling where the chain provably stays
inside the top k; the result's ``top_k_only`` says so and each entropy is a lower bound.

The sampler chain view (``logitscope dist``) and the seeded sampling check
(``logitscope sample``) are in ``chain.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from ..backends.base import Backend
from ..core.processors import SamplerConfig
from ..errors import InputError, check_range, check_sequence
from ..results import ResultMixin, TokenCandidate, jsonable, prob_of
from ..scoring.score import candidates
from .session import DecodeSession, check_room, decode_ids, new_sampler

# -- results -------------------------------------------------------------------------------

@dataclass(frozen=True)
class TraceStep(ResultMixin):
    """One generated token and what the model believed when it was chosen."""

    step: int
    token_id: int
    text: str
    logprob: float  # under the raw distribution
    processed_logprob: float  # under the sampler's processed distribution
    rank: int  # in the raw distribution, 1 = argmax
    entropy: float  # nats, raw distribution; a lower bound when the backend is top-k only
    survivors: int  # tokens left after the chain
    alternatives: tuple[TokenCandidate, ...]  # raw top-k
    remaining_mass: float | None = None  # top-k-only backends: the probability outside the known top k

    prob = prob_of("logprob")
    processed_prob = prob_of("processed_logprob")

    def to_dict(self) -> dict:
        return {**{k: jsonable(v) for k, v in vars(self).items() if k != "alternatives"},
                "prob": self.prob, "processed_prob": self.processed_prob,
                "alternatives": [a.to_dict() for a in self.alternatives]}


@dataclass(frozen=True)
class GenerationResult(ResultMixin):
    prompt: str
    input_ids: tuple[int, ...]  # what the model saw before the first new token
    token_ids: tuple[int, ...]  # new tokens, a final EOS included
    text: str  # the new text (EOS left out)
    steps: tuple[TraceStep, ...]
    stop_reason: str  # "eos" | "stop" | "context" | "max_new_tokens"
    sampler: SamplerConfig
    seed: int  # the seed actually used (a fresh one when generate got seed=None)
    used_cache: bool
    top_k_only: int | None = None  # decoded from the backend's top k: entropies are lower bounds

    @property
    def total_logprob(self) -> float:
        return math.fsum(s.logprob for s in self.steps)

    def _rows(self) -> list[dict]:
        return [{**s.to_dict(), "alternatives": [a.text for a in s.alternatives]} for s in self.steps]


# -- traced generation ---------------------------------------------------------------------------

def generate(backend: Backend, prompt: str, max_new_tokens: int = 50, sampler: SamplerConfig | None = None,
             seed: int | None = 0, stop: Sequence[str] = (), bos: str | bool = "auto", top_alternatives: int = 10,
             use_cache: bool = True, on_text: Callable[[str], None] | None = None,
             speculative: bool = True) -> GenerationResult:
    """Generate up to ``max_new_tokens`` tokens, recording every step.

    Stops at EOS, when the new text contains a ``stop`` string (kept in the
    text), or when the sequence fills the model's context. ``use_cache=False``
    recomputes the whole prefix each step (the reference path). ``on_text``
    receives the new text as it is produced. ``speculative`` lets backends that
    can verify several tokens in one forward check prompt-lookup drafts
    (``session.py``): the same tokens as without, every reported probability
    the model's own.

    A top-k-only backend decodes from its top k (``topk_decode.py``, one
    ``next_top_k`` call per token, no cache): ``top_alternatives`` is capped at k,
    sampling that would renormalise beyond the top k raises CapabilityError.
    """
    context = backend.capabilities.context_length
    check_range("max_new_tokens", max_new_tokens, 1, context)
    check_range("top_alternatives", top_alternatives, 0, None)
    sampler = sampler or SamplerConfig()
    ids = decode_ids(backend, prompt, bos)
    check_room(backend, ids)
    chooser = new_sampler(backend, sampler, seed)
    stream = _Stream(backend, stop, on_text)
    session = DecodeSession(backend, ids, chooser, use_cache=use_cache, drafts=speculative)
    records, reason = [], None
    with torch.inference_mode():
        for token, record in _traced_tokens(session, top_alternatives, max_new_tokens):
            records.append(record)
            reason = _stop_reason(backend, stream, token, len(ids) + len(records), context)
            if reason or len(records) == max_new_tokens:
                break
    stream.finish()
    return _generation_result(backend, prompt, ids, records, reason or "max_new_tokens", sampler, chooser.seed,
                              session.use_cache, session.top_k_only)


def _traced_tokens(session: DecodeSession, k: int, limit: int) -> Iterator[tuple[int, tuple]]:
    """(token, trace record) pairs from the session, a round of drafts at a time (never past ``limit``)."""
    made = 0
    while True:
        for emitted in session.step(limit - made):
            made += 1
            yield emitted.token, emitted.position.record(emitted.token, k)


class _Stream:
    """Incremental text of the new tokens: stop-string checks and streaming output."""

    def __init__(self, backend: Backend, stop: Sequence[str], on_text: Callable[[str], None] | None):
        check_sequence("stop", stop)
        if any(not s for s in stop):
            raise InputError("a stop string is empty", hint="give non-empty stop strings")
        self.backend, self.stop, self.on_text = backend, list(stop), on_text
        self.ids: list[int] = []
        self.shown = ""

    def push(self, token: int) -> bool:
        """Add a token; True when the text now contains a stop string."""
        if token != self.backend.eos_token_id:
            self.ids.append(token)
        if not (self.stop or self.on_text):
            return False
        text = self.backend.detokenize(self.ids)
        if self.on_text and not text.endswith("\ufffd"):  # wait for a split UTF-8 character to complete
            self.on_text(text[len(self.shown):])
            self.shown = text
        return any(s in text for s in self.stop)

    def finish(self) -> None:
        """Show what was held back: generation may end inside a multi-byte character, and
        the streamed text must then match the result's text (with its U+FFFD)."""
        if self.on_text:
            text = self.backend.detokenize(self.ids)
            if text != self.shown and text.startswith(self.shown):
                self.on_text(text[len(self.shown):])
                self.shown = text


def _stop_reason(backend: Backend, stream: _Stream, token: int, length: int, context: int) -> str | None:
    hit_stop = stream.push(token)
    if token == backend.eos_token_id:
        return "eos"
    if hit_stop:
        return "stop"
    return "context" if length >= context else None


def _generation_result(backend, prompt, ids, records, reason, sampler, seed, used_cache,
                       top_k_only=None) -> GenerationResult:
    """Records are ``Position.record`` tuples; a top-k position adds its remaining mass."""
    tokens = [r[0] for r in records]
    cols = [torch.stack([r[i] for r in records]).tolist() for i in range(1, 6)]  # one conversion for all steps
    steps = tuple(
        TraceStep(n, tok, backend.token_text(tok), float(lp), float(plp), int(rank), float(ent), int(surv),
                  candidates(backend, rec[6], rec[7]), float(rec[8]) if len(rec) > 8 else None)
        for n, (tok, lp, plp, rank, ent, surv, rec) in enumerate(zip(tokens, *cols, records)))
    text_ids = tokens[:-1] if reason == "eos" else tokens
    return GenerationResult(prompt, tuple(ids), tuple(tokens), backend.detokenize(text_ids), steps, reason,
                            sampler, seed, used_cache, top_k_only)
