"""HTML views: a fragment per result type (what ``_repr_html_`` shows in Jupyter) and the
self-contained heatmap page (``render_html`` / ``write_html``).

Fragments are plain HTML with one small inline <style> and no script (notebooks may strip
scripts): token numbers show on hover through ``title`` attributes. The page needs no
network: CSS and JS are inline, every token is a ``<span class="tok">`` carrying its
numbers in data attributes (``data-prob``, ``data-rank``, ``data-entropy``, ``data-alts``),
a tooltip shows them on hover, a selector switches the colouring, and two inline-SVG
histograms (rank buckets, probabilities) sit under the text.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from ..errors import InputError
from ..core.output import write_text
from . import lookup, tables, text
from .colours import (COLOR_MODES, DEFAULT_PALETTE, RANK_LIMITS, check_mode, kl_colour, legend_swatches, palette,
                      prob_colour, text_colour, token_colour)

_NAMED = {"cyan": "#1b7c83", "green": "#1a7f37", "red": "#cf222e", "yellow": "#9a6700"}


def render(result, **options) -> str | None:
    """The HTML fragment of ``result`` (None for types without one: Jupyter then shows repr)."""
    view = lookup(VIEWS, result)
    if view is None:
        return None
    producer = text.producer_line(result)
    note = f'<p class="note">{html.escape(producer)}</p>' if producer else ""
    return f'<div class="logitscope">{_FRAGMENT_CSS}{view(result, **options)}{note}</div>'


# -- building blocks ----------------------------------------------------------------------------
def css_style(style: str | None) -> str:
    """A rich style string ("#000 on #2da44e", "green", "bold", "dim") as inline CSS."""
    if not style:
        return ""
    out = []
    for word in style.replace(" on ", " on:").split():
        if word.startswith("on:"):
            out.append(f"background:{word[3:]}")
        elif word == "bold":
            out.append("font-weight:bold")
        elif word == "dim":
            out.append("opacity:.55")
        else:
            out.append(f"color:{_NAMED.get(word, word)}")
    return ";".join(out)


def to_html(spec: tables.TableSpec) -> str:
    """An HTML table from a renderer-neutral TableSpec."""
    head = "".join(f'<th style="text-align:{c.justify}">{html.escape(c.name)}</th>' for c in spec.columns)
    rows = []
    for cells, row_style in zip(spec.rows, spec.row_styles):
        tds = []
        for col, cell in zip(spec.columns, cells):
            body, style = (cell.text, cell.style) if isinstance(cell, tables.Styled) else (cell, None)
            css = ";".join(s for s in (f"text-align:{col.justify}", css_style(style)) if s)
            tds.append(f'<td style="{css}">{html.escape(body).replace(chr(10), "<br>")}</td>')
        rows.append(f'<tr style="{css_style(row_style)}">{"".join(tds)}</tr>')
    caption = f"<caption>{html.escape(spec.title)}</caption>" if spec.title else ""
    notes = f'<p class="note">{html.escape(spec.caption)}</p>' if spec.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{notes}"


def escape_text(piece: str) -> str:
    """``html.escape`` that also keeps a carriage return: the HTML parser turns a literal CR (or
    CR LF) into LF, so it is written as ``&#13;`` and the page's text equals the scored text."""
    return html.escape(piece, quote=True).replace("\r", "&#13;")


def legend_html(color_by: str = "prob", palette_name: str = DEFAULT_PALETTE) -> str:
    swatches = "".join(f'<span style="background:{c};color:{text_colour(c)}">&nbsp;{html.escape(label)}&nbsp;</span> '
                       for label, c in legend_swatches(color_by, palette_name))
    return f'<p>colour by {html.escape(color_by)}: {swatches}<span class="dim">unscored</span></p>'


def _p(line: str) -> str:
    return f"<p>{html.escape(line)}</p>"


def heatmap_fragment(result, color_by: str = "prob", palette_name: str = DEFAULT_PALETTE) -> str:
    """The scored string as coloured spans (cut by character offsets), numbers on hover."""
    check_mode(color_by)
    spans = []
    for piece, tok in text.display_pieces(result):
        colour = None if tok is None else token_colour(tok, color_by, palette_name)
        if colour is None:
            spans.append(f'<span class="dim">{escape_text(piece)}</span>')
            continue
        tip = f"p={text.fmt_p(tok.prob)}  rank {tok.rank}  {text.entropy_label(result)} {tok.entropy:.3f} nats"
        spans.append(f'<span title="{html.escape(tip, quote=True)}" style="background:{colour};'
                     f'color:{text_colour(colour)}">{escape_text(piece)}</span>')
    return f'<div class="heat">{"".join(spans)}</div>'


# -- one fragment per result type ------------------------------------------------------------------
def score_fragment(result, color_by: str = "prob", table: bool = True) -> str:
    parts = [heatmap_fragment(result, color_by), legend_html(color_by), _p(text.totals_line(result)),
             histograms_html(result)]
    return "".join(parts + ([to_html(tables.score_table(result))] if table else []))


def tokenize_fragment(result) -> str:
    pieces = "".join(f'<span class="box" title="id {t.token_id}">{html.escape(text.show_token(t.text))}</span>'
                     for t in result.tokens)
    return f'<div class="heat">{pieces}</div>' + to_html(tables.tokenize_table(result))


def comparison_fragment(result) -> str:
    if len(result.results) == 1:
        return to_html(tables.per_source_table(result.results[0]))
    notes = "".join(_p(f"{c}: {why}") for c, why in result.convention_notes())
    return to_html(tables.side_by_side_table(result.results)) + notes


def generation_fragment(result) -> str:
    return (f'<pre>{html.escape(result.prompt)}<b>{html.escape(result.text)}</b></pre>'
            + _p(text.generation_line(result)) + to_html(tables.trace_table(result)))


def uncertainty_fragment(result) -> str:
    return (heatmap_fragment(result.scored) + _p(text.uncertainty_line(result))
            + to_html(tables.uncertain_spans_table(result)))


def calibration_fragment(report) -> str:
    lines = text.calibration_lines(report)
    return "".join([_p(lines[0]), to_html(tables.reliability_table(report)), *map(_p, lines[1:]),
                    *(_p(f"skipped: {p}") for p in report.problems)])


def quantization_fragment(report, worst: int = 8) -> str:
    parts = [_p(text.quantization_line(report)), to_html(tables.quantization_table(report))]
    shown = report.focus_variant
    if shown is not None:
        spans = "".join(f'<span title="KL {kl:.4f} nats" style="background:{kl_colour(kl)};color:#fff">'
                        f'{html.escape(piece)}</span>' for piece, kl in zip(report.token_texts, shown.token_kl))
        parts += [_p(f"per-token KL, {shown.label} (green <= 0.001 nats ... red >= 1 nat):"),
                  f'<div class="heat">{spans}</div>', to_html(tables.worst_tokens_table(report, shown, worst))]
    return "".join(parts)


def _table(make):
    return lambda result, **options: to_html(make(result, **options))


VIEWS = {
    "ModelInfo": _table(tables.info_table),
    "EngineComparison": lambda r: to_html(tables.comparison_table(r)) + to_html(tables.comparison_worst_table(r)),
    "NextTokenResult": _table(tables.next_token_table),
    "ScoreResult": score_fragment,
    "TokenizeResult": tokenize_fragment,
    "PerplexityResult": _table(tables.per_source_table),
    "PerplexityComparison": comparison_fragment,
    "ChainResult": _table(tables.chain_table),
    "SampleResult": _table(tables.sample_table),
    "GenerationResult": generation_fragment,
    "BeamResult": _table(tables.beam_table),
    "TreeResult": lambda r: f"<pre>{html.escape(text.tree_text(r))}</pre>",
    "UncertaintyResult": uncertainty_fragment,
    "TruthResult": _table(tables.truth_table),
    "RankResult": _table(tables.rank_table),
    "LiftResult": _table(tables.lift_table),
    "CalibrationReport": calibration_fragment,
    "QuantizationReport": quantization_fragment,
}

_FRAGMENT_CSS = """<style>.logitscope table{border-collapse:collapse;font-size:13px;margin:.4em 0}
.logitscope caption{text-align:left;font-weight:bold;padding:.2em 0}
.logitscope th,.logitscope td{padding:2px 8px;border-bottom:1px solid #ddd;white-space:nowrap}
.logitscope .heat{font-family:ui-monospace,monospace;white-space:pre-wrap;line-height:1.9}
.logitscope .heat span{border-radius:3px}.logitscope .dim{opacity:.55}
.logitscope .box{border:1px solid #999;margin:0 1px;padding:0 2px}
.logitscope .note{font-size:12px;color:#555;white-space:pre-wrap}
.logitscope figure{display:inline-block;margin:.5em 2em 0 0}.logitscope figcaption{font-size:12px;color:#444}</style>"""


# -- the self-contained heatmap page -----------------------------------------------------------------
def token_span(tok, piece: str, color_by: str, top_alts: int = 5, palette_name: str = DEFAULT_PALETTE) -> str:
    """One ``<span class="tok">`` showing ``piece`` with the token's numbers and a colour
    per mode in data attributes."""
    body = escape_text(piece)
    if not tok.scored:
        token = escape_text(tok.text)
        return f'<span class="tok unscored" data-pos="{tok.position}" data-token="{token}">{body}</span>'
    colours = {m: token_colour(tok, m, palette_name) for m in COLOR_MODES}
    alts = json.dumps([[a.text, float(f"{a.prob:.6g}")] for a in tok.alternatives[:top_alts]], ensure_ascii=False)
    attrs = {"data-pos": tok.position, "data-token": tok.text, "data-prob": f"{tok.prob:.6g}",
             "data-logprob": f"{tok.logprob:.6g}", "data-rank": tok.rank, "data-entropy": f"{tok.entropy:.6g}",
             "data-alts": alts, **{f"data-c-{m}": c for m, c in colours.items()},
             **{f"data-f-{m}": text_colour(c) for m, c in colours.items()}}
    attr_text = " ".join(f'{k}="{escape_text(str(v))}"' for k, v in attrs.items())
    bg = colours[color_by]
    return f'<span class="tok" {attr_text} style="background:{bg};color:{text_colour(bg)}">{body}</span>'


def bar_svg(title: str, labels: list[str], counts: list[int], colours: list[str]) -> str:
    """A small inline-SVG bar chart with a count on every bar."""
    width, height, pad = 56 * len(counts), 150, 24
    top = max(counts) or 1
    bars = []
    for i, (label, n, colour) in enumerate(zip(labels, counts, colours)):
        h = (height - 2 * pad) * n / top
        x, y = i * 56 + 6, height - pad - h
        bars.append(f'<rect x="{x}" y="{y:.1f}" width="44" height="{h:.1f}" fill="{colour}"/>'
                    f'<text x="{x + 22}" y="{y - 4:.1f}" text-anchor="middle">{n}</text>'
                    f'<text x="{x + 22}" y="{height - 8}" text-anchor="middle">{html.escape(label)}</text>')
    return (f'<figure><figcaption>{html.escape(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" '
            f'width="{width}" height="{height}" font-size="10">{"".join(bars)}</svg></figure>')


def histograms_html(result, palette_name: str = DEFAULT_PALETTE) -> str:
    ranks = bar_svg("rank buckets (GLTR)", [label for _, label in RANK_LIMITS], text.rank_histogram(result),
                    list(palette(palette_name).rank))
    bins = text.PROB_BINS
    probs = bar_svg("token probability", [f"≥{i / bins:.1f}" for i in range(bins)], text.prob_histogram(result),
                    [prob_colour(max((i + 0.5) / bins, 1e-4), palette_name) for i in range(bins)])
    return ranks + probs


def render_html(result, color_by: str = "prob", title: str = "logitscope heatmap",
                palette_name: str = DEFAULT_PALETTE) -> str:
    """The whole self-contained heatmap page of a ScoreResult, as a string."""
    check_mode(color_by)
    palette(palette_name)
    spans = "".join(escape_text(piece) if tok is None else token_span(tok, piece, color_by, palette_name=palette_name)
                    for piece, tok in text.display_pieces(result))
    options = "".join(f'<option value="{m}"{" selected" if m == color_by else ""}>{m}</option>' for m in COLOR_MODES)
    legends = "".join(f'<div class="legend" data-mode="{m}"{"" if m == color_by else " hidden"}>'
                      f'{legend_html(m, palette_name)}</div>' for m in COLOR_MODES)
    return _PAGE.format(title=html.escape(title), options=options, tokens=spans, legends=legends,
                        summary=html.escape(text.totals_line(result)), histograms=histograms_html(result, palette_name),
                        css=_CSS, js=_JS)


def write_html(result, path: str | Path, color_by: str = "prob", palette_name: str = DEFAULT_PALETTE) -> Path:
    out = Path(path)
    if out.is_dir():
        raise InputError(f"{str(path)!r} is a directory", hint="give a file name such as out.html")
    return write_text(out, render_html(result, color_by, palette_name=palette_name))  # whole or not at all


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}
#text{font-family:ui-monospace,monospace;white-space:pre-wrap;line-height:1.9;border:1px solid #ccc;padding:1em}
.tok{border-radius:3px;padding:1px 0;cursor:default}.tok.unscored{color:#888}
.tok:hover{outline:2px solid #000}
#tip{position:absolute;display:none;background:#fff;border:1px solid #444;border-radius:4px;padding:6px 8px;
font-size:13px;box-shadow:2px 2px 6px rgba(0,0,0,.3);pointer-events:none;white-space:nowrap}
#tip table{border-collapse:collapse}#tip td{padding:0 6px}figure{display:inline-block;margin:1em 2em 0 0}
figcaption{font-size:13px;color:#444}"""

_JS = """const tip=document.getElementById('tip');
function fmtp(p){p=Number(p);return p>=0.001||p===0?p.toFixed(4):p.toExponential(2);}
function esc(s){return s.replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));}
function show(el,ev){const d=el.dataset;if(d.prob===undefined){tip.style.display='none';return;}
let rows=JSON.parse(d.alts).map(a=>'<tr><td>'+esc(JSON.stringify(a[0]))+'</td><td>'+fmtp(a[1])+'</td></tr>').join('');
tip.innerHTML='<b>'+esc(JSON.stringify(d.token))+'</b><br>p = <span class="p">'+fmtp(d.prob)+
'</span> · log p = '+Number(d.logprob).toFixed(3)+'<br>rank '+d.rank+' · entropy '+Number(d.entropy).toFixed(3)+
' nats<br>top alternatives:<table>'+rows+'</table>';
tip.style.left=(ev.pageX+12)+'px';tip.style.top=(ev.pageY+12)+'px';tip.style.display='block';}
document.querySelectorAll('.tok').forEach(el=>{el.addEventListener('mouseenter',ev=>show(el,ev));
el.addEventListener('mouseleave',()=>{tip.style.display='none';});});
function recolour(mode){const m=mode[0].toUpperCase()+mode.slice(1);
document.querySelectorAll('.tok[data-prob]').forEach(el=>{el.style.background=el.dataset['c'+m];
el.style.color=el.dataset['f'+m];});}
document.getElementById('colorby').addEventListener('change',ev=>{recolour(ev.target.value);
document.querySelectorAll('.legend').forEach(l=>{l.hidden=l.dataset.mode!==ev.target.value;});});"""

_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title><style>{css}</style></head>
<body><h2>{title}</h2>
<label>colour by <select id="colorby">{options}</select></label>
{legends}
<div id="text">{tokens}</div>
<p>{summary}</p>
<div>{histograms}</div>
<div id="tip"></div>
<script>{js}</script>
</body></html>
"""
