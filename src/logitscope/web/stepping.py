"""Generation one token at a time, with every explored branch kept as a tree.

A ``StepSession`` lives in the server between requests and is only touched in
its model's worker thread (it holds KV caches). Each node is one token; the
root is the prompt. Stepping from a node runs the library's decode loop
(``sampling.session.DecodeSession``, the one ``Model.generate`` and the server run,
with the same chain and seeded generator: stepping N times from the prompt gives
``generate``'s tokens), drawing a token or taking a forced one; the session starts
from a fork of the node's decode state, so a step costs one token's forward pass,
not the prefix's. A top-k-only model (a remote server) steps on its top k.
Each node also keeps the generator's state from when it was made, and
going back to a node (undo, goto, re-drawing an existing child) restores it: the
draws from a node depend only on the seed and the path, so Step, Undo, Step draws
the same token twice, as a run that never went back would.

    root (prompt) ─┬─ " cat"  p=0.41  Σlog p=-0.89 ── " sat" ...
                   └─ " dog"  p=0.22  Σlog p=-1.51          ← forced, then returned to root
"""

from __future__ import annotations

import collections
import math
import uuid
from dataclasses import dataclass, field

import torch

from ..backends.base import Backend, DecodeState
from ..core import mathops
from ..core.processors import SamplerConfig
from ..errors import InputError
from ..sampling.positions import Position
from ..sampling.session import DecodeSession, Emitted, decode_ids, new_sampler
from ..sampling.tree import TreeResult, expand_tree_ids
from ..scoring.score import candidates

MAX_STATES = 8  # decode states (KV caches) kept per session; others are recomputed on demand


@dataclass
class StepNode:
    id: int
    parent: int | None
    token_id: int | None  # None for the root
    text: str
    logprob: float = 0.0  # raw log p(token | path), natural log
    processed_logprob: float = 0.0  # under the sampler's processed distribution
    cum_logprob: float = 0.0  # Σ raw log-probs from the root
    depth: int = 0
    children: list[int] = field(default_factory=list)
    rng: torch.Tensor | None = field(default=None, repr=False)  # the generator's state at this node

    def to_dict(self) -> dict:
        return {"id": self.id, "parent": self.parent, "token_id": self.token_id, "text": self.text,
                "logprob": self.logprob, "prob": math.exp(self.logprob), "processed_logprob": self.processed_logprob,
                "cum_logprob": self.cum_logprob, "cum_prob": math.exp(self.cum_logprob), "depth": self.depth,
                "children": list(self.children)}


class StepSession:
    def __init__(self, backend: Backend, model: str, prompt: str, config: SamplerConfig, seed: int, top: int):
        self.id, self.model, self.prompt, self.config, self.top = uuid.uuid4().hex[:12], model, prompt, config, top
        self.prompt_ids = decode_ids(backend, prompt)
        self.sampler = new_sampler(backend, config, seed)
        self.eos = backend.eos_token_id
        self.nodes = [StepNode(0, None, None, prompt, rng=self.sampler.generator.get_state())]
        self.current = 0
        self.states: collections.OrderedDict[int, DecodeState] = collections.OrderedDict()

    # -- moving around ---------------------------------------------------------------------
    def step(self, backend: Backend, token: int | None = None) -> StepNode:
        """Add one token after the current node (drawn, or ``token`` when forced) and move there."""
        self._check_can_step(backend)
        session = self._session(backend, self.current, fork=True)
        with torch.inference_mode():
            emitted = session.step()[0] if token is None else session.force(token)
            node = self._child(backend, emitted)
            if node.id not in self.states and session.state is not None:
                self._keep(node.id, session.state)
        self._move(node.id)
        return node

    def undo(self) -> None:
        parent = self.nodes[self.current].parent
        if parent is None:
            raise InputError("nothing to undo: this is the prompt", hint="step first")
        self._move(parent)

    def goto(self, node_id: int) -> None:
        if not 0 <= node_id < len(self.nodes):
            raise InputError(f"there is no node {node_id}", hint=f"nodes are numbered 0 to {len(self.nodes) - 1}")
        self._move(node_id)

    @property
    def ended(self) -> bool:
        """The current path ends with EOS."""
        token = self.nodes[self.current].token_id
        return token is not None and token == self.eos

    # -- the page's view -----------------------------------------------------------------------
    def path(self, node_id: int | None = None) -> list[StepNode]:
        node, out = self.nodes[self.current if node_id is None else node_id], []
        while node.parent is not None:
            out.append(node)
            node = self.nodes[node.parent]
        return out[::-1]

    def to_dict(self, backend: Backend) -> dict:
        path = self.path()
        text_ids = [n.token_id for n in path if n.token_id != backend.eos_token_id]
        return {"id": self.id, "model": self.model, "prompt": self.prompt, "config": self.config.to_dict(),
                "seed": self.sampler.seed, "current": self.current, "path": [n.id for n in path],
                "text": backend.detokenize(text_ids) if text_ids else "", "ended": self.ended,
                "nodes": [n.to_dict() for n in self.nodes], "distribution": self.distribution(backend)}

    def distribution(self, backend: Backend) -> dict | None:
        """The current node's next-token distribution: processed (what is drawn from) and raw."""
        if self.ended or len(self._ids(self.current)) >= backend.capabilities.context_length:
            return None
        with torch.inference_mode():
            position = self._session(backend, self.current).position()
        return position_view(backend, position, self.top)

    def tree(self, backend: Backend, depth: int, branch: int, min_prob: float) -> TreeResult:
        """``Model.tree`` after the current node: the top-``branch`` raw continuations of the
        prompt and path so far, ``depth`` tokens deep (the ids the session holds, not a re-tokenization)."""
        self._check_can_step(backend)
        ids = [n.token_id for n in self.path()]
        text = self.prompt + (backend.detokenize(ids) if ids else "")
        with torch.inference_mode():
            return expand_tree_ids(backend, self._ids(self.current), text, depth, branch, min_prob)

    # -- internals -------------------------------------------------------------------------------
    def _move(self, node_id: int) -> None:
        """Make ``node_id`` current with the generator as it was when the node was made."""
        self.current = node_id
        self.sampler.generator.set_state(self.nodes[node_id].rng)

    def _ids(self, node_id: int) -> list[int]:
        return self.prompt_ids + [n.token_id for n in self.path(node_id)]

    def _session(self, backend: Backend, node_id: int, fork: bool = False) -> DecodeSession:
        """The decode loop positioned at ``node_id``: on the node's kept decode state (a fork of it when the
        session will step), prefilled and kept when evicted; a top-k-only backend has no state to keep."""
        ids = self._ids(node_id)
        if backend.capabilities.top_k_only is not None:
            return DecodeSession(backend, ids, self.sampler)
        if node_id not in self.states:
            with torch.inference_mode():
                self._keep(node_id, backend.prefill(ids))
        self.states.move_to_end(node_id)
        state = self.states[node_id]
        return DecodeSession(backend, ids, self.sampler, state=backend.fork(state) if fork else state)

    def _keep(self, node_id: int, state: DecodeState) -> None:
        self.states[node_id] = state
        while len(self.states) > MAX_STATES:
            self.states.popitem(last=False)

    def _child(self, backend: Backend, emitted: Emitted) -> StepNode:
        parent, token = self.nodes[self.current], emitted.token
        for child in parent.children:
            if self.nodes[child].token_id == token:
                return self.nodes[child]
        lp = float(emitted.position.logprob(token))
        plp = float(emitted.position.processed_logprob(token))
        text = "" if token == backend.eos_token_id else backend.token_text(token)
        node = StepNode(len(self.nodes), parent.id, token, text, lp, plp, parent.cum_logprob + lp, parent.depth + 1,
                        rng=self.sampler.generator.get_state())  # after this step's draw (if any)
        self.nodes.append(node)
        parent.children.append(node.id)
        return node

    def _check_can_step(self, backend: Backend) -> None:
        if self.ended:
            raise InputError("this branch ended with the end-of-text token", hint="undo or pick another node")
        if len(self._ids(self.current)) >= backend.capabilities.context_length:
            raise InputError(f"this branch fills the model's context of {backend.capabilities.context_length} tokens",
                             hint="undo or pick a shorter branch")


def position_view(backend: Backend, position: Position, top: int) -> dict:
    """The page's view of one position: the processed distribution's top survivors, each with its raw
    probability, the survivors and both entropies (the raw one a lower bound on a top-k-only model)."""
    logp = position.logprobs(processed=True).double()  # (V,)
    raw_logp = position.logprobs()  # (V,)
    survivors = position.survivors
    best = logp.topk(min(top, survivors))
    rows = candidates(backend, best.indices, best.values)
    return {"survivors": survivors, "entropy": float(mathops.entropy(logp)), "raw_entropy": float(position.entropy),
            "top": [{**c.to_dict(), "raw_prob": float(raw_logp[c.token_id].exp())} for c in rows]}


class SessionStore:
    """The open sessions, newest last; the oldest are dropped beyond ``size``."""

    def __init__(self, size: int = 16):
        self.size = size
        self.sessions: collections.OrderedDict[str, StepSession] = collections.OrderedDict()

    def add(self, session: StepSession) -> StepSession:
        self.sessions[session.id] = session
        while len(self.sessions) > self.size:
            self.sessions.popitem(last=False)
        return session

    def get(self, session_id: str) -> StepSession:
        if session_id not in self.sessions:
            raise InputError(f"no step session {session_id!r} (it may have expired)", hint="start again with Start")
        return self.sessions[session_id]

