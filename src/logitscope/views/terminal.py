"""Terminal renderings (rich): next-token tables, token heatmaps, score tables.

Pure presentation: each function takes a result object and returns a rich
renderable; nothing here computes a probability.
"""

from __future__ import annotations

import math

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..results import NextTokenResult, ScoreResult, TokenScore

# probability buckets for colouring, high to low: (lower bound, background, label)
PROB_BUCKETS = [
    (0.5, "#1a7f37", "p >= 0.5"),
    (0.1, "#9a6700", "0.1 <= p < 0.5"),
    (0.01, "#bc4c00", "0.01 <= p < 0.1"),
    (0.0, "#cf222e", "p < 0.01"),
]
UNSCORED_STYLE = "dim"


def show_token(text: str) -> str:
    """Make whitespace visible in a token: space -> '␣', newline -> '↵'."""
    return text.replace(" ", "␣").replace("\n", "↵").replace("\t", "→")


def prob_style(prob: float | None) -> str:
    if prob is None:
        return UNSCORED_STYLE
    for low, colour, _ in PROB_BUCKETS:
        if prob >= low:
            return f"white on {colour}"
    return UNSCORED_STYLE


def next_token_table(result: NextTokenResult) -> Table:
    title = (f"next token after {result.prompt!r}  (entropy {result.entropy:.3f} nats = "
             f"{result.entropy_bits:.3f} bits, T={result.temperature:g})")
    table = Table(title=title, title_justify="left")
    for col, just in [("rank", "right"), ("id", "right"), ("token", "left"), ("logit", "right"),
                      ("log-prob", "right"), ("prob", "right"), ("", "left")]:
        table.add_column(col, justify=just)
    for c in result.top:
        bar = "█" * max(1, round(c.prob * 30)) if c.prob >= 1 / 60 else "▏"
        table.add_row(str(c.rank), str(c.token_id), repr(c.text), _fmt(c.logit), f"{c.logprob:.4f}",
                      f"{c.prob:.4f}", Text(bar, style="cyan"))
    return table


def heatmap(result: ScoreResult) -> Text:
    """The text with every token's background coloured by its probability."""
    out = Text()
    for tok in result.tokens:
        if tok.role == "prefix":
            continue
        out.append(tok.text, style=prob_style(tok.prob))
    return out


def legend() -> Text:
    out = Text("colour: ")
    for _, colour, label in PROB_BUCKETS:
        out.append(f" {label} ", style=f"white on {colour}")
        out.append(" ")
    out.append(" unscored ", style=UNSCORED_STYLE)
    return out


def totals_line(result: ScoreResult) -> Text:
    return Text(
        f"scored {result.num_scored} tokens · total log-prob {result.total_logprob:.4f} · "
        f"mean {result.mean_logprob:.4f} · perplexity {result.perplexity:.3f} · "
        f"bits/byte {result.bits_per_byte:.4f}"
        + ("" if result.first_token_scored else " · first token unscored (no prefix token)")
        + (" · a token merges across the context boundary" if result.boundary_merged else ""))


def score_table(result: ScoreResult) -> Table:
    table = Table(title="per-token scores", title_justify="left")
    for col in ("pos", "id", "token", "log-prob", "prob", "bits", "rank", "entropy"):
        table.add_column(col, justify="left" if col == "token" else "right", no_wrap=True,
                         min_width=max(len(col), 4))
    table.add_column("top alternatives", overflow="ellipsis", no_wrap=True, max_width=30)
    for tok in result.tokens:
        table.add_row(*_score_row(tok), style=None if tok.scored else UNSCORED_STYLE)
    return table


def _score_row(tok: TokenScore) -> list:
    alts = " ".join(f"{a.text!r} {a.prob:.2f}" for a in tok.alternatives[:3])
    return [str(tok.position), str(tok.token_id), Text(repr(tok.text), style=prob_style(tok.prob)),
            _fmt(tok.logprob), _fmt(tok.prob), _fmt(tok.surprisal_bits, 2), _fmt(tok.rank),
            _fmt(tok.entropy, 3), alts]


def score_view(result: ScoreResult, table: bool = False) -> Group:
    parts = [heatmap(result), Text(""), legend(), totals_line(result)]
    if table:
        parts.insert(0, score_table(result))
    return Group(*parts)


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}f}"
