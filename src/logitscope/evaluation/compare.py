"""Why do two engines give different log-probs? Two models, engines or dtypes on the same text.

    A = the reference (e.g. torch float32), B = the other (llama.cpp on the same GGUF, bfloat16,
    a vLLM server). Both must tokenize the text into the same ids.

For every scored token t (every position is predicted by the row before it, boundary.py),
in disjoint windows of ``window`` ids:

    Δlog p     log p_B(t) - log p_A(t)              the token's own log-prob moved by this much
    KL(A‖B)    Σ_v p_A(v) (log p_A(v) - log p_B(v))  how far the whole distribution moved (nats)
    same top   argmax_A == argmax_B                   would greedy decoding pick the same token?
    rank       rank of t under A and under B          did the token move in the ranking?
    top-10     |top10_A ∩ top10_B| / 10               do the alternatives still agree?

Perplexity of each, and llama.cpp's KL statistics (mean, median, 99th percentile, max), as
``logitscope quantize`` reports them. When one side sees only its top k (a remote server), the
KL is the coarse one over that side's k tokens plus "everything else" (``mathops.kl_top_k``:
a lower bound of the full KL), and the result says so; both sides top-k only is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..backends.base import Backend
from ..core import mathops
from ..core.boundary import encode, plan_windows
from ..errors import CapabilityError, InputError, check_range
from ..progress import progress as progress_bar
from ..results import ResultMixin, prob_of

TOP = 10  # the alternatives compared per position


@dataclass(frozen=True)
class TokenDelta(ResultMixin):
    """One scored token under both models."""

    position: int
    token_id: int
    text: str
    logprob_a: float
    logprob_b: float
    kl: float  # KL(A || B) of the two next-token distributions, nats
    rank_a: int
    rank_b: int
    same_top: bool
    top_overlap: float  # |top-10 of A ∩ top-10 of B| / 10

    prob_a = prob_of("logprob_a")
    prob_b = prob_of("logprob_b")

    @property
    def delta(self) -> float:
        return self.logprob_b - self.logprob_a


@dataclass(frozen=True)
class EngineComparison(ResultMixin):
    """Model B against model A on the same tokens (see the module docstring)."""

    a: dict  # {"model", "engine", "dtype"}
    b: dict
    num_tokens: int
    perplexity_a: float
    perplexity_b: float
    delta_mean: float  # mean of log p_B - log p_A over the scored tokens
    delta_max: float  # largest |log p_B - log p_A|
    kl_mean: float
    kl_median: float
    kl_p99: float
    kl_max: float
    same_top: float  # share of positions whose argmax agrees
    rank_changed: float  # share of tokens whose rank differs
    top_overlap: float  # mean share of the top-10 alternatives both models list
    kl_exact: bool  # False: one side is top-k only, the KL is over its top k + the rest (a lower bound)
    tokens: tuple[TokenDelta, ...] = field(default=(), repr=False)
    same_tokenization: bool = True  # False: B's own tokenizer splits the text otherwise; both scored A's ids

    def worst(self, n: int = 8) -> list[TokenDelta]:
        """The ``n`` tokens whose distributions moved most (largest KL)."""
        return sorted(self.tokens, key=lambda t: -t.kl)[:n]

    def to_dict(self) -> dict:
        out = {f: getattr(self, f) for f in self.__dataclass_fields__ if f != "tokens"}
        return out | {"tokens": [t.to_dict() | {"delta": t.delta} for t in self.tokens]}

    def _rows(self) -> list[dict]:
        return [t.to_dict() | {"delta": t.delta} for t in self.tokens]


def compare_engines(a: Backend, b: Backend, text: str, window: int = 512, bos: str | bool = "auto",
                    progress: bool = False) -> EngineComparison:
    """Score ``text`` with both backends and compare them token by token (A is the reference)."""
    if not (a.capabilities.full_vocab or b.capabilities.full_vocab):
        raise CapabilityError("both models see only their top k: a comparison needs one full distribution",
                              hint="make one side a local model (torch or llama.cpp)")
    enc = encode(a, text, None, bos)
    same_tokenization = list(encode(b, text, None, bos).ids) == list(enc.ids)
    if not same_tokenization:
        _check_same_vocabulary(a, b, enc.ids)
    window = check_range("window", window, 2, min(a.capabilities.context_length, b.capabilities.context_length))
    rows = []
    for w in progress_bar(plan_windows(len(enc.ids), enc.score_from, window, stride=window), progress, "windows"):
        rows += _window_rows(a, b, enc.ids[w.begin:w.end], w.first_target - w.begin, w.begin)
    tokens = tuple(TokenDelta(p, t, a.token_text(t), *vals) for p, t, *vals in rows)
    return summarise(tokens, (a.producer(), b.producer()), exact=a.capabilities.full_vocab and
                     b.capabilities.full_vocab, same_tokenization=same_tokenization)


def _check_same_vocabulary(a: Backend, b: Backend, ids) -> None:
    """Two tokenizers that split a text differently (llama.cpp's and Hugging Face's for one GGUF can, on rare
    pieces) may still share the vocabulary: then B scores A's ids. Otherwise the tokens cannot be paired."""
    if a.vocab_size == b.vocab_size and all(a.token_text(t) == b.token_text(t) for t in set(ids)):
        return
    raise InputError("the two models tokenize the text differently and do not share a vocabulary, so their tokens "
                     "cannot be compared one by one",
                     hint="compare engines or dtypes of the same model (the same tokenizer)")


@torch.inference_mode()
def _window_rows(a: Backend, b: Backend, ids: list[int], first: int, offset: int) -> list[tuple]:
    """(position, token, log p_A, log p_B, KL, rank_A, rank_B, same top, top overlap) per target ids[first:]."""
    targets = torch.tensor(ids[first:], dtype=torch.long)  # (n,)
    la, lb = _logprobs(a, ids, first), _logprobs(b, ids, first)  # each (n, V) or a top-k pair
    kl = _kl(la, lb)
    out = []
    for i, t in enumerate(targets.tolist()):
        ra, rb = _rank(la, i, t), _rank(lb, i, t)
        ta, tb = _top_ids(la, i), _top_ids(lb, i)
        out.append((offset + first + i, t, _logprob(la, i, t), _logprob(lb, i, t), float(kl[i]), ra, rb,
                    ta[0] == tb[0], len(set(ta) & set(tb)) / TOP))
    return out


def _logprobs(backend: Backend, ids: list[int], first: int):
    """(n, V) float64 log-probs of every target's distribution; a top-k-only backend: (top ids, top log-probs,
    the targets' own log-probs)."""
    if backend.capabilities.full_vocab:
        return mathops.log_softmax(backend.position_logits(ids)[first - 1:len(ids) - 1].double())  # (n, V)
    k = backend.capabilities.top_k_only
    s = backend.score_positions([ids], [first], k)[0]
    return s.top_ids, s.top_logprobs, s.logprob, s.rank


def _kl(la, lb) -> torch.Tensor:
    if isinstance(la, torch.Tensor) and isinstance(lb, torch.Tensor):
        return mathops.kl_divergence(la, lb)  # (n,) exact
    if isinstance(lb, tuple):  # B top-k: KL over B's known tokens + the rest
        return mathops.kl_top_k(la.gather(-1, lb[0]), lb[1])
    return mathops.kl_top_k(la[1], lb.gather(-1, la[0]))  # A top-k


def _logprob(lp, i: int, t: int) -> float:
    return float(lp[i, t]) if isinstance(lp, torch.Tensor) else float(lp[2][i])


def _rank(lp, i: int, t: int) -> int:
    return int((lp[i] > lp[i, t]).sum()) + 1 if isinstance(lp, torch.Tensor) else int(lp[3][i])


def _top_ids(lp, i: int) -> list[int]:
    return lp[i].topk(min(TOP, lp.shape[-1])).indices.tolist() if isinstance(lp, torch.Tensor) else \
        lp[0][i, :TOP].tolist()


def summarise(tokens: tuple[TokenDelta, ...], producers: tuple[dict, dict], exact: bool,
              same_tokenization: bool = True) -> EngineComparison:
    if not tokens:
        raise InputError("the text has no token to compare", hint="give a longer text")
    kl = np.array([t.kl for t in tokens])
    la, lb = np.array([t.logprob_a for t in tokens]), np.array([t.logprob_b for t in tokens])
    delta = lb - la
    return EngineComparison(
        producers[0], producers[1], len(tokens), math.exp(-la.mean()), math.exp(-lb.mean()), float(delta.mean()),
        float(np.abs(delta).max()), float(kl.mean()), float(np.median(kl)), float(np.percentile(kl, 99)),
        float(kl.max()), float(np.mean([t.same_top for t in tokens])),
        float(np.mean([t.rank_a != t.rank_b for t in tokens])), float(np.mean([t.top_overlap for t in tokens])),
        exact, tokens, same_tokenization)
