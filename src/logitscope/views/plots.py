"""Matplotlib pictures of every result: ``plot(result, ax=None, save_to=None) -> Figure``.

Figures are built with the object API (``matplotlib.figure.Figure``), never pyplot's global
state, so plotting is safe in threads, servers and headless runs, and nothing is written
unless ``save_to`` is given. A picture with several panels (the sampler chain, ROC and
pair accuracy, ...) takes ``ax`` as one Axes per panel; a single Axes gets the main panel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import CapabilityError, InputError
from ..core.output import write_file
from . import lookup
from .colours import BLUE, GREEN, GREY, ORANGE, RED, entropy_colour, prob_colour
from .text import entropy_label, show_token, top_k_note

Panel = Callable[[object, Axes], None]
DPI = 110
SMALL = 8  # font size of tick labels and legends


@dataclass
class Picture:
    """How to draw one result: its panels, the figure size, and how panels are laid out."""

    panels: list[Panel]
    size: tuple[float, float]
    grid: dict = field(default_factory=dict)  # extra Figure.subplots arguments
    rows: bool = False  # panels stacked vertically instead of side by side


def plot(result, ax: Axes | Sequence[Axes] | None = None, save_to: str | Path | None = None, **options) -> Figure:
    """Draw ``result`` into ``ax`` (or a new Figure) and return the Figure; write it to
    ``save_to`` (PNG, SVG, PDF by suffix) when given."""
    make = lookup(PICTURES, result)
    if make is None:
        raise CapabilityError(f"{type(result).__name__} has no plot", hint="use to_dataframe() or the table view")
    return _render(make(result, **options), result, ax, save_to)


def _render(picture: Picture, data, ax, save_to) -> Figure:
    """Draw every panel of ``picture`` with ``data`` into ``ax`` (or a new Figure); save when asked."""
    fig, axes = _axes(ax, picture)
    for panel, target in zip(picture.panels, axes):
        panel(data, target)
    if ax is None:
        fig.tight_layout()
    if save_to is not None:  # whole or not at all, the format from the name (output.py)
        write_file(save_to, lambda tmp: fig.savefig(tmp, dpi=DPI, format=Path(save_to).suffix[1:].lower() or None))
    return fig


def _axes(ax, picture: Picture) -> tuple[Figure, list[Axes]]:
    if ax is None:
        fig = Figure(figsize=picture.size)
        n = len(picture.panels)
        grid = fig.subplots(n, 1, squeeze=False, **picture.grid) if picture.rows else \
            fig.subplots(1, n, squeeze=False, **picture.grid)
        return fig, list(grid.flat)
    axes = [ax] if isinstance(ax, Axes) else list(ax)
    return axes[0].figure, axes


def _token_labels(ax: Axes, labels: list[str]) -> None:
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=SMALL)


def _width(n: int) -> float:
    return min(max(6.0, 0.38 * n + 2), 24.0)


# -- next token and scoring ---------------------------------------------------------------------
def _candidate_bars(ax: Axes, cands, title: str) -> None:
    shown = list(cands)[::-1]  # likeliest on top
    ax.barh([repr(c.text) for c in shown], [c.prob for c in shown], color=[prob_colour(c.prob) for c in shown])
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=SMALL)


def next_token_picture(result, temperatures: Sequence[float] = (), mass: bool = False) -> Picture:
    """The top candidates as bars; ``temperatures`` adds a panel of the top candidates'
    probabilities re-softmaxed at each τ, ``mass`` one of the cumulative probability of the
    top-k tokens (both need the full distribution, ``result.logprobs``)."""
    def bars(r, ax):
        _candidate_bars(ax, r.top, f"next token after {r.prompt!r} ({entropy_label(r)} {r.entropy:.2f} nats)")

    def sweep(r, ax):
        _sweep_lines(ax, _full_logprobs(r), temperatures, [c.token_id for c in r.top], [repr(c.text) for c in r.top])
        ax.set_title("the same distribution at other temperatures (softmax(log p / τ))", fontsize=9)

    def cumulative(r, ax):
        _mass_curve(ax, _full_logprobs(r), f"where the mass sits after {r.prompt!r}")
    panels = [bars] + ([sweep] if temperatures else []) + ([cumulative] if mass else [])
    return Picture(panels, (6 * len(panels), max(3.5, 1 + 0.35 * len(result.top))))


def _full_logprobs(result):
    if result.logprobs is None:
        raise CapabilityError("this result has no full-vocabulary distribution",
                              hint="use a local model (a remote top-k backend returns only the top tokens)")
    return result.logprobs


# -- distributions of raw logits: the softmax and temperature, for teaching --------------------------
def _as_logits(logits):
    import torch

    return torch.as_tensor(logits, dtype=torch.float64).reshape(-1)  # (V,)


def _labels(labels, n: int) -> list[str]:
    return list(labels) if labels is not None else [str(i) for i in range(n)]


def softmax_steps(logits, labels: Sequence[str] | None = None, ax: Axes | Sequence[Axes] | None = None,
                  save_to: str | Path | None = None) -> Figure:
    """The softmax walked through as three bar charts: the logits, exp(logit) with its sum,
    and exp / sum, the probabilities. ``logits``: a 1-D sequence or tensor. Logits too large
    for exp are shifted by their maximum first (the stable softmax; the result is the same)."""
    z = _as_logits(logits)  # (V,)
    shifted = bool(z.exp().isinf().any())
    e = (z - z.max()).exp() if shifted else z.exp()  # (V,)
    names = _labels(labels, len(z))

    def step(values, title, colours, r, ax):
        ax.bar(names, values.tolist(), color=colours)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=SMALL)
    probs = (e / e.sum()).tolist()
    return _render(Picture([partial(step, z, "logits (any real number)", GREY),
                            partial(step, e, f"{'exp(logit - max)' if shifted else 'exp(logit)'}, sum {float(e.sum()):.4g}",
                                    BLUE),
                            partial(step, e / e.sum(), "exp / sum: probabilities, sum 1", [prob_colour(p) for p in probs])],
                           (10, 3)), None, ax, save_to)


def temperature_sweep(logits, temperatures: Sequence[float], labels: Sequence[str] | None = None,
                      ax: Axes | None = None, save_to: str | Path | None = None) -> Figure:
    """softmax(logits / τ) for each τ: one line per temperature over the tokens, with the
    distribution's entropy (nats) in the legend. ``logits``: a 1-D sequence or tensor."""
    z = _as_logits(logits)

    def draw(_, ax):
        _sweep_lines(ax, z, temperatures, list(range(len(z))), _labels(labels, len(z)))
        ax.set_title("temperature reshapes the distribution", fontsize=9)
    return _render(Picture([draw], (7, 4)), None, ax, save_to)


def _sweep_lines(ax: Axes, logits, temperatures: Sequence[float], ids: list[int], labels: list[str]) -> None:
    from ..core import mathops

    for tau in temperatures:
        lp = mathops.log_softmax(logits.double(), temperature=tau)  # (V,)
        ax.plot(range(len(ids)), lp[ids].exp().tolist(), marker="o", label=f"τ={tau:g}, H={float(mathops.entropy(lp)):.2f} nats")
    ax.set(ylabel="probability", ylim=(0, 1))
    ax.set_xticks(range(len(ids)))
    ax.set_xticklabels(labels, rotation=60 if max(map(len, labels)) > 3 else 0, fontsize=SMALL)
    ax.legend(fontsize=SMALL)


def _mass_curve(ax: Axes, logprobs, title: str) -> None:
    cumulative = logprobs.double().exp().sort(descending=True).values.cumsum(0)  # (V,): mass of the top k
    ax.plot(range(1, len(cumulative) + 1), cumulative.tolist(), color=BLUE)
    for mass in (0.5, 0.9, 0.99):
        k = int((cumulative < mass).sum()) + 1
        ax.plot([k], [float(cumulative[k - 1])], "o", color=ORANGE)
        ax.annotate(f"{mass:.0%}: top {k:,}", (k, float(cumulative[k - 1])), fontsize=SMALL,
                    xytext=(4, -10), textcoords="offset points")
    ax.set(xscale="log", ylim=(0, 1.02), xlabel="top-k tokens (log scale)", ylabel="cumulative probability")
    ax.set_title(title, fontsize=9)


def _token_probs(r, ax: Axes, threshold: float | None = None, flagged=()) -> None:
    toks = r.scored_tokens
    colours = [RED if t.position in flagged else prob_colour(t.prob) for t in toks]
    ax.bar(range(len(toks)), [t.prob for t in toks], color=colours)
    if threshold:
        ax.axhline(threshold, color="k", ls=":", lw=1, label=f"p = {threshold:g}")
        ax.legend(fontsize=SMALL)
    ax.set(ylim=(0, 1), ylabel="p(token)", title=f"{r.num_scored} scored tokens, perplexity {r.perplexity:.3g}")
    _token_labels(ax, [show_token(t.text) for t in toks])


def _token_surprisal(r, ax: Axes) -> None:
    toks = r.scored_tokens
    ax.plot(range(len(toks)), [t.surprisal_bits for t in toks], "o-", color=BLUE, label="surprisal (bits)")
    ax.set_ylabel("bits")
    _token_labels(ax, [show_token(t.text) for t in toks])


def score_picture(result) -> Picture:
    return Picture([_token_probs, _token_surprisal], (_width(result.num_scored), 6), rows=True)


def tokenize_picture(result) -> Picture:
    def bars(r, ax):
        sizes = [len(r.text[t.start:t.end].encode("utf-8")) for t in r.tokens]
        ax.bar(range(len(sizes)), sizes, color=BLUE)
        ax.set(ylabel="UTF-8 bytes", title=f"{len(r)} tokens, {len(r.text)} characters")
        _token_labels(ax, [show_token(t.text) for t in r.tokens])
    return Picture([bars], (_width(len(result)), 3.5))


# -- perplexity -------------------------------------------------------------------------------------
def _perplexity_bars(ax: Axes, labels: list[str], values: list[float | None], title: str) -> None:
    ax.barh(labels[::-1], [v or 0.0 for v in values[::-1]], color=BLUE)
    ax.set(xlabel="perplexity (token-weighted)", title=title)
    ax.tick_params(labelsize=SMALL)


def perplexity_picture(result) -> Picture:
    def bars(r, ax):
        ok = r.scored_sources
        _perplexity_bars(ax, [s.source for s in ok], [s.counts.perplexity for s in ok],
                         f"{r.model} · {r.convention}, window {r.window}")
        if r.total is not None:
            ax.axvline(r.total.perplexity, color="k", ls=":", lw=1, label=f"total {r.total.perplexity:.3g}")
            ax.legend(fontsize=SMALL)
    return Picture([bars], (7, 1.5 + 0.4 * len(result.sources)))


def comparison_picture(result) -> Picture:
    def bars(r, ax):
        runs = [x for x in r.results if x.total is not None]
        _perplexity_bars(ax, [f"{x.model} · {x.convention}" for x in runs], [x.total.perplexity for x in runs],
                         "corpus perplexity (token-weighted, all files)")
    return Picture([bars], (8, 1.5 + 0.4 * len(result.results)))


# -- sampling and generation --------------------------------------------------------------------------
def chain_picture(result, top: int = 10) -> Picture:
    def stage(i, r, ax):
        s = r.stages[i]
        _candidate_bars(ax, s.top[:top], f"{s.stage}\n{s.survivors} tokens, H={s.entropy:.2f} nats")
    return Picture([partial(stage, i) for i in range(len(result.stages))], (3.2 * len(result.stages), 4))


def sample_picture(result) -> Picture:
    def bars(r, ax):
        x = range(len(r.rows))
        ax.bar([i - 0.2 for i in x], [row.prob for row in r.rows], width=0.4, color=BLUE, label="processed p")
        ax.bar([i + 0.2 for i in x], [row.count / r.n for row in r.rows], width=0.4, color=ORANGE,
               label=f"drawn share of {r.n}")
        ax.set(ylabel="probability", title=r.test_summary)
        ax.legend(fontsize=SMALL)
        _token_labels(ax, [show_token(row.text) for row in r.rows])
    return Picture([bars], (_width(len(result.rows)), 4))


def generation_picture(result, running: bool = False) -> Picture:
    """Each step's probability (raw and processed) and entropy; ``running`` adds the
    probability of the whole new text so far (the running product, on a log axis)."""
    def probs(r, ax):
        steps = range(len(r.steps))
        ax.plot(steps, [s.prob for s in r.steps], "o-", color=BLUE, label="p raw")
        ax.plot(steps, [s.processed_prob for s in r.steps], "s:", color=ORANGE, label="p processed")
        ax.set(ylim=(0, 1.05), ylabel="p(chosen token)",
               title=f"generation trace, stopped: {r.stop_reason}{top_k_note(r)}")
        if running:
            so_far = np.exp(np.cumsum([s.logprob for s in r.steps]))  # (steps,)
            ax.plot(steps, so_far, ".-", color=RED, label="p(text so far)")
            ax.set(yscale="log", ylim=(max(float(so_far.min()), 1e-300) / 2, 1.5))
        ax.legend(fontsize=SMALL)
        _token_labels(ax, [show_token(s.text) for s in r.steps])

    def entropy(r, ax):
        steps = range(len(r.steps))
        ax.bar(steps, [s.entropy for s in r.steps], color=[entropy_colour(s.entropy) for s in r.steps])
        ax.set_ylabel(f"{entropy_label(r)} (nats)")
        _token_labels(ax, [show_token(s.text) for s in r.steps])
    return Picture([probs, entropy], (_width(len(result.steps)), 6), rows=True)


def beam_picture(result) -> Picture:
    def bars(r, ax):
        rows = [(f"beam {i + 1}: {b.text!r}", b) for i, b in enumerate(r.beams)] + [(f"greedy: {r.greedy.text!r}",
                                                                                     r.greedy)]
        labels = [label if len(label) <= 40 else label[:39] + "…" for label, _ in rows]
        ax.barh(labels[::-1], [b.normalized for _, b in rows][::-1],
                color=[GREY if label.startswith("greedy") else BLUE for label, _ in rows][::-1])
        ax.set(xlabel=f"log-prob / length^{r.alpha:g}", title=f"beam search after {r.prompt!r}")
        ax.tick_params(labelsize=SMALL)
    return Picture([bars], (8, 1.5 + 0.45 * (len(result.beams) + 1)))


@dataclass(frozen=True)
class TreeLayout:
    """Data units of a tree picture: a depth, a node's label, the room left of the first depth and
    right of the last, below the last leaf and above the first; the figure's width before the depths,
    and its extra height (for a title)."""

    step: float
    label: float
    left: float
    right: float
    below: float
    above: float
    inches: float
    title: float


TREE_LAYOUTS = {"prob": TreeLayout(1.0, 0.62, -2.5, 0.8, 0.0, -1.0, 3.0, 0.0),  # labels "␣in  0.19"
                "path": TreeLayout(2.0, 1.55, -1.6, 1.75, -0.5, -0.8, 3.5, 0.3)}  # "␣in  p=0.19  path=0.0123"


def tree_picture(result, by: str = "prob") -> Picture:
    """The tree of continuations, likeliest child on top. ``by="prob"``: each branch as wide as its
    conditional p(token | path so far); ``by="path"``: as wide and as dark as its *path* probability
    (the product of the p from the prompt down to it, relative to the likeliest node), each node
    labelled with both."""
    if by not in TREE_LAYOUTS:
        raise InputError(f"unknown tree width {by!r}", hint=f"by must be one of {', '.join(TREE_LAYOUTS)}")
    layout = TREE_LAYOUTS[by]
    places: dict[int, tuple[float, float]] = {}
    leaves = max(_layout(result.children, places, [0], layout.step), 1)
    top = max((n.cum_prob for _, n in result.nodes()), default=1.0) or 1.0

    def draw(r, ax):
        root_y = _mean_y(r.children, places)
        ax.text(0, root_y, repr(r.prompt) + top_k_note(r), ha="right", va="center", fontsize=SMALL,
                bbox={"boxstyle": "round", "fc": "#eeeeee"})
        _draw_nodes(ax, r.children, (0, root_y), places, by, top, layout.label)
        ax.set_xlim(layout.left, layout.step * r.depth + layout.right)
        ax.set_ylim(leaves + layout.below, layout.above)  # first (likeliest) child on top
        ax.axis("off")
        if by == "path":
            ax.set_title("line width and colour: path probability (the product of p along the path)", fontsize=SMALL + 1)
    return Picture([draw], (layout.inches + 2.6 * result.depth, 1 + 0.38 * leaves + layout.title))


def _layout(nodes, places: dict, next_leaf: list[int], step: float) -> int:
    """Leaves get consecutive rows; a parent sits at the mean of its children."""
    for node in nodes:
        if node.children:
            _layout(node.children, places, next_leaf, step)
            y = _mean_y(node.children, places)
        else:
            y = float(next_leaf[0])
            next_leaf[0] += 1
        places[id(node)] = (step * node.depth, y)
    return next_leaf[0]


def _mean_y(nodes, places: dict) -> float:
    return sum(places[id(n)][1] for n in nodes) / len(nodes) if nodes else 0.0


def _draw_nodes(ax: Axes, nodes, parent_xy: tuple[float, float], places: dict, by: str, top: float,
                label: float) -> None:
    for node in nodes:
        x, y = places[id(node)]
        if by == "prob":
            ax.plot([parent_xy[0], x - 0.03], [parent_xy[1], y], color=BLUE, lw=0.5 + 4 * node.prob, alpha=0.7)
            text, edge = f"{show_token(node.text)}  {node.prob:.2f}", BLUE
        else:
            share = node.cum_prob / top  # 1 for the likeliest node
            ax.plot([parent_xy[0] + 0.05, x - 0.05], [parent_xy[1], y], color=colormaps["viridis"](0.85 - 0.75 * share),
                    lw=0.6 + 6 * share, solid_capstyle="round")
            text, edge = f"{show_token(node.text)}  p={node.prob:.2g}  path={node.cum_prob:.2g}", "#bbbbbb"
        ax.text(x, y, text, va="center", fontsize=SMALL, bbox={"boxstyle": "round", "fc": "white", "ec": edge})
        _draw_nodes(ax, node.children, (x + label, y), places, by, top, label)


# -- confidence --------------------------------------------------------------------------------------
def rank_picture(result, by: str = "sum") -> Picture:
    def bars(r, ax):
        order = r.order(by)[::-1]  # best on top
        scores = [r.candidates[i].score(by) for i in order]
        ax.barh([repr(r.candidates[i].candidate) for i in order], [s if s is not None else 0.0 for s in scores],
                color=[BLUE if s is not None else GREY for s in scores])
        ax.set(xlabel=f"score ({by}, nats)", title=f"candidates after {r.prompt!r}")
        ax.tick_params(labelsize=SMALL)
    return Picture([bars], (7, 1.5 + 0.4 * len(result.candidates)))


def lift_picture(result) -> Picture:
    def bars(r, ax):
        labels = [c.context if len(c.context) <= 40 else c.context[:39] + "…" for c in r.contexts]
        ax.barh([repr(x) for x in labels][::-1], [c.lift for c in r.contexts][::-1],
                color=[GREEN if c.supported else RED for c in r.contexts][::-1])
        ax.axvline(r.min_lift, color="k", ls=":", lw=1, label=f"min lift {r.min_lift:g} nats")
        ax.axvline(0, color=GREY, lw=0.8)
        ax.set(xlabel="lift = log p(answer | context, question) - log p(answer | question), nats",
               title=f"answer {r.answer!r}")
        ax.legend(fontsize=SMALL)
        ax.tick_params(labelsize=SMALL)
    return Picture([bars], (8, 1.5 + 0.45 * len(result.contexts)))


def uncertainty_picture(result) -> Picture:
    flagged = set(result.flagged)

    def probs(r, ax):
        _token_probs(r.scored, ax, r.max_prob_below, flagged)

    def entropy(r, ax):
        toks = r.scored.scored_tokens
        ax.bar(range(len(toks)), [t.entropy for t in toks],
               color=[RED if t.position in flagged else entropy_colour(t.entropy) for t in toks])
        if r.entropy_above is not None and r.entropy_above != float("inf"):
            ax.axhline(r.entropy_above, color="k", ls=":", lw=1, label=f"{r.entropy_above:g} nats")
            ax.legend(fontsize=SMALL)
        ax.set_ylabel("entropy (nats)")
        _token_labels(ax, [show_token(t.text) for t in toks])
    return Picture([probs, entropy], (_width(result.scored.num_scored), 6), rows=True)


def truth_picture(result) -> Picture:
    def roc(r, ax):
        from ..core.calibration_math import roc_curve

        for rep in r.reports:
            fpr, tpr = roc_curve(r.true_scores[rep.measure], r.false_scores[rep.measure])
            ax.plot(fpr, tpr, label=f"{rep.measure} (AUROC {rep.auroc:.2f})")
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        ax.set(xlabel="false-statement rate above threshold", ylabel="true-statement rate above threshold",
               title=f"ROC, {r.num_pairs} pairs")
        ax.legend(fontsize=SMALL)

    def accuracy(r, ax):
        ax.barh([rep.measure for rep in r.reports], [rep.pair_accuracy for rep in r.reports], color=GREEN)
        ax.axvline(0.5, color="k", ls=":", lw=1)
        ax.set(xlim=(0, 1), xlabel="pair accuracy (true member scores higher)", title="pair accuracy")
    return Picture([roc, accuracy], (11, 4.5))


# -- calibration and quantization ------------------------------------------------------------------------
def reliability_diagram(bins, ax: Axes | None = None, save_to: str | Path | None = None,
                        title: str = "reliability diagram") -> Figure:
    """Accuracy per confidence bin (bars), each bin's mean confidence (dots) and the diagonal
    of perfect calibration; ``bins``: calibration_math.reliability_bins(...)'s CalibrationBins."""
    def draw(_, ax):
        _reliability(ax, list(bins))
        ax.set(xlabel="confidence", xlim=(0, 1), title=title)
        ax.legend(loc="upper left", fontsize=SMALL)
    return _render(Picture([draw], (4.5, 4.5)), None, ax, save_to)


def _reliability(ax: Axes, bins) -> None:
    full = [b for b in bins if b.count]
    width = bins[0].high - bins[0].low
    ax.bar([(b.low + b.high) / 2 for b in bins], [0 if b.count == 0 else b.accuracy for b in bins], width=width * 0.9,
           edgecolor="black", color=BLUE, label="accuracy")
    ax.plot([(b.low + b.high) / 2 for b in full], [b.confidence for b in full], "o", color=RED, label="mean confidence")
    ax.plot([0, 1], [0, 1], "--", color=GREY, label="perfect calibration")
    ax.set(ylabel="accuracy", ylim=(0, 1))


def calibration_picture(report) -> Picture:
    def centres(bins):
        return [(b.low + b.high) / 2 for b in bins], bins[0].high - bins[0].low

    def reliability(r, ax):
        _reliability(ax, r.metrics.bins)
        if r.temperature is not None:
            after = [b for b in r.temperature.after.bins if b.count]
            ax.plot([b.confidence for b in after], [b.accuracy for b in after], "o-", color=ORANGE,
                    label=f"held-out, T={r.temperature.temperature:.2f}")
        ax.set(title=f"{r.normalize}: acc {r.metrics.accuracy:.2f}, ECE {r.metrics.ece:.3f}")
        ax.legend(loc="upper left", fontsize=SMALL)

    def histogram(r, ax):
        mids, width = centres(r.metrics.bins)
        ax.bar(mids, [b.count for b in r.metrics.bins], width=width * 0.9, color=GREY)
        ax.set(xlabel="confidence (softmax over choices)", ylabel="count", xlim=(0, 1))
    return Picture([reliability, histogram], (5.5, 6.5), {"gridspec_kw": {"height_ratios": [3, 1]}, "sharex": True},
                   rows=True)


def quantization_picture(report) -> Picture:
    def simulated(r):
        return sorted((v for v in r.variants if v.bits is not None), key=lambda v: v.bits)

    def finite(variants, value):  # a broken variant: a token with probability 0 (inf) or overflow (NaN)
        return [v for v in variants if math.isfinite(value(v))]

    def left_out(r) -> str:
        n = sum(not math.isfinite(v.perplexity) for v in r.variants)
        return f" ({n} inf/NaN left out)" if n else ""

    def perplexity(r, ax):
        sim = finite(simulated(r), lambda v: v.perplexity)
        real = finite((v for v in r.variants if v.bits is None), lambda v: v.perplexity)
        # a broken model reaches 10^300: past ~10^100 matplotlib's log axis cannot place ticks, so plot log10
        huge = max([v.perplexity for v in sim + real], default=0.0) > 1e100
        y = math.log10 if huge else float
        ax.plot([v.bits for v in sim], [y(v.perplexity) for v in sim], "o-", label="simulated")
        ax.axhline(y(r.base_perplexity), color=GREY, linestyle="--", label="float32")
        for v in real:
            ax.plot([8], [y(v.perplexity)], "*", color=RED, markersize=12, label=v.label)
        rounded = "every parameter" if r.which == "all" else "weight matrices"
        ax.set(xlabel="bits per weight", ylabel="log10 perplexity" if huge else "perplexity",
               yscale="linear" if huge else "log", title=f"{r.scheme} quantization, {rounded}{left_out(r)}")
        ax.legend(fontsize=SMALL)

    def kl(r, ax):
        sim = finite(simulated(r), lambda v: v.kl_p99)
        ax.plot([v.bits for v in sim], [max(v.kl_mean, 1e-12) for v in sim], "o-", label="mean KL")
        ax.plot([v.bits for v in sim], [max(v.kl_p99, 1e-12) for v in sim], "s:", label="99th pct KL")
        for v in finite((v for v in r.variants if v.bits is None), lambda v: v.kl_mean):
            ax.plot([8], [max(v.kl_mean, 1e-12)], "*", color=RED, markersize=12, label=v.label)
        ax.set(xlabel="bits per weight", ylabel="KL(base || quantized), nats", yscale="log",
               title=f"{r.num_tokens} tokens")
        ax.legend(fontsize=SMALL)
    return Picture([perplexity, kl], (10, 4))


PICTURES = {
    "NextTokenResult": next_token_picture,
    "ScoreResult": score_picture,
    "TokenizeResult": tokenize_picture,
    "PerplexityResult": perplexity_picture,
    "PerplexityComparison": comparison_picture,
    "ChainResult": chain_picture,
    "SampleResult": sample_picture,
    "GenerationResult": generation_picture,
    "BeamResult": beam_picture,
    "TreeResult": tree_picture,
    "UncertaintyResult": uncertainty_picture,
    "TruthResult": truth_picture,
    "RankResult": rank_picture,
    "LiftResult": lift_picture,
    "CalibrationReport": calibration_picture,
    "QuantizationReport": quantization_picture,
}
