"""Pure calibration math: no models. NumPy arrays in, floats or small tables out.

Notation: N = examples, C = choices (classes). ``confidence`` is the probability
the model gave its own prediction (top label); ``correct`` is 1 when that
prediction was right. Natural logs throughout.

Binning (equal-width): bin b covers (lo, hi], except
that the first bin also holds confidence exactly 0. Equal-mass bins sort the
examples by confidence and cut them at its quantiles into groups of (nearly) equal
size; equal confidences are never split across bins (so a bin may be larger or empty).

    ECE = Σ_b (n_b / N) · |acc_b - conf_b|        MCE = max_b |acc_b - conf_b|

Separating two classes by a score: ``auroc`` is P(score of a random positive > score
of a random negative), ties 1/2 (Mann-Whitney U); ``roc_curve`` sweeps a threshold;
``pair_accuracy`` compares the two members of each pair.

Temperature scaling divides choice scores by T before the softmax. NLL(1/T) is
convex in the inverse temperature (log-sum-exp is convex, the correct score is
linear), so a golden-section search over log(1/T) finds its minimum; T = 1 is
always a candidate, so the fitted T never raises NLL on the split it was fitted on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, check_range

GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0  # 0.618…: golden-section step


@dataclass(frozen=True)
class CalibrationBin:
    """One bin of a reliability diagram."""

    low: float  # confidence interval (low, high]
    high: float
    count: int
    accuracy: float  # NaN when the bin is empty
    confidence: float  # mean confidence in the bin; NaN when empty

    @property
    def gap(self) -> float:
        return abs(self.accuracy - self.confidence) if self.count else 0.0


def _as_pair(confidence, correct) -> tuple[np.ndarray, np.ndarray]:
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
    corr = np.asarray(correct, dtype=np.float64).reshape(-1)
    if conf.shape != corr.shape:
        raise InputError(f"{conf.size} confidences but {corr.size} correctness labels",
                         hint="give one correctness label per confidence")
    if conf.size == 0:
        raise InputError("calibration needs at least one example", hint="evaluate a non-empty dataset")
    if np.any(conf < 0) or np.any(conf > 1) or not np.all(np.isfinite(conf)):
        raise InputError("confidences must lie in [0, 1]", hint="pass probabilities, not logits")
    return conf, corr


def bin_assignments(confidence: np.ndarray, bins: int, binning: str = "width") -> np.ndarray:
    """Bin index (0..bins-1) of every example. (N,) -> (N,) int."""
    check_range("bins", bins, 1, None)
    if binning == "width":
        # (lo, hi] bins: ceil(c * B) - 1, with c = 0 going to bin 0
        return np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    if binning == "mass":
        # edges at the confidence quantiles; equal confidences always share a bin
        edges = np.quantile(confidence, np.linspace(0.0, 1.0, bins + 1)[1:-1])  # (bins - 1,)
        return np.searchsorted(edges, confidence, side="left")
    raise InputError(f"unknown binning {binning!r}", hint="use 'width' (equal-width) or 'mass' (equal-mass)")


def reliability_bins(confidence, correct, bins: int = 10, binning: str = "width") -> list[CalibrationBin]:
    """The reliability-diagram table: per bin its count, accuracy and mean confidence."""
    conf, corr = _as_pair(confidence, correct)
    which = bin_assignments(conf, bins, binning)
    rows = []
    for b in range(bins):
        mask = which == b
        low, high = _bin_edges(conf, mask, b, bins, binning)
        n = int(mask.sum())
        acc = float(corr[mask].mean()) if n else math.nan
        mean_conf = float(conf[mask].mean()) if n else math.nan
        rows.append(CalibrationBin(low, high, n, acc, mean_conf))
    return rows


def _bin_edges(conf, mask, b, bins, binning) -> tuple[float, float]:
    if binning == "width":
        return b / bins, (b + 1) / bins
    if not mask.any():
        return math.nan, math.nan
    return float(conf[mask].min()), float(conf[mask].max())


def expected_calibration_error(confidence, correct, bins: int = 10, binning: str = "width") -> float:
    """ECE = Σ_b (n_b/N) |acc_b - conf_b| over non-empty bins."""
    rows = reliability_bins(confidence, correct, bins, binning)
    total = sum(r.count for r in rows)
    return float(sum(r.count / total * r.gap for r in rows))


def maximum_calibration_error(confidence, correct, bins: int = 10, binning: str = "width") -> float:
    """MCE = the largest |acc_b - conf_b| over non-empty bins."""
    return float(max(r.gap for r in reliability_bins(confidence, correct, bins, binning)))


def brier_multiclass(probs, labels) -> float:
    """Multi-class Brier score: mean over examples of Σ_c (p_c - y_c)², in [0, 2]. (N, C), (N,)."""
    p, y = _probs_and_labels(probs, labels)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(y)), y] = 1.0  # (N, C)
    return float(((p - onehot) ** 2).sum(axis=1).mean())


def brier_top_label(confidence, correct) -> float:
    """Top-label Brier score: mean (confidence - correct)², in [0, 1]."""
    conf, corr = _as_pair(confidence, correct)
    return float(((conf - corr) ** 2).mean())


def negative_log_likelihood(probs, labels) -> float:
    """Mean -log p(correct class) in nats. (N, C), (N,) -> float; inf if p = 0."""
    p, y = _probs_and_labels(probs, labels)
    with np.errstate(divide="ignore"):
        return float(-np.log(p[np.arange(len(y)), y]).mean())


def _probs_and_labels(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=int).reshape(-1)
    if p.ndim != 2 or p.shape[0] != y.size or y.size == 0:
        raise InputError(f"probabilities of shape {p.shape} do not match {y.size} labels",
                         hint="give an (N, C) probability array and N labels")
    if np.any((y < 0) | (y >= p.shape[1])):
        raise InputError("a label is out of range", hint=f"labels must be in [0, {p.shape[1] - 1}]")
    return p, y


def softmax_scores(scores, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of choice scores divided by T. (N, C) -> (N, C); -inf scores get 0."""
    check_range("temperature", temperature, 0, None, low_open=True)
    z = np.asarray(scores, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)  # largest score becomes 0
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def scores_nll(scores, labels, temperature: float = 1.0) -> float:
    """NLL of the labels under softmax(scores / T), computed in log space. (N, C), (N,)."""
    z = np.asarray(scores, dtype=np.float64) / temperature
    y = np.asarray(labels, dtype=int)
    m = z.max(axis=1)
    lse = m + np.log(np.exp(z - m[:, None]).sum(axis=1))  # (N,) log Σ exp z
    return float((lse - z[np.arange(len(y)), y]).mean())


def fit_temperature(scores, labels, low: float = 0.05, high: float = 20.0, iterations: int = 80) -> float:
    """T in [low, high] minimising NLL of softmax(scores / T); never worse than T = 1."""
    check_range("low", low, 0, None, low_open=True)
    check_range("high", high, low, None, low_open=True)
    nll_at = lambda u: scores_nll(scores, labels, math.exp(-u))  # u = log(1/T)
    a, b = -math.log(high), -math.log(low)
    c, d = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
    fc, fd = nll_at(c), nll_at(d)
    for _ in range(iterations):  # unimodal in u because NLL is convex in 1/T
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - GOLDEN * (b - a)
            fc = nll_at(c)
        else:
            a, c, fc = c, d, fd
            d = a + GOLDEN * (b - a)
            fd = nll_at(d)
    best_t = math.exp(-(a + b) / 2)
    if low <= 1.0 <= high and scores_nll(scores, labels, 1.0) <= scores_nll(scores, labels, best_t):
        return 1.0
    return best_t


# -- separating two classes by a score (true vs false statements) ------------------------------

def pair_accuracy(true_scores: Sequence[float], false_scores: Sequence[float]) -> float:
    """Share of pairs whose true member scores higher; a tie counts 1/2."""
    if len(true_scores) != len(false_scores) or not true_scores:
        raise InputError("pair accuracy needs two equally long, non-empty score lists", hint="one score per pair")
    wins = [1.0 if t > f else 0.5 if t == f else 0.0 for t, f in zip(true_scores, false_scores)]
    return math.fsum(wins) / len(wins)


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """P(score of a random positive > score of a random negative), ties 1/2 (Mann-Whitney U).

    Computed from ranks of the pooled scores (average rank for ties): O(n log n).
    """
    if not positive or not negative:
        raise InputError("AUROC needs at least one positive and one negative score", hint="score both classes")
    pooled = sorted([(s, 1) for s in positive] + [(s, 0) for s in negative])
    rank_sum, i = 0.0, 0
    while i < len(pooled):
        j = i
        while j < len(pooled) and pooled[j][0] == pooled[i][0]:
            j += 1
        avg_rank = (i + 1 + j) / 2  # ranks i+1..j share their mean
        rank_sum += avg_rank * sum(label for _, label in pooled[i:j])
        i = j
    n_pos, n_neg = len(positive), len(negative)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def roc_curve(positive: Sequence[float], negative: Sequence[float]) -> tuple[list[float], list[float]]:
    """(false-positive rates, true-positive rates) as the threshold sweeps down through the scores."""
    thresholds = sorted(set(positive) | set(negative), reverse=True)
    fpr, tpr = [0.0], [0.0]
    for th in thresholds:
        tpr.append(sum(s >= th for s in positive) / len(positive))
        fpr.append(sum(s >= th for s in negative) / len(negative))
    return fpr, tpr
