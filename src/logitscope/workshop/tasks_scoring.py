"""From-scratch tasks on sequences and predictions, graded against the library.

Perplexity from token log-probs (``mathops.perplexity``), sliding windows for long texts
(``boundary.plan_windows``), beam search with length normalisation (``sampling.beam`` on a toy
backend) and the expected calibration error (``calibration_math``). Same contract as
``tasks_sampling``: a test for ``workshop.check`` that explains the first difference.
"""

from __future__ import annotations

import math
import random

import numpy as np

from ..backends.toy import ToyBackend
from ..core import boundary, calibration_math, mathops
from ..sampling.beam import beam_search
from .grading import Case, Mismatch, grade

EOS = "<EOS>"


# -- perplexity --------------------------------------------------------------------------------------

def perplexity(fn) -> str | None:
    """``fn(logprobs) -> float``: exp(-mean log-prob) of a list of token log-probs (natural log)."""
    rng = random.Random(6)
    cases = [Case(([math.log(rng.uniform(0.01, 1.0)) for _ in range(n)],), f"{n} random token log-probs")
             for n in (5, 40)]
    cases += [
        Case(([math.log(0.1)] * 2000,), "2,000 tokens of p = 0.1",
             "0.1 ** 2000 underflows to 0: average the log-probs instead of multiplying probabilities"),
        Case(([-1.2],), "a single token with log p = -1.2", "one token: perplexity = 1 / p"),
        Case(([0.0, 0.0, 0.0],), "three certain tokens (log p = 0)", "a model that is always certain has perplexity 1"),
        Case(([-0.5, -math.inf, -0.1],), "a token with log p = -inf", "a token of probability 0 makes perplexity infinite"),
    ]

    def compare(mine, case):
        logprobs = case.args[0]
        ref = mathops.perplexity(-math.fsum(logprobs), len(logprobs))
        value = _number(mine, "perplexity")
        if math.isinf(ref) and math.isinf(value) and value > 0:
            return None
        if not math.isclose(value, ref, rel_tol=1e-6):
            return f"your perplexity is {value:.6g}, the reference {ref:.6g}"
        return None
    return grade(fn, cases, "perplexity", compare)


def _number(result, name: str) -> float:
    try:
        return float(result)
    except (TypeError, ValueError):
        raise Mismatch(f"your {name} returned {type(result).__name__}, not a number") from None


# -- sliding windows -----------------------------------------------------------------------------------

def windows(fn) -> str | None:
    """``fn(n_tokens, window, stride) -> [(begin, end, first_target), ...]``: targets 1..n-1 each
    scored once, every window at most ``window`` ids, each new window ``stride`` after the last,
    so every target gets the left context ``boundary.plan_windows`` gives it."""
    cases = [Case((n, w, s), f"{n} tokens, window {w}, stride {s}", rule) for n, w, s, rule in (
        (6, 8, 4, "a text that fits one window is one window"),
        (20, 8, 4, "windows start `stride` ids apart and score only targets not scored before"),
        (30, 10, 3, "a short stride gives every target more left context"),
        (17, 8, 8, "stride = window: each next window starts one id before the previous end, "
                   "so its first target still has one token of context"),
        (9, 8, 4, "one target past the first window"),
        (50, 16, 5, ""),
    )]

    def compare(mine, case):
        n, window, stride = case.args
        got = _window_list(mine)
        ref = [(w.begin, w.end, w.first_target) for w in boundary.plan_windows(n, 1, window, stride)]
        return _compare_windows(got, ref, n, window)
    return grade(fn, cases, "windows", compare)


def _window_list(result) -> list[tuple[int, int, int]]:
    try:
        return [tuple(int(x) for x in w) for w in result]
    except (TypeError, ValueError):
        raise Mismatch("your windows should be a list of (begin, end, first_target) triples") from None


def _context_per_target(windows: list[tuple[int, int, int]]) -> dict[int, list[int]]:
    seen: dict[int, list[int]] = {}
    for begin, end, first in windows:
        for t in range(first, end):
            seen.setdefault(t, []).append(t - begin)
    return seen


def _compare_windows(got, ref, n: int, window: int) -> str | None:
    if any(len(w) != 3 for w in got):
        return "each window is a triple (begin, end, first_target)"
    too_big = [w for w in got if w[1] - w[0] > window]
    if too_big:
        return f"your window {too_big[0]} holds {too_big[0][1] - too_big[0][0]} ids, more than {window}"
    mine, theirs = _context_per_target(got), _context_per_target(ref)
    missing = [t for t in range(1, n) if t not in mine]
    twice = [t for t, c in mine.items() if len(c) > 1]
    outside = [t for t in mine if not 1 <= t < n]
    if missing or twice or outside:
        what = (f"target(s) {missing[:5]} are never scored" if missing else
                f"target(s) {twice[:5]} are scored more than once" if twice else f"target(s) {outside[:5]} do not exist")
        return f"{what}: every target 1..{n - 1} is scored exactly once"
    for t in range(1, n):
        if mine[t][0] != theirs[t][0]:
            return (f"target {t} is scored with {mine[t][0]} token(s) of left context in your windows, "
                    f"{theirs[t][0]} in the reference (reference windows: {ref})")
    return None


# -- beam search ------------------------------------------------------------------------------------

SEED_TRANSITIONS = {(): {"A": 0.55, "B": 0.45}, ("A",): {"x": 0.52, "y": 0.48}, ("B",): {"x": 0.90, "y": 0.10},
                    ("A", "x"): {EOS: 1.0}, ("A", "y"): {EOS: 1.0}, ("B", "x"): {EOS: 1.0}, ("B", "y"): {EOS: 1.0}}
# a short answer that the raw sum prefers, a long one that the mean per token prefers; every step
# offers at least 2·width real candidates, so the width-2 search never fills up with zero-probability tokens
LENGTH_TABLE = {(): {"yes": 0.4, "well": 0.6}, ("yes",): {EOS: 0.9, "!": 0.1}, ("yes", "!"): {EOS: 1.0},
                ("well",): {"it": 0.9, EOS: 0.1}, ("well", "it"): {"depends": 0.8, "matters": 0.2},
                ("well", "it", "depends"): {EOS: 0.7, ".": 0.3}, ("well", "it", "matters"): {EOS: 1.0}}


def random_table(seed: int, depth: int = 3, words=("a", "b", "c")) -> dict[tuple[str, ...], dict[str, float]]:
    """A random next-word table: every prefix up to ``depth`` words, <EOS> possible anywhere, forced at the end."""
    rng = random.Random(seed)
    table = {}
    frontier = [()]
    for level in range(depth + 1):
        nxt = []
        for prefix in frontier:
            if level == depth:
                table[prefix] = {EOS: 1.0}
                continue
            weights = {w: rng.uniform(0.05, 1.0) for w in (*words, EOS)}
            total = sum(weights.values())
            table[prefix] = {w: x / total for w, x in weights.items()}
            nxt.extend(prefix + (w,) for w in words)
        frontier = nxt
    return table


def library_beam(table, width: int, max_new_tokens: int, alpha: float) -> tuple[tuple[str, ...], float]:
    """The answer key: ``sampling.beam.beam_search`` on a toy backend holding ``table``."""
    backend = ToyBackend.from_table({("<BOS>", "go") + k: v for k, v in table.items()})
    best = beam_search(backend, "go", num_beams=width, max_new_tokens=max_new_tokens, alpha=alpha, bos=True).best
    return tuple(backend.token_text(i) for i in best.token_ids), best.logprob


def beam(fn) -> str | None:
    """``fn(next_probs, width, max_new_tokens, alpha) -> (tokens, logprob)``: the hypothesis with the
    best length-normalised score logprob / len(tokens) ** alpha; ``next_probs(prefix)`` is a dict."""
    cases = [Case((SEED_TRANSITIONS, w, 3, 0.0), f"the theory notebook's transitions, width {w}", rule)
             for w, rule in ((1, "width 1 is greedy: 'A' (0.55) then 'x'"),
                             (2, "two beams keep 'B' alive: 'B x' has p = 0.45 · 0.90 = 0.405 > 0.286"))]
    cases += [Case((LENGTH_TABLE, 2, 5, a), f"a short and a long answer, width 2, alpha = {a:g}", rule)
              for a, rule in ((0.0, "alpha = 0 ranks by the raw sum, which favours the short answer"),
                              (1.0, "alpha = 1 ranks by the mean log-prob per token, which favours the long answer"))]
    cases += [Case((random_table(s), 30, 4, a), f"a random 3-word table (seed {s}), width 30, alpha = {a:g}",
                   "with a beam this wide nothing is pruned: the best normalised hypothesis must win")
              for s, a in ((1, 0.0), (2, 1.0), (3, 0.5))]

    def compare(mine, case):
        table, width, steps, alpha = case.args
        tokens, logprob = _hypothesis(mine)
        ref_tokens, ref_logprob = library_beam(table, width, steps, alpha)
        if tokens != ref_tokens or not math.isclose(logprob, ref_logprob, abs_tol=1e-6):
            return (f"your best hypothesis is {' '.join(tokens)!r} (log p {logprob:.4f}), "
                    f"the reference's {' '.join(ref_tokens)!r} (log p {ref_logprob:.4f})")
        return None
    return grade(lambda table, *rest: fn(_lookup(table), *rest), cases, "beam search", compare)


def _lookup(table):
    def next_probs(prefix):
        return dict(table.get(tuple(prefix), {EOS: 1.0}))
    return next_probs


def _hypothesis(result) -> tuple[tuple[str, ...], float]:
    try:
        tokens, logprob = result
        return tuple(tokens), float(logprob)
    except (TypeError, ValueError):
        raise Mismatch("your beam search should return (tokens, logprob) of the best hypothesis") from None


# -- expected calibration error -----------------------------------------------------------------------

def ece(fn) -> str | None:
    """``fn(confidence, correct, bins) -> float``: equal-width bins (lo, hi], the first also holding 0;
    ECE = Σ (n_b / N) · |accuracy_b - confidence_b| (``calibration_math.expected_calibration_error``)."""
    rng = np.random.default_rng(7)
    conf = rng.uniform(0, 1, 300)
    correct = (rng.uniform(0, 1, 300) < conf ** 1.5).astype(int)
    seed_conf = [0.95, 0.90, 0.85, 0.80, 0.75, 0.70, 0.60, 0.55, 0.45, 0.30]
    seed_correct = [1, 1, 0, 1, 0, 1, 0, 0, 0, 0]
    cases = [
        Case((seed_conf, seed_correct, 5), "the theory notebook's ten predictions, 5 bins"),
        Case((conf.tolist(), correct.tolist(), 10), "300 random predictions, 10 bins"),
        Case(([0.35, 0.4, 0.45, 0.8, 0.6, 0.55, 1.0], [0, 1, 1, 0, 1, 0, 1], 5), "confidences on the bin edges 0.4, 0.6, 0.8, 1.0",
             "bins are closed on the right: 0.4 belongs to (0.2, 0.4], 1.0 to the last bin"),
        Case(([0.0, 0.05, 0.5], [0, 0, 1], 10), "a confidence of exactly 0", "0 belongs to the first bin"),
        Case(([0.91, 0.93, 0.97], [1, 1, 1], 10), "three predictions in one bin, the others empty",
             "empty bins add nothing; weights are n_b / N"),
        Case(([0.7], [0], 4), "a single prediction", "ECE of one prediction is |correct - confidence|"),
    ]

    def compare(mine, case):
        ref = calibration_math.expected_calibration_error(*case.args[:2], bins=case.args[2])
        value = _number(mine, "ECE")
        return None if math.isclose(value, ref, abs_tol=1e-9) else f"your ECE is {value:.6g}, the reference {ref:.6g}"
    return grade(fn, cases, "ECE", compare)
