"""The tree of possibilities: the top-B next tokens at every step, to depth D.

    prompt
    ├── ' Paris'   p=0.61  path 0.61
    │   ├── '.'    p=0.45  path 0.27
    │   └── ','    p=0.20  path 0.12
    └── ' the'     p=0.08  path 0.08
        └── ...

Each node stores its token, the conditional log-prob log p(token | path) and
the path's cumulative log-prob. With ``reuse_cache`` (default) the prompt is
prefilled once and every child continues its parent's decode state: siblings
fork the parent's KV cache instead of recomputing the prefix, so an expansion
costs one single-token step (``session.DecodeSession``: fork, force).
``reuse_cache=False`` recomputes every prefix from scratch (the reference path).
Leaves and EOS nodes are not expanded.

A top-k-only backend (a remote server) expands the known alternatives: level by
level, one ``next_top_k`` call for every node of the level (a remote backend packs
them into concurrent requests), ``branch`` at most its k. The log-probs are exact;
the result's ``top_k_only`` says the branches came from the top k.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..core import mathops
from ..backends.base import Backend
from ..backends.topk import check_top_k
from ..errors import InputError, check_range
from .session import DecodeSession, check_room, decode_ids, new_sampler
from ..results import ResultMixin, prob_of

MAX_NODES = 20_000


@dataclass(frozen=True)
class TreeNode(ResultMixin):
    token_id: int
    text: str
    logprob: float  # log p(token | prompt + path to its parent)
    cum_logprob: float  # log-prob of the whole path from the prompt to this node
    depth: int  # 1 = a child of the prompt
    children: tuple["TreeNode", ...] = ()

    prob = prob_of("logprob")
    cum_prob = prob_of("cum_logprob")

    def to_dict(self) -> dict:
        return {"token_id": self.token_id, "text": self.text, "logprob": self.logprob, "prob": self.prob,
                "cum_logprob": self.cum_logprob, "cum_prob": self.cum_prob, "depth": self.depth,
                "children": [c.to_dict() for c in self.children]}


@dataclass(frozen=True)
class TreeResult(ResultMixin):
    prompt: str
    input_ids: tuple[int, ...]
    depth: int
    branch: int
    min_prob: float
    children: tuple[TreeNode, ...]
    forward_steps: int  # decode steps run (prefill counts as one); top-k backends: prefixes asked for
    top_k_only: int | None = None  # expanded from the backend's top k

    def nodes(self) -> Iterator[tuple[tuple[TreeNode, ...], TreeNode]]:
        """Every (ancestors, node) pair, depth first."""
        stack = [((), c) for c in reversed(self.children)]
        while stack:
            path, node = stack.pop()
            yield path, node
            stack.extend((path + (node,), c) for c in reversed(node.children))

    def _rows(self) -> list[dict]:
        return [{"path": "".join(a.text for a in path) + node.text, "depth": node.depth, "token_id": node.token_id,
                 "text": node.text, "prob": node.prob, "cum_prob": node.cum_prob} for path, node in self.nodes()]


def expand_tree(backend: Backend, prompt: str, depth: int = 3, branch: int = 3, min_prob: float = 0.0,
                bos: str | bool = "auto", reuse_cache: bool = True) -> TreeResult:
    """Expand the top-``branch`` tokens at every node down to ``depth``."""
    _check_shape(depth, branch, min_prob)
    return expand_tree_ids(backend, decode_ids(backend, prompt, bos), prompt, depth, branch, min_prob, reuse_cache)


def expand_tree_ids(backend: Backend, ids: list[int], prompt: str, depth: int = 3, branch: int = 3,
                    min_prob: float = 0.0, reuse_cache: bool = True) -> TreeResult:
    """``expand_tree`` after given token ids (BOS already applied); ``prompt`` is their text."""
    _check_shape(depth, branch, min_prob)
    check_room(backend, ids)
    depth = min(depth, backend.capabilities.context_length - len(ids))
    if backend.capabilities.top_k_only is not None:
        check_top_k(backend, branch)
        with torch.inference_mode():
            children, asked = _top_k_tree(backend, ids, depth, branch, min_prob)
        return TreeResult(prompt, tuple(ids), depth, branch, min_prob, children, asked,
                          backend.capabilities.top_k_only)
    expander = _Expander(backend, branch, min_prob)
    with torch.inference_mode():
        root = DecodeSession(backend, ids, new_sampler(backend), use_cache=reuse_cache)
        children = expander.expand(root, depth, 0.0, 1)
    return TreeResult(prompt, tuple(ids), depth, branch, min_prob, children, expander.steps + 1)


def _check_shape(depth: int, branch: int, min_prob: float) -> None:
    check_range("depth", depth, 1, 12)
    check_range("branch", branch, 1, 50)
    check_range("min_prob", min_prob, 0, 1)
    if branch ** depth > MAX_NODES:
        raise InputError(f"branch={branch} and depth={depth} give {branch ** depth} leaves",
                         hint=f"lower branch or depth so that branch ** depth <= {MAX_NODES}")


class _Expander:
    """Depth-first expansion on decode sessions: a child forks its parent's session (the last child
    takes the parent's own) and forces its token, so an expansion costs one single-token step."""

    def __init__(self, backend: Backend, branch: int, min_prob: float):
        self.backend, self.branch, self.min_prob = backend, branch, min_prob
        self.steps = 0

    def expand(self, session: DecodeSession, levels: int, cum: float, depth: int) -> tuple[TreeNode, ...]:
        """Children of the session's next position down ``levels`` more levels. Consumes ``session``."""
        logp = mathops.log_softmax(session.position().raw.double())  # (V,)
        top = logp.topk(min(self.branch, logp.shape[-1]))
        kept = [(int(t), float(lp)) for t, lp in zip(top.indices, top.values) if math.exp(lp) >= self.min_prob]
        grow = [t for t, _ in kept if levels > 1 and t != self.backend.eos_token_id]
        nodes = []
        for token, lp in kept:
            grandchildren = ()
            if token in grow:
                child = session if token == grow[-1] else session.fork()
                child.force(token)
                self.steps += 1
                grandchildren = self.expand(child, levels - 1, cum + lp, depth + 1)
            nodes.append(TreeNode(token, self.backend.token_text(token), lp, cum + lp, depth, grandchildren))
        return tuple(nodes)


def _top_k_tree(backend: Backend, ids: list[int], depth: int, branch: int,
                min_prob: float) -> tuple[tuple[TreeNode, ...], int]:
    """The tree from ``next_top_k``, one call per level for all of its nodes; (children, prefixes asked)."""
    tops: dict[tuple[int, ...], list[tuple[int, float]]] = {}  # path -> its kept (token, log-prob) children
    level, asked = [()], 0
    for d in range(depth):
        if not level:
            break
        top_ids, top_lps = backend.next_top_k([ids + list(path) for path in level], branch)  # (N, branch)
        asked += len(level)
        for path, row_ids, row_lps in zip(level, top_ids.tolist(), top_lps.tolist()):
            tops[path] = [(t, lp) for t, lp in zip(row_ids, row_lps) if math.exp(lp) >= min_prob]
        level = [path + (t,) for path in level for t, _ in tops[path]
                 if d < depth - 1 and t != backend.eos_token_id]
    return _top_k_nodes(backend, tops, (), 0.0), asked


def _top_k_nodes(backend: Backend, tops: dict, path: tuple[int, ...], cum: float) -> tuple[TreeNode, ...]:
    return tuple(TreeNode(t, backend.token_text(t), lp, cum + lp, len(path) + 1,
                          _top_k_nodes(backend, tops, path + (t,), cum + lp) if path + (t,) in tops else ())
                 for t, lp in tops.get(path, []))
