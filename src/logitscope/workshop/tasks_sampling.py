"""From-scratch tasks on one next-token distribution, graded against the library.

Each task is a test for ``workshop.check``: it takes the learner's function, runs it and the
library's own implementation (``core.mathops``, ``core.processors``) on random and adversarial
logits, and explains the first difference. The learner's functions work on one row: a 1-D
float64 tensor of logits (V,), -inf for a token that is already removed.
"""

from __future__ import annotations

import itertools
import math

import torch

from ..core import mathops, processors
from .grading import Case, Mismatch, as_vector, call, compare_filters, grade, random_logits, seeded, vec

INF = float("inf")
NO_HISTORY = torch.zeros(1, 0, dtype=torch.long)


def _row(processor, logits: torch.Tensor) -> torch.Tensor:
    """The library's processor on one row (V,) -> (V,)."""
    return processor(NO_HISTORY, logits[None])[0]


# -- softmax and temperature ---------------------------------------------------------------------

def _softmax_cases() -> list[Case]:
    g = seeded(1)
    cases = [Case((z,), f"random logits {z.numpy().round(2).tolist()}") for z in random_logits(g, (5, 12))]
    return cases + [
        Case((vec(1002.0, 1001.0, 999.0, 995.0),), "logits [1002, 1001, 999, 995]",
             "exp(1002) overflows: subtract the largest logit before exponentiating"),
        Case((vec(-1000.0, -1001.0, -1003.0),), "logits [-1000, -1001, -1003]",
             "exp(-1000) underflows to 0 for every token: subtract the largest logit first"),
        Case((vec(2.0, -INF, 0.5, -INF),), "logits [2, -inf, 0.5, -inf]",
             "a -inf logit is a removed token: probability exactly 0"),
        Case((vec(3.7),), "a single token [3.7]", "one token gets probability 1"),
        Case((vec(1.0, 1.0, 1.0, 1.0),), "four equal logits", "equal logits share the mass equally"),
    ]


def _compare_probs(mine, case: Case, ref: torch.Tensor, name: str) -> str | None:
    p = as_vector(mine, name, ref.numel())
    if torch.isnan(p).any():
        return f"your {name} returns NaN ({_show_vec(p)})"
    if not math.isclose(float(p.sum()), 1.0, abs_tol=1e-6):
        return f"your probabilities sum to {float(p.sum()):.6g}, not 1"
    if float((p - ref).abs().max()) > 1e-6:
        return f"your {name} gives {_show_vec(p)}, the reference {_show_vec(ref)}"
    return None


def _show_vec(p: torch.Tensor) -> str:
    return "[" + ", ".join(f"{float(x):.4g}" for x in p[:8]) + (", …]" if p.numel() > 8 else "]")


def softmax(fn) -> str | None:
    """``fn(z) -> probabilities``: the stable softmax, against ``mathops.softmax``."""
    return grade(fn, _softmax_cases(), "softmax",
                 lambda mine, c: _compare_probs(mine, c, mathops.softmax(c.args[0]), "softmax"))


def temperature(fn) -> str | None:
    """``fn(z, tau) -> probabilities``: softmax(z / tau), against ``mathops.softmax(z, temperature=tau)``."""
    base = _softmax_cases()
    cases = [Case(c.args + (tau,), f"{c.about} at τ = {tau:g}", rule or c.rule)
             for c in base for tau, rule in ((0.5, ""), (2.0, ""), (1e-3, "a tiny τ makes z / τ huge: "
                                                                         "subtract the max after dividing"))]
    cases.append(Case((vec(2.0, 1.0, 0.0), 1e6), "logits [2, 1, 0] at τ = 1e6", "a huge τ flattens to uniform"))
    return grade(fn, cases, "softmax with temperature",
                 lambda mine, c: _compare_probs(mine, c, mathops.softmax(c.args[0], temperature=c.args[1]),
                                                "softmax with temperature"))


# -- the filters ---------------------------------------------------------------------------------

def _filter_task(fn, cases: list[Case], make, what: str) -> str | None:
    def compare(mine, case):
        logits, param = case.args
        return compare_filters(as_vector(mine, what, logits.numel()), _row(make(param), logits), what)
    return grade(fn, cases, what, compare)


def top_k(fn) -> str | None:
    """``fn(logits, k) -> logits`` with all but the k largest at -inf (ties with the k-th stay)."""
    g = seeded(2)
    cases = [Case((z, k), f"random logits {z.numpy().round(2).tolist()} with k = {k}")
             for z, k in zip(random_logits(g, (6, 10, 30)), (2, 3, 7))]
    cases += [
        Case((vec(3.0, 1.0, 1.0), 2), "logits [3, 1, 1] with k = 2",
             "every token tied with the k-th largest logit stays: no arbitrary tie-break"),
        Case((vec(0.5, 2.0, -1.0), 10), "3 logits with k = 10", "k larger than the vocabulary keeps every token"),
        Case((vec(1.0, -INF, 2.0, 0.0), 3), "logits [1, -inf, 2, 0] with k = 3",
             "a -inf token is already removed and stays removed"),
        Case((vec(4.2), 1), "a single token with k = 1", "one token: keep it"),
        Case((vec(0.0, 5.0, 1.0, 5.0), 1), "logits [0, 5, 1, 5] with k = 1", "both tokens tied at the top stay"),
    ]
    return _filter_task(fn, cases, processors.top_k, "top-k")


def top_p(fn) -> str | None:
    """``fn(logits, p) -> logits``: the nucleus, the crossing token included (``processors.top_p``)."""
    g = seeded(3)
    cases = [Case((z, p), f"random logits {z.numpy().round(2).tolist()} with p = {p}",
                  "keep tokens, most likely first, while the mass *before* each is below p: the token that crosses p stays")
             for z, p in zip(random_logits(g, (6, 10, 40)), (0.5, 0.82, 0.9))]
    cases += [
        Case((torch.tensor([4.0, 3.0, 2.2, 1.5, 0.5, -0.5], dtype=torch.float64), 0.82),
             "the lesson's logits [4, 3, 2.2, 1.5, 0.5, -0.5] with p = 0.82",
             "the mass is 0.604 after one token and 0.826 after two: the second token crosses 0.82 and stays"),
        Case((vec(1.0, 2.0, 0.0), 1.0), "logits [1, 2, 0] with p = 1.0", "p = 1 keeps every token"),
        Case((vec(5.0, 0.0, -1.0), 0.01), "logits [5, 0, -1] with p = 0.01", "the most likely token always stays"),
        Case((vec(1.0, 1.0, 1.0, 1.0), 0.6), "four equal logits with p = 0.6",
             "equal probabilities are taken lowest token id first (a stable sort); "
             "0.25 + 0.25 = 0.5 < 0.6, so the third token crosses p and stays"),
        Case((vec(2.0, -INF, 1.0, -INF), 0.9), "logits [2, -inf, 1, -inf] with p = 0.9",
             "a -inf token has probability 0 and stays removed"),
        Case((vec(-3.0), 0.5), "a single token with p = 0.5", "one token: keep it"),
    ]
    return _filter_task(fn, cases, processors.top_p, "top-p")


def min_p(fn) -> str | None:
    """``fn(logits, m) -> logits``: keep p >= m · p_max (``processors.min_p``)."""
    g = seeded(4)
    cases = [Case((z, m), f"random logits {z.numpy().round(2).tolist()} with min_p = {m}",
                  "keep every token whose probability is at least min_p times the top probability")
             for z, m in zip(random_logits(g, (6, 12, 40)), (0.1, 0.3, 0.05))]
    cases += [
        Case((vec(1.0, 2.0, 0.0), 0.0), "logits [1, 2, 0] with min_p = 0", "min_p = 0 keeps every token"),
        Case((vec(2.0, 2.0, 1.0), 1.0), "logits [2, 2, 1] with min_p = 1",
             "min_p = 1 keeps the top token and every token tied with it"),
        Case((vec(0.0, -INF, math.log(0.5)), 0.5), "logits [0, -inf, log 0.5] with min_p = 0.5",
             "p = 0.5 · p_max is on the line and stays (>=); -inf stays removed"),
        Case((vec(7.0), 0.9), "a single token with min_p = 0.9", "one token: keep it"),
    ]
    return _filter_task(fn, cases, processors.min_p, "min-p")


# -- sampling with a seed --------------------------------------------------------------------------

def sampling(fn) -> str | None:
    """``fn(logits, n, seed) -> n token ids``: reproducible, never a removed token, frequencies that
    pass the library's χ² test (``processors.chi_square_gof``) against softmax(logits)."""
    logits = vec(2.0, 1.0, 0.5, -INF, 0.0, 1.5)
    cases = [Case((logits, 4000, 0), "4,000 draws from logits [2, 1, 0.5, -inf, 0, 1.5] with seed 0",
                  "draw in proportion to softmax(logits), e.g. torch.multinomial with a seeded torch.Generator"),
             Case((vec(0.3), 20, 5), "20 draws from a single token", "one token: every draw is that token")]

    def compare(mine, case):
        z, n, seed = case.args
        ids = _draws(mine, n, z.numel())
        if (~torch.isfinite(z[ids])).any():
            return "you drew a token whose logit is -inf (probability 0)"
        again = _draws(call(fn, Case((z, n, seed), case.about), "sampler"), n, z.numel())
        if not torch.equal(ids, again):
            return "the same seed gave different draws: create a torch.Generator, call manual_seed(seed), pass it along"
        other = call(fn, Case((z, n, seed + 1), case.about), "sampler")
        if z.numel() > 1 and torch.equal(ids, _draws(other, n, z.numel())):
            return "seeds 0 and 1 gave identical draws: the seed must drive the random generator"
        counts = torch.bincount(ids, minlength=z.numel())
        _, _, p_value = processors.chi_square_gof(counts, mathops.softmax(z))
        if z.numel() > 1 and p_value < 1e-4:
            share = ", ".join(f"{c / n:.3f}" for c in counts.tolist())
            want = ", ".join(f"{p:.3f}" for p in mathops.softmax(z).tolist())
            return f"your draws' shares [{share}] do not follow the probabilities [{want}] (χ² p = {p_value:.2g})"
        return None
    return grade(fn, cases, "sampler", compare)


def _draws(result, n: int, vocab: int) -> torch.Tensor:
    try:
        ids = torch.as_tensor(result.tolist() if hasattr(result, "tolist") else result).reshape(-1).long()
    except (TypeError, ValueError, RuntimeError):
        raise Mismatch(f"your sampler returned {type(result).__name__}, not a list of token ids") from None
    if ids.numel() != n:
        raise Mismatch(f"asked for {n} draws, got {ids.numel()}")
    if ((ids < 0) | (ids >= vocab)).any():
        raise Mismatch(f"a drawn id is outside 0..{vocab - 1}")
    return ids


# -- the chain -------------------------------------------------------------------------------------

CHAIN_ORDER = ("temperature", "top-k", "top-p", "min-p")


def chain(fn) -> str | None:
    """``fn(logits, temperature, top_k, top_p, min_p) -> logits``: the stages in the production order
    temperature -> top-k -> top-p -> min-p (``SamplerConfig.stages``); a wrong order is named."""
    z = torch.tensor([4.0, 3.0, 2.2, 1.5, 0.5, -0.5, 1.0, 2.9], dtype=torch.float64)
    cases = [Case((z, 0.5, 6, 0.82, 0.0), "the lesson's 8 logits, T = 0.5, top-k 6, top-p 0.82",
                  "temperature reshapes the probabilities that top-p then adds up"),
             Case((z, 2.0, 3, 0.7, 0.0), "the lesson's 8 logits, T = 2, top-k 3, top-p 0.7",
                  "top-p adds up the mass of the survivors of top-k, renormalised"),
             Case((z, 1.5, 8, 0.95, 0.3), "the lesson's 8 logits, T = 1.5, top-k 8, top-p 0.95, min-p 0.3",
                  "min-p compares with the top probability after the earlier stages")]
    g = seeded(5)
    cases += [Case((r, 0.7, 20, 0.9, 0.05), f"random logits (V = {r.numel()}), T = 0.7, top-k 20, top-p 0.9, min-p 0.05")
              for r in random_logits(g, (50,), scale=3.0)]

    def compare(mine, case):
        logits = case.args[0]
        got = as_vector(mine, "chain", logits.numel())
        problem = compare_filters(got, _library_chain(case.args), "chain")
        if problem is None:
            return None
        orders = [o for o in itertools.permutations(CHAIN_ORDER)
                  if compare_filters(got, _chain_in_order(case.args, o), "chain") is None]
        if orders:
            return (f"your chain gives what the stages give in the order {' -> '.join(orders[0])}; "
                    f"the production order is {' -> '.join(CHAIN_ORDER)}")
        return problem
    return grade(fn, cases, "chain", compare)


def _library_chain(args) -> torch.Tensor:
    """The answer key: the chain SamplerConfig builds, in the order every sampler of the library uses."""
    logits, t, k, p, m = args
    config = processors.SamplerConfig(temperature=t, top_k=k, top_p=p, min_p=m)
    return _row(processors.compose(config.stages()), logits)


def _chain_in_order(args, order) -> torch.Tensor:
    """The same stages in another order (to name the order a learner used)."""
    logits, t, k, p, m = args
    make = {"temperature": processors.temperature(t), "top-k": processors.top_k(k),
            "top-p": processors.top_p(p), "min-p": processors.min_p(m)}
    row = logits
    for stage in order:
        row = _row(make[stage], row)
    return row


