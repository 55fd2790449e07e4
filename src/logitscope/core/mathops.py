"""Pure probability math: no models, no tokenizers, natural-log units throughout.

Every function takes and returns torch tensors (or plain floats for scalars) and
works over the last dimension unless ``dim`` says otherwise. Shapes in comments:
B = batch, V = vocabulary, T = positions.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import torch

from ..errors import InputError, check_range

LN2 = math.log(2.0)


def apply_temperature(logits: torch.Tensor, temperature: float, dim: int = -1) -> torch.Tensor:
    """Logits for softmax at temperature T > 0 (T < 1 sharpens, T > 1 flattens). (…, V) -> (…, V).

    logits / T whenever that is finite. Where it would overflow (a tiny T, T = inf, or a
    +inf logit: inf - inf = NaN later) the result is (logits - max) / T instead — the same
    distribution, with the right limits: as T -> 0 every non-maximal entry goes to -inf
    (greedy, tied maxima share the mass); T = inf gives 0 for every finite logit (uniform
    over them). -inf logits stay -inf; +inf logits (a forced token) are the maximum.
    """
    check_range("temperature", temperature, 0, None, low_open=True)
    if temperature == 1.0:
        return logits
    scaled = logits / temperature
    if math.isfinite(temperature) and bool((torch.isfinite(scaled) | torch.isneginf(logits)).all()):
        return scaled
    z = shift_to_max(logits, dim)  # (…, V), entries <= 0
    keep = torch.isneginf(z) | (z == 0)  # -inf / inf and 0 / (T that underflows to 0) would be NaN
    return torch.where(keep, z, z / temperature)


def shift_to_max(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """logits - max along ``dim`` (largest entry 0), defined when the max is +inf too:
    +inf entries become 0 and every other entry -inf. (…, V) -> (…, V)."""
    top = logits.amax(dim=dim, keepdim=True).detach()  # (…, 1)
    top = torch.where(torch.isinf(top), torch.zeros_like(top), top)  # ±inf rows: handled below
    z = logits - top
    rows_forced = torch.isposinf(logits).any(dim=dim, keepdim=True)  # (…, 1)
    forced = torch.where(torch.isposinf(logits), torch.zeros_like(z), torch.full_like(z, -math.inf))
    return torch.where(rows_forced, forced, z)


def log_softmax(logits: torch.Tensor, dim: int = -1, temperature: float = 1.0) -> torch.Tensor:
    """Stable log-softmax: z - max - log Σ exp(z - max). Finite for logits near 1e3;
    right in the limits T -> 0, T = inf and with +inf logits (see apply_temperature)."""
    z = shift_to_max(apply_temperature(logits, temperature, dim), dim)  # largest entry becomes 0
    return z - torch.logsumexp(z, dim=dim, keepdim=True)


def softmax(logits: torch.Tensor, dim: int = -1, temperature: float = 1.0) -> torch.Tensor:
    """Stable softmax; sums to 1 along ``dim``."""
    return log_softmax(logits, dim=dim, temperature=temperature).exp()


def _plogq(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """p * log q with the convention 0 * log 0 = 0 (so -inf entries do not give NaN)."""
    p = logp.exp()
    return torch.where(p > 0, p * logq, torch.zeros_like(p))


def entropy(logprobs: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Shannon entropy in nats, H(p) = -Σ p log p. (…, V) -> (…)."""
    return 0.0 - _plogq(logprobs, logprobs).sum(dim=dim)  # 0.0 - x, not -x: no "-0.000" for certainty


def entropy_lower_bound(top_logprobs: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """A lower bound on the entropy (nats) of a distribution known only by its top-k log-probs.

    H = -Σ_top p log p - Σ_rest p log p, and every token outside the top k has
    p <= p_min (the smallest top-k probability), so -log p >= -log p_min there:
    H >= H_top + r · (-log p_min) with r = 1 - Σ_top p, the remaining mass. (…, k) -> (…).
    """
    lp = top_logprobs.double()
    head = 0.0 - _plogq(lp, lp).sum(dim=dim)
    rest = (1.0 - lp.exp().sum(dim=dim)).clamp_min(0.0)  # remaining mass (>= 0 despite rounding)
    return head + rest * (0.0 - lp.amin(dim=dim))


def remaining_mass(top_logprobs: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """1 - Σ p over the known top-k entries, clamped at 0. (…, k) -> (…)."""
    return (1.0 - top_logprobs.double().exp().sum(dim=dim)).clamp_min(0.0)


def cross_entropy(p_logprobs: torch.Tensor, q_logprobs: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """H(p, q) = -Σ p log q in nats: the cost of coding p with q's code. (…, V) -> (…)."""
    return -_plogq(p_logprobs, q_logprobs).sum(dim=dim)


def kl_divergence(p_logprobs: torch.Tensor, q_logprobs: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """KL(p || q) = Σ p (log p - log q) >= 0 in nats. (…, V) -> (…).

    Equals cross_entropy(p, q) - entropy(p). Clamped at 0 to absorb rounding.
    """
    diff = torch.where(p_logprobs.exp() > 0, p_logprobs - q_logprobs, torch.zeros_like(p_logprobs))
    return (p_logprobs.exp() * diff).sum(dim=dim).clamp_min(0.0)


def kl_top_k(p_top_logprobs: torch.Tensor, q_top_logprobs: torch.Tensor) -> torch.Tensor:
    """KL(p || q) over k named outcomes + one "rest" outcome. (N, k), (N, k) -> (N,) float64 nats."""
    lp, lq = p_top_logprobs.double(), q_top_logprobs.double()
    head = (lp.exp() * (lp - lq)).sum(dim=-1)  # Σ_top p (log p - log q)
    rest_p = (1.0 - lp.exp().sum(dim=-1)).clamp_min(0.0)  # remaining mass of p (>= 0 despite rounding)
    rest_q = (1.0 - lq.exp().sum(dim=-1)).clamp_min(1e-300)
    tail = torch.where(rest_p > 0, rest_p * (rest_p.clamp_min(1e-300).log() - rest_q.log()), torch.zeros_like(rest_p))
    return head + tail


def rank_of(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1-based rank of ``target`` ids: 1 + number of entries strictly larger. (…, V), (…) -> (…)."""
    chosen = logits.gather(-1, target.unsqueeze(-1))  # (…, 1)
    return (logits > chosen).sum(dim=-1) + 1


def perplexity(total_nll: float, num_tokens: int) -> float:
    """exp(Σ NLL / N): token-weighted perplexity from a summed NLL in nats."""
    if num_tokens <= 0:
        raise InputError("perplexity needs at least one scored token", hint="score a longer text")
    return math.exp(total_nll / num_tokens)


def nats_to_bits(nats: float) -> float:
    return nats / LN2


def bits_per_byte(total_nll: float, num_bytes: int) -> float:
    """Σ NLL (nats) / (bytes · ln 2): tokenizer-independent compression rate."""
    if num_bytes <= 0:
        raise InputError("bits-per-byte needs a non-empty text", hint="score a longer text")
    return total_nll / (num_bytes * LN2)


def bits_per_char(total_nll: float, num_chars: int) -> float:
    """Σ NLL (nats) / (characters · ln 2)."""
    if num_chars <= 0:
        raise InputError("bits-per-character needs a non-empty text", hint="score a longer text")
    return total_nll / (num_chars * LN2)


def logsumexp_paths(path_logprobs: Sequence[float]) -> float:
    """Log-semiring sum: log Σ_paths exp(logp) — total probability of alternative paths."""
    if len(path_logprobs) == 0:
        return -math.inf
    return float(torch.logsumexp(torch.tensor(path_logprobs, dtype=torch.float64), dim=0))


def lattice_score(
    edges: Mapping[Hashable, Sequence[tuple[Hashable, float]]],
    source: Hashable,
    target: Hashable,
    semiring: str = "log",
) -> tuple[float, list]:
    """Score all paths source -> target in a DAG whose edges carry log-probabilities.

    ``semiring="log"``: (logaddexp, +) — returns log of the total path probability
    and an empty path. ``semiring="max"`` (Viterbi): (max, +) — returns the best
    path's log-probability and the path itself. Unreachable target gives -inf.
    """
    if semiring not in ("log", "max"):
        raise InputError(f"unknown semiring {semiring!r}", hint="use 'log' or 'max'")
    order = _topological_order(edges, source)
    score = {source: 0.0}
    back: dict = {}
    for node in order:
        if node not in score:
            continue
        for nxt, logp in edges.get(node, ()):
            cand = score[node] + logp
            if nxt not in score:
                score[nxt], back[nxt] = cand, node
            elif semiring == "log":
                score[nxt] = logsumexp_paths([score[nxt], cand])  # float64: a float32 sum loses ~1e-7
            elif cand > score[nxt]:
                score[nxt], back[nxt] = cand, node
    if target not in score:
        return -math.inf, []
    if semiring == "log":
        return score[target], []
    path = [target]
    while path[-1] != source:
        path.append(back[path[-1]])
    return score[target], path[::-1]


def _topological_order(edges, source) -> list:
    """Depth-first topological order of nodes reachable from ``source``; rejects cycles."""
    order, state = [], {}

    def visit(node):
        if state.get(node) == 1:
            raise InputError("the lattice has a cycle", hint="lattice_score needs a DAG")
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt, _ in edges.get(node, ()):
            visit(nxt)
        state[node] = 2
        order.append(node)

    visit(source)
    return order[::-1]
