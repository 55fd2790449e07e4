"""Plain-text pieces every view shares: number formats, visible whitespace, summary lines,
the tree as text, and the scored string cut into heatmap pieces by character offsets.

Pure presentation over result objects: nothing here computes a probability, and nothing
imports rich or matplotlib.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .colours import RANK_LIMITS, rank_bucket

if TYPE_CHECKING:
    from ..results import ScoreResult, TokenScore

PROB_BINS = 10


# -- formats ------------------------------------------------------------------------------
def producer_line(result) -> str | None:
    """"computed by MODEL · engine ENGINE · DTYPE" when the result knows what produced it."""
    p = getattr(result, "produced_by", None)
    return f"computed by {p['model']} · engine {p['engine']} · {p['dtype']}" if p else None


def fmt(value, digits: int = 4, missing: str = "–") -> str:
    """A number with ``digits`` decimals; ``missing`` for None or NaN, ints as they are."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}f}"


def fmt_p(p: float) -> str:
    """A probability: 4 decimals, or scientific notation below 0.001."""
    return f"{p:.4f}" if p >= 1e-3 else f"{p:.2e}"


def show_token(text: str) -> str:
    """Make whitespace visible in a token: space -> '␣', newline -> '↵', tab -> '→'."""
    return text.replace(" ", "␣").replace("\n", "↵").replace("\t", "→")


# -- top-k labels ---------------------------------------------------------------------------
def entropy_label(result) -> str:
    """"entropy ≥" for a result computed from a top-k-only backend (the entropy is a lower bound)."""
    return "entropy ≥" if getattr(result, "top_k_only", None) else "entropy"


def top_k_note(result) -> str:
    """" · from the top k log-probs" for a top-k result, else ""."""
    k = getattr(result, "top_k_only", None)
    return f" · from the top {k} log-probs" if k else ""


# -- summary lines --------------------------------------------------------------------------
def totals_line(result: ScoreResult) -> str:
    return (f"scored {result.num_scored} tokens · total log-prob {result.total_logprob:.4f} · "
            f"mean {result.mean_logprob:.4f} · perplexity {result.perplexity:.3f} · "
            f"bits/byte {result.bits_per_byte:.4f}"
            + ("" if result.first_token_scored else " · first token unscored (no prefix token)")
            + (" · a token merges across the context boundary" if result.boundary_merged else "")
            + (f"{top_k_note(result)} (entropies are lower bounds)" if result.top_k_only else ""))


def uncertainty_line(result) -> str:
    s = result.summary()
    return (f"{s['num_flagged']} of {s['num_scored']} tokens flagged · min p {fmt_p(s['min_token_prob'])}"
            f" · mean log p {s['mean_logprob']:.3f} · mean {entropy_label(result.scored)} {s['mean_entropy']:.3f} nats"
            f" · MSP {s['msp']:.3f} nats")


def generation_line(result) -> str:
    return (f"[{len(result.token_ids)} tokens, stopped: {result.stop_reason}, "
            f"total log-prob {result.total_logprob:.4f}{top_k_note(result)}]")


def calibration_lines(report) -> list[str]:
    m, t = report.metrics, report.temperature
    lines = [f"{report.source}: {m.n} questions, normalize={report.normalize}\n"
             f"accuracy {m.accuracy:.3f} · ECE {m.ece:.4f} (equal-mass {m.ece_equal_mass:.4f}) · "
             f"MCE {m.mce:.4f} · Brier {m.brier:.4f} (top-label {m.brier_top_label:.4f}) · NLL {m.nll:.4f}"]
    if t is not None:
        lines.append(f"temperature scaling: T = {t.temperature:.3f} fitted on {t.fit_size} questions "
                     f"(NLL {t.nll_fit_before:.4f} -> {t.nll_fit_after:.4f}); held-out {t.before.n}: "
                     f"ECE {t.before.ece:.4f} -> {t.after.ece:.4f}, NLL {t.before.nll:.4f} -> {t.after.nll:.4f}")
    return lines


def quantization_line(report) -> str:
    return (f"{report.model}: {report.num_tokens} scored tokens; base float32 {report.base_bytes:,} bytes, "
            f"perplexity {report.base_perplexity:.4f}; base kept as top-{report.top_k} + rest "
            f"({report.base_store_bytes:,} bytes)")


def perplexity_settings(r) -> str:
    stride = f" stride={r.stride}" if r.stride is not None else ""
    return f"{r.model} · {r.convention} window={r.window}{stride} · bos={r.bos} (prefix id {r.prefix_token_id})"


def tokenize_lines(result) -> list[str]:
    """The tokens joined with visible whitespace, one line per token, and the counts."""
    return ([" | ".join(show_token(t.text) for t in result.tokens)]
            + [f"{t.token_id:>7}  {t.text!r:<20} [{t.start}, {t.end})" for t in result.tokens]
            + [f"{len(result)} tokens, {len(result.text)} characters"])


# -- the tree -------------------------------------------------------------------------------
def tree_text(result) -> str:
    """An indented text tree with each node's probability and path probability."""
    lines = [repr(result.prompt) + (f"  ({top_k_note(result)[3:]})" if top_k_note(result) else "")]
    _tree_lines(result.children, "", lines)
    return "\n".join(lines)


def _tree_lines(nodes, indent: str, lines: list[str]) -> None:
    for i, node in enumerate(nodes):
        last = i == len(nodes) - 1
        lines.append(f"{indent}{'└── ' if last else '├── '}{show_token(node.text):<14} "
                     f"p={node.prob:.3f}  path={node.cum_prob:.4f}")
        _tree_lines(node.children, indent + ("    " if last else "│   "), lines)


# -- heatmap pieces and counts -----------------------------------------------------------------
def display_pieces(result: ScoreResult) -> list[tuple[str, TokenScore | None]]:
    """The scored string cut into (text, token) pieces by character offsets; the text
    between tokens (e.g. spaces a word-level tokenizer drops) comes as (text, None).
    A character split over several byte-level tokens is shown whole, once, with the first
    of them (never a '\ufffd' half)."""
    full = (result.context or "") + result.text
    pieces, shown_to = [], 0
    for tok in result.tokens:
        if tok.role == "prefix":
            continue
        if tok.start > shown_to:
            pieces.append((full[shown_to:tok.start], None))
        piece = full[max(tok.start, shown_to):tok.end]
        if piece:  # empty: an earlier token already showed this (split) character
            pieces.append((piece, tok))
        shown_to = max(shown_to, tok.end)
    if shown_to < len(full):
        pieces.append((full[shown_to:], None))
    return pieces


def rank_histogram(result: ScoreResult) -> list[int]:
    """Scored tokens per GLTR rank bucket."""
    counts = [0] * len(RANK_LIMITS)
    for t in result.scored_tokens:
        counts[rank_bucket(t.rank)] += 1
    return counts


def prob_histogram(result: ScoreResult, bins: int = PROB_BINS) -> list[int]:
    """Scored tokens per probability bin [0, 1/bins), ..., [1 - 1/bins, 1]."""
    counts = [0] * bins
    for t in result.scored_tokens:
        counts[min(int(t.prob * bins), bins - 1)] += 1
    return counts
