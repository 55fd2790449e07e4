"""Terminal views (rich): one renderable per result type, and the one token heatmap.

``render(result, **options)`` returns the rich renderable for any result; a result's
``__rich__`` calls it with the default options, so ``Console().print(result)`` works.
Tables come from ``views.tables`` (the same rows the HTML view shows).

The heatmap colours the ORIGINAL text by character offsets (``text.display_pieces``):
spaces a tokenizer drops stay, a character split over byte-level tokens is coloured
whole, text no token covers is dim.
"""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from . import lookup, tables, text
from .colours import (COLOR_MODES, DEFAULT_PALETTE, RANK_LIMITS, UNSCORED_STYLE, check_mode, kl_colour, legend_swatches,
                      on, palette, token_colour)


def render(result, **options):
    """The rich renderable of ``result`` (a Pretty repr for types without a view), with the line saying
    which model, engine and dtype computed it when the result knows."""
    view = lookup(VIEWS, result)
    if view is None:
        from rich.pretty import Pretty

        return Pretty(result)
    shown, producer = view(result, **options), text.producer_line(result)
    return Group(shown, Text(producer, style="dim")) if producer else shown


def to_rich(spec: tables.TableSpec) -> Table:
    """A rich Table from a renderer-neutral TableSpec."""
    extra = {"box": box.SIMPLE_HEAD, "pad_edge": False} if spec.compact else {}
    table = Table(title=spec.title, title_justify="left", caption=spec.caption, caption_justify="left", **extra)
    for c in spec.columns:
        sizes = {k: v for k, v in (("min_width", c.min_width), ("max_width", c.max_width)) if v is not None}
        table.add_column(c.name, justify=c.justify, no_wrap=c.no_wrap, overflow=c.overflow or "ellipsis", **sizes)
    for cells, style in zip(spec.rows, spec.row_styles):
        table.add_row(*(Text(c.text, style=c.style or "") if isinstance(c, tables.Styled) else c for c in cells),
                      style=style)
    return table


# -- the heatmap -----------------------------------------------------------------------------
def heatmap(result, color_by: str = "prob", palette_name: str = DEFAULT_PALETTE) -> Text:
    """The scored string with every token's background coloured by ``color_by``."""
    check_mode(color_by)
    palette(palette_name)
    out = Text()
    for piece, tok in text.display_pieces(result):
        out.append(piece, style=UNSCORED_STYLE if tok is None else on(token_colour(tok, color_by, palette_name)))
    return out


def legend(color_by: str = "prob", palette_name: str = DEFAULT_PALETTE) -> Text:
    """What the heatmap colours mean."""
    out = Text(f"colour by {check_mode(color_by)}: ")
    for label, colour in legend_swatches(color_by, palette_name):
        out.append(f" {label} ", style=on(colour))
        out.append(" ")
    out.append(" unscored ", style=UNSCORED_STYLE)
    return out


def rank_buckets(result, palette_name: str = DEFAULT_PALETTE) -> Text:
    """GLTR: how many scored tokens fell in each rank bucket."""
    out = Text("rank buckets: ")
    for (_, label), colour, n in zip(RANK_LIMITS, palette(palette_name).rank, text.rank_histogram(result)):
        out.append(f" {label}: {n} ", style=on(colour))
        out.append(" ")
    return out


def score_view(result, table: bool = False, color_by: str = "prob", palette_name: str = DEFAULT_PALETTE) -> Group:
    """[per-token table,] heatmap, legend, GLTR rank buckets and totals."""
    parts = [heatmap(result, color_by, palette_name), Text(""), legend(color_by, palette_name),
             rank_buckets(result, palette_name),
             Text(text.totals_line(result))]
    return Group(*([to_rich(tables.score_table(result))] if table else []), *parts)


def kl_heatmap(texts, kls) -> Text:
    out = Text()
    for piece, kl in zip(texts, kls):
        out.append(piece, style=f"white on {kl_colour(kl)}")
    return out


# -- one view per result type -----------------------------------------------------------------------
def next_token_view(result) -> Table:
    return to_rich(tables.next_token_table(result))


def tokenize_view(result) -> Text:
    return Text("\n".join(text.tokenize_lines(result)))


def perplexity_view(result) -> Table:
    return to_rich(tables.per_source_table(result))


def comparison_view(result) -> Group:
    """Per-source table for one run; side by side for several, with what each convention means."""
    if len(result.results) == 1:
        return Group(perplexity_view(result.results[0]))
    notes = [Text(f"  {conv:<9} {why}") for conv, why in result.convention_notes()]
    return Group(to_rich(tables.side_by_side_table(result.results)), *notes)


def generation_view(result, show_text: bool = True, trace: bool = True) -> Group:
    """The new text (or an empty line after text already streamed), the stop line, the trace."""
    parts = [Text(result.text if show_text else ""), Text(text.generation_line(result))]
    return Group(*parts, *([to_rich(tables.trace_table(result))] if trace else []))


def tree_view(result) -> Text:
    return Text(text.tree_text(result))


def uncertainty_view(result) -> Group:
    return Group(heatmap(result.scored, "prob"), Text(text.uncertainty_line(result)),
                 to_rich(tables.uncertain_spans_table(result)))


def rank_view(result, by: str = "sum", tokens: bool = False) -> Table:
    return to_rich(tables.rank_table(result, by, tokens))


def calibration_view(report) -> Group:
    lines = text.calibration_lines(report)
    parts = [Text(lines[0]), to_rich(tables.reliability_table(report)), *(Text(line) for line in lines[1:])]
    if report.problems:  # each line is listed on stderr by the CLI; the view only counts them
        parts.append(Text(f"skipped {len(report.problems)} malformed line(s) (listed on stderr)", style="yellow"))
    return Group(*parts)


def quantization_view(report, worst: int = 8) -> Group:
    parts = [Text(text.quantization_line(report)), to_rich(tables.quantization_table(report))]
    shown = report.focus_variant
    if shown is not None:
        parts += [Text(f"\nper-token KL, {shown.label} (green <= 0.001 nats ... red >= 1 nat):"),
                  kl_heatmap(report.token_texts, shown.token_kl),
                  to_rich(tables.worst_tokens_table(report, shown, worst))]
    return Group(*parts)


def _table(make):
    return lambda result: to_rich(make(result))


def engine_comparison_view(result, worst: int = 8) -> Group:
    return Group(to_rich(tables.comparison_table(result)), to_rich(tables.comparison_worst_table(result, worst)))


VIEWS = {
    "ModelInfo": _table(tables.info_table),
    "EngineComparison": engine_comparison_view,
    "NextTokenResult": next_token_view,
    "ScoreResult": score_view,
    "TokenizeResult": tokenize_view,
    "PerplexityResult": perplexity_view,
    "PerplexityComparison": comparison_view,
    "ChainResult": _table(tables.chain_table),
    "SampleResult": _table(tables.sample_table),
    "GenerationResult": generation_view,
    "BeamResult": _table(tables.beam_table),
    "TreeResult": tree_view,
    "UncertaintyResult": uncertainty_view,
    "TruthResult": _table(tables.truth_table),
    "RankResult": rank_view,
    "LiftResult": _table(tables.lift_table),
    "CalibrationReport": calibration_view,
    "QuantizationReport": quantization_view,
}

__all__ = ["render", "to_rich", "heatmap", "legend", "score_view", "COLOR_MODES", "VIEWS"]
