"""Token heatmaps: a rich terminal rendering and a self-contained HTML page.

Colour modes (``color_by``):

* ``prob``    — log scale from p = 1e-4 (red) to p = 1 (green);
* ``rank``    — GLTR's buckets: top-10 green, top-100 yellow, top-1000 red, beyond purple;
* ``entropy`` — light (sure) to dark blue (spread out), saturating at 6 nats.

The HTML page needs no network: CSS and JS are inline, every token is a
``<span class="tok">`` carrying its numbers in data attributes (``data-prob``,
``data-rank``, ``data-entropy``, ``data-alts``), a tooltip shows them on hover,
a selector switches the colouring, and two inline-SVG histograms (rank buckets,
probabilities) sit under the text.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

from rich.console import Group
from rich.text import Text

from ..errors import InputError
from .terminal import totals_line
from ..results import ScoreResult, TokenScore

COLOR_MODES = ("prob", "rank", "entropy")
RANK_BUCKETS = [(10, "#2da44e", "top-10"), (100, "#d4a72c", "top-100"),
                (1000, "#cf222e", "top-1000"), (None, "#8250df", ">1000")]
PROB_FLOOR_LOG10 = -4.0  # p <= 1e-4 gets the reddest colour
ENTROPY_CEILING = 6.0  # nats at which the entropy colour saturates
PROB_BINS = 10


# -- colours --------------------------------------------------------------------------
def check_mode(color_by: str) -> str:
    if color_by not in COLOR_MODES:
        raise InputError(f"unknown colour mode {color_by!r}", hint=f"color_by must be one of {', '.join(COLOR_MODES)}")
    return color_by


def rank_bucket(rank: int) -> int:
    """Index into RANK_BUCKETS: 0 for ranks 1-10, 1 for 11-100, 2 for 101-1000, 3 beyond."""
    for i, (limit, _, _) in enumerate(RANK_BUCKETS):
        if limit is not None and rank <= limit:
            return i
    return len(RANK_BUCKETS) - 1


def prob_colour(prob: float) -> str:
    share = (max(math.log10(max(prob, 1e-300)), PROB_FLOOR_LOG10) - PROB_FLOOR_LOG10) / -PROB_FLOOR_LOG10
    return _hex_hsl(120.0 * share, 0.65, 0.42)  # hue 0 (red) .. 120 (green)


def entropy_colour(entropy: float) -> str:
    share = min(max(entropy, 0.0) / ENTROPY_CEILING, 1.0)
    return _hex_hsl(215.0, 0.70, 0.88 - 0.55 * share)  # light to dark blue


def token_colour(tok: TokenScore, color_by: str) -> str | None:
    """Background colour of a token (None when the token is not scored)."""
    if not tok.scored:
        return None
    if color_by == "prob":
        return prob_colour(tok.prob)
    if color_by == "rank":
        return RANK_BUCKETS[rank_bucket(tok.rank)][1]
    return entropy_colour(tok.entropy)


def text_colour(background: str) -> str:
    r, g, b = (int(background[i:i + 2], 16) for i in (1, 3, 5))
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#ffffff"


def _hex_hsl(hue: float, sat: float, light: float) -> str:
    import colorsys

    r, g, b = colorsys.hls_to_rgb(hue / 360.0, light, sat)
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in (r, g, b)))


# -- counts -----------------------------------------------------------------------------
def rank_histogram(result: ScoreResult) -> list[int]:
    """Scored tokens per GLTR rank bucket."""
    counts = [0] * len(RANK_BUCKETS)
    for t in result.scored_tokens:
        counts[rank_bucket(t.rank)] += 1
    return counts


def prob_histogram(result: ScoreResult, bins: int = PROB_BINS) -> list[int]:
    """Scored tokens per probability bin [0, 1/bins), ..., [1 - 1/bins, 1]."""
    counts = [0] * bins
    for t in result.scored_tokens:
        counts[min(int(t.prob * bins), bins - 1)] += 1
    return counts


# -- terminal -----------------------------------------------------------------------------
def display_pieces(result: ScoreResult) -> list[tuple[str, TokenScore | None]]:
    """The scored string cut into (text, token) pieces by character offsets; the text
    between tokens (e.g. spaces a word-level tokenizer drops) comes as (text, None)."""
    full = (result.context or "") + result.text
    pieces, shown_to = [], 0
    for tok in result.tokens:
        if tok.role == "prefix":
            continue
        if tok.start > shown_to:
            pieces.append((full[shown_to:tok.start], None))
        piece = full[max(tok.start, shown_to):tok.end] or tok.text  # tokens inside one character share it
        pieces.append((piece, tok))
        shown_to = max(shown_to, tok.end)
    if shown_to < len(full):
        pieces.append((full[shown_to:], None))
    return pieces


def terminal_heatmap(result: ScoreResult, color_by: str = "prob") -> Text:
    check_mode(color_by)
    out = Text()
    for piece, tok in display_pieces(result):
        colour = None if tok is None else token_colour(tok, color_by)
        out.append(piece, style="dim" if colour is None else f"{text_colour(colour)} on {colour}")
    return out


def terminal_view(result: ScoreResult, color_by: str = "prob") -> Group:
    """Heatmap, rank-bucket counts (GLTR) and totals for the terminal."""
    counts = rank_histogram(result)
    buckets = Text("rank buckets: ")
    for (_, colour, label), n in zip(RANK_BUCKETS, counts):
        buckets.append(f" {label}: {n} ", style=f"{text_colour(colour)} on {colour}")
        buckets.append(" ")
    return Group(terminal_heatmap(result, color_by), Text(""), Text(f"colour by {color_by}"), buckets,
                 totals_line(result))


# -- HTML ---------------------------------------------------------------------------------
def token_span(tok: TokenScore, piece: str, color_by: str, top_alts: int = 5) -> str:
    """One ``<span class="tok">`` showing ``piece`` with the token's numbers and a colour
    per mode in data attributes."""
    body = html.escape(piece)
    if not tok.scored:
        token = html.escape(tok.text, quote=True)
        return f'<span class="tok unscored" data-pos="{tok.position}" data-token="{token}">{body}</span>'
    colours = {m: token_colour(tok, m) for m in COLOR_MODES}
    alts = json.dumps([[a.text, float(f"{a.prob:.6g}")] for a in tok.alternatives[:top_alts]], ensure_ascii=False)
    attrs = {"data-pos": tok.position, "data-token": tok.text, "data-prob": f"{tok.prob:.6g}",
             "data-logprob": f"{tok.logprob:.6g}", "data-rank": tok.rank, "data-entropy": f"{tok.entropy:.6g}",
             "data-alts": alts, **{f"data-c-{m}": c for m, c in colours.items()}}
    attr_text = " ".join(f'{k}="{html.escape(str(v), quote=True)}"' for k, v in attrs.items())
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


def histograms_html(result: ScoreResult) -> str:
    ranks = bar_svg("rank buckets (GLTR)", [b[2] for b in RANK_BUCKETS], rank_histogram(result),
                    [b[1] for b in RANK_BUCKETS])
    edges = [f"{i / PROB_BINS:.1f}" for i in range(PROB_BINS)]
    probs = bar_svg("token probability", [f"≥{e}" for e in edges], prob_histogram(result),
                    [prob_colour(max((i + 0.5) / PROB_BINS, 1e-4)) for i in range(PROB_BINS)])
    return ranks + probs


def render_html(result: ScoreResult, color_by: str = "prob", title: str = "logitscope heatmap") -> str:
    """The whole self-contained page as a string."""
    check_mode(color_by)
    spans = "".join(html.escape(piece) if tok is None else token_span(tok, piece, color_by)
                    for piece, tok in display_pieces(result))
    options = "".join(f'<option value="{m}"{" selected" if m == color_by else ""}>{m}</option>' for m in COLOR_MODES)
    summary = html.escape(str(totals_line(result)))
    return _PAGE.format(title=html.escape(title), options=options, tokens=spans, summary=summary,
                        histograms=histograms_html(result), css=_CSS, js=_JS)


def write_html(result: ScoreResult, path: str | Path, color_by: str = "prob") -> Path:
    out = Path(path)
    if out.is_dir():
        raise InputError(f"{str(path)!r} is a directory", hint="give a file name such as out.html")
    out.write_text(render_html(result, color_by), encoding="utf-8")
    return out


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
function fg(hex){const v=[1,3,5].map(i=>parseInt(hex.slice(i,i+2),16));
return 0.299*v[0]+0.587*v[1]+0.114*v[2]>150?'#000000':'#ffffff';}
function recolour(mode){document.querySelectorAll('.tok[data-prob]').forEach(el=>{
const bg=el.dataset['c'+mode[0].toUpperCase()+mode.slice(1)];el.style.background=bg;el.style.color=fg(bg);});}
document.getElementById('colorby').addEventListener('change',ev=>recolour(ev.target.value));"""

_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title><style>{css}</style></head>
<body><h2>{title}</h2>
<label>colour by <select id="colorby">{options}</select></label>
<p>prob: red (p &le; 1e-4) to green (p = 1), log scale · rank: GLTR top-10 / 100 / 1000 / beyond ·
entropy: light (sure) to dark blue (&ge; 6 nats)</p>
<div id="text">{tokens}</div>
<p>{summary}</p>
<div>{histograms}</div>
<div id="tip"></div>
<script>{js}</script>
</body></html>
"""
