"""One decode loop: a session owns a sequence's decode state and its sampler.

Every front end that generates steps this object — ``generate`` (traced generation,
``logitscope generate``), the server's completions and chat (``server/decode.py``),
the web app's Step, Run and Continue (``web/stepping.py``) — so the same prompt, seed
and sampler give the same tokens everywhere, by construction.

    session = DecodeSession(backend, ids, Sampler(config, seed))
    session.step(limit)      -> [Emitted]     one draw, plus the drafted tokens it confirms
    session.force(token)     -> Emitted       take ``token`` instead of drawing
    session.position()       -> Position      the next token's distribution (raw, processed)
    session.state            -> DecodeState   the backend's state after every emitted token
    session.rewind(length)                    back to the first ``length`` ids
    session.fork()           -> DecodeSession an independent copy (same sampler)

Feeding is lazy: an emitted token is fed to the model only when the next position is
asked for, so a generation that stops never pays for a forward it does not use.

**One draw per token.** Each emitted token costs exactly one ``Sampler.choose`` on the
processed distribution of its position, whatever computed the logits (a KV cache,
recomputation, a drafted forward, a top-k server), so a seed's tokens do not depend on
the path.

**Drafts** (``drafts=True`` on a backend with ``verify_rows``): prompt lookup
(``speculative.PromptLookup``) guesses the next tokens; they are fed with the chosen
token in one forward (``extend_rows``), and at each drafted position the sampler draws
as it would anyway. The draft is kept while the draw equals it; the first draw that
differs is emitted instead and the cache is rewound to it (``rewind``):

    fed:      [t] d1 d2 d3          one forward, logits r0 r1 r2 r3 (r_j after d_j)
    draws:    y1 ~ r0 = d1 ✓   y2 ~ r1 = d2 ✓   y3 ~ r2 ≠ d3 ✗ → emit t d1 d2 y3, rewind to d2

This is speculative sampling's rule for a drafter that is certain of its guess (accept
with probability p(d), otherwise draw from p without d), with the test and the draw
sharing one random number — so the tokens equal token-by-token decoding's.

**Top-k-only backends** (a remote server): each position is the backend's top K after
the whole prefix (``topk_decode``; no cache), processed where ``core.topk_chain`` proves
the chain stays inside the known tokens, else ``CapabilityError``.

Empty prompt: ``decode_ids`` gives the prefix token alone (BOS, else EOS), so
generation from "" shows what the model says unprompted.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..backends.base import Backend, DecodeState, as_float, require
from ..core.boundary import check_fits, prompt_ids
from ..core.processors import Sampler
from ..errors import InputError
from .positions import FullPosition, Position
from .speculative import DRAFT_TOKENS, PromptLookup
from .topk_decode import check_sampler, top_k_position


def start_ids(backend: Backend, prompt: str, bos: str | bool = "auto") -> list[int]:
    """Prompt ids under the prefix policy, for the analyses that read whole next-token
    distributions (the chain view, sampling checks, beam search): needs full_vocab."""
    require(backend, "full_vocab", "reading the whole next-token distribution (the sampler-chain view, sampling "
                                   "checks, beam search)")
    return decode_ids(backend, prompt, bos)


def decode_ids(backend: Backend, prompt: str, bos: str | bool = "auto") -> list[int]:
    """Prompt ids under the prefix policy; the empty prompt is the prefix token alone."""
    return prompt_ids(backend, prompt, bos, allow_empty=True)


def token_ids_of(backend: Backend) -> Callable[[str], list[int]]:
    """Text -> ids with the backend's tokenizer (how a string logit bias finds its tokens)."""
    return lambda s: backend.tokenize(s).ids


def new_sampler(backend: Backend, config=None, seed: int | None = 0) -> Sampler:
    """A seeded ``Sampler`` whose string biases use ``backend``'s tokenizer."""
    return Sampler(config, seed, token_ids_of(backend))


def check_room(backend: Backend, ids: list[int]) -> None:
    """The ids must leave room for at least one more token."""
    check_fits(backend, len(ids) + 1, "the prompt plus one new token", "shorten the prompt")


@dataclass(frozen=True)
class Emitted:
    """A token the session added, with the distribution it was drawn from (or forced at)."""

    token: int
    position: Position
    forced: bool = False


class DecodeSession:
    """One sequence being decoded (see the module docstring)."""

    def __init__(self, backend: Backend, ids: list[int], sampler: Sampler, use_cache: bool = True,
                 drafts: bool = False, state: DecodeState | None = None):
        check_room(backend, list(ids))
        self.backend, self.sampler = backend, sampler
        self.ids = list(ids)  # the prompt and every emitted token
        self.start = len(self.ids)
        self.top_k_only = backend.capabilities.top_k_only
        if self.top_k_only is not None:
            check_sampler(backend, sampler.config)
        self.use_cache = use_cache and self.top_k_only is None
        can_draft = drafts and self.use_cache and backend.capabilities.verify_rows
        self.lookup = PromptLookup(self.ids) if can_draft else None
        self._state = state  # covers ids[:len(ids) - len(_pending)]
        self._pending: list[int] = []  # emitted, not yet fed
        self._position: Position | None = None

    # -- what the front ends call ----------------------------------------------------------
    @property
    def room(self) -> int:
        """Tokens that still fit in the model's context."""
        return self.backend.capabilities.context_length - len(self.ids)

    def position(self) -> Position:
        """The distribution of the next token (feeding what was emitted since the last forward)."""
        if self._position is None:
            self._position = (top_k_position(self.backend, self.sampler.config, self.ids, len(self.ids) - self.start)
                              if self.top_k_only is not None else self._full_position(self._feed()[-1]))
        return self._position

    def step(self, limit: int = 1) -> list[Emitted]:
        """Draw the next token; with drafts, up to ``limit`` tokens that the draws confirm."""
        self._check_room()
        position = self.position()
        out = [self._take(self._draw(position), position)]
        draft = self._propose(min(limit - 1, DRAFT_TOKENS, self.room - 1))
        return out + self._verify(draft) if draft else out

    def force(self, token: int) -> Emitted:
        """Take ``token`` as the next token (no draw: the generator is not touched)."""
        self._check_room()
        position = self.position()
        vocab = position.vocab_size
        if not 0 <= token < vocab:
            raise InputError(f"token id {token} is not in the vocabulary", hint=f"use an id in [0, {vocab - 1}]")
        return self._take(token, position, forced=True)

    @property
    def state(self) -> DecodeState | None:
        """The backend's decode state after every emitted token (None on a top-k backend: no cache)."""
        if self.top_k_only is None:
            self.position()
        return self._state

    def rewind(self, length: int) -> None:
        """Back to the first ``length`` ids (1 <= length <= len(ids)); the cache is rolled back, not recomputed."""
        if not 1 <= length <= len(self.ids):
            raise InputError(f"cannot rewind to {length} of {len(self.ids)} tokens",
                             hint=f"give a length in [1, {len(self.ids)}]")
        fed = len(self.ids) - len(self._pending)
        del self.ids[length:]
        self._position = None
        if self.lookup is not None:
            self.lookup = PromptLookup(self.ids)
        if length > fed:
            self._pending = self._pending[:length - fed]
            return
        self._pending = []
        if self._state is not None and self.use_cache:
            self._state = self.backend.rewind(self._state, length)
        else:
            self._state = None  # recomputed from the ids when the next position is asked for

    def fork(self) -> "DecodeSession":
        """An independent copy at the same place; it shares the sampler (and its generator)."""
        state = self.state
        twin = copy.copy(self)
        twin.ids, twin._pending = list(self.ids), []
        twin._state = self.backend.fork(state) if state is not None else None
        twin.lookup = PromptLookup(self.ids) if self.lookup is not None else None
        return twin

    # -- internals --------------------------------------------------------------------------
    def _check_room(self) -> None:
        if self.room < 1:
            raise InputError(f"the sequence fills the model's context of {self.backend.capabilities.context_length}"
                             " tokens", hint="start from a shorter prompt")

    def _full_position(self, raw: torch.Tensor, ids: list[int] | None = None) -> FullPosition:
        history = self.ids if ids is None else ids
        return FullPosition(raw, self.sampler.process(torch.tensor([history]), raw[None])[0])  # (V,), (V,)

    def _draw(self, position: Position) -> int:
        return int(self.sampler.choose(position.processed[None])[0, 0])

    def _take(self, token: int, position: Position, forced: bool = False) -> Emitted:
        self.ids.append(token)
        self._pending.append(token)
        self._position = None
        if self.lookup is not None:
            self.lookup.push(token)
        return Emitted(token, position, forced)

    def _feed(self, extra: list[int] = (), all_rows: bool = False) -> torch.Tensor:
        """Feed the pending tokens and ``extra`` (already in ``ids``); the float logits after each
        fed token (T, V) — the last row only unless ``all_rows``."""
        new, self._pending = self._pending + list(extra), []
        backend = self.backend
        if not self.use_cache or self._state is None:
            ids = list(self.ids)
            self._state = backend.prefill(ids) if self.use_cache else DecodeState(tuple(ids),
                                                                                   backend.next_logits([ids])[0])
            return as_float(self._state.logits)[None]
        if not new:
            return as_float(self._state.logits)[None]
        if all_rows:
            self._state, rows = backend.extend_rows(self._state, new)
            return as_float(rows)
        self._state = backend.extend(self._state, new)
        return as_float(self._state.logits)[None]

    def _propose(self, room: int) -> list[int]:
        return self.lookup.propose(room) if self.lookup is not None and room > 0 else []

    def _verify(self, draft: list[int]) -> list[Emitted]:
        """Feed the pending token(s) and ``draft`` in one forward; keep the drafted tokens the draws confirm."""
        base = len(self.ids)  # ids before the draft
        pending = len(self._pending)
        self.ids += draft
        rows = self._feed(draft, all_rows=True)[pending - 1:]  # (len(draft) + 1, V): r_j after draft[j - 1]
        out = []
        for j, guess in enumerate(draft):
            position = self._full_position(rows[j], self.ids[:base + j])
            token = self._draw(position)
            if token != guess:
                self._state = self.backend.rewind(self._state, base + j, rows[j])
                del self.ids[base + j:]
                return out + [self._take(token, position)]
            self.lookup.push(guess)
            out.append(Emitted(guess, position))
        self._position = self._full_position(rows[-1])
        return out
