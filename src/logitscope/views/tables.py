"""Every table of every result, written once as plain data (``TableSpec``).

``views.terminal`` turns a spec into a rich Table, ``views.html`` into an HTML table, so
the terminal and a notebook show the same rows. A cell is a string or ``Styled`` (a string
with a rich-style colour such as ``"#000000 on #2da44e"``, ``"cyan"`` or ``"dim"``).
Nothing here imports rich or matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .colours import BAR_STYLE, UNSCORED_STYLE, on, prob_colour
from .text import entropy_label, fmt, fmt_p, show_token


@dataclass(frozen=True)
class Styled:
    text: str
    style: str | None = None


@dataclass(frozen=True)
class Column:
    name: str
    justify: str = "right"  # "left" | "right"
    no_wrap: bool = False
    min_width: int | None = None
    max_width: int | None = None
    overflow: str | None = None  # "ellipsis" to cut long cells with "…"


@dataclass
class TableSpec:
    title: str | None
    columns: list[Column]
    rows: list[list] = field(default_factory=list)
    row_styles: list[str | None] = field(default_factory=list)
    caption: str | None = None
    compact: bool = False  # a light frame (header rule only), no outer padding

    def add(self, *cells, style: str | None = None) -> None:
        self.rows.append(list(cells))
        self.row_styles.append(style)


def columns(names, left=(), **options) -> list[Column]:
    """Columns right-justified except those named in ``left``."""
    return [Column(n, "left" if n in left else "right", **options) for n in names]


# -- the model ------------------------------------------------------------------------------------
def info_table(result) -> TableSpec:
    table = TableSpec(result.model, columns(("fact", "value"), left=("fact", "value")))
    for key, value in result.to_dict().items():
        table.add(key, "; ".join(map(str, value)) if isinstance(value, list) else str(value))
    return table


# -- next token and scoring ----------------------------------------------------------------------
def next_token_table(result) -> TableSpec:
    bound = f", a lower bound from the top {result.top_k_only}" if result.top_k_only else ""
    title = (f"next token after {result.prompt!r}  ({entropy_label(result)} {result.entropy:.3f} nats = "
             f"{result.entropy_bits:.3f} bits{bound}, T={result.temperature:g})")
    table = TableSpec(title, columns(("rank", "id", "token", "logit", "log-prob", "prob", ""), left=("token", "")))
    for c in result.top:
        bar = "█" * max(1, round(c.prob * 30)) if c.prob >= 1 / 60 else "▏"
        table.add(str(c.rank), str(c.token_id), repr(c.text), fmt(c.logit), f"{c.logprob:.4f}", f"{c.prob:.4f}",
                  Styled(bar, BAR_STYLE))
    return table


def score_table(result) -> TableSpec:
    cols = [Column(c, "left" if c == "token" else "right", no_wrap=True, min_width=max(len(c), 4))
            for c in ("pos", "id", "token", "log-prob", "prob", "bits", "rank", entropy_label(result))]
    cols.append(Column("top alternatives", "left", no_wrap=True, max_width=30, overflow="ellipsis"))
    table = TableSpec("per-token scores", cols)
    for tok in result.tokens:
        alts = " ".join(f"{a.text!r} {a.prob:.2f}" for a in tok.alternatives[:3])
        style = on(None if tok.prob is None else prob_colour(tok.prob))
        table.add(str(tok.position), str(tok.token_id), Styled(repr(tok.text), style), fmt(tok.logprob),
                  fmt(tok.prob), fmt(tok.surprisal_bits, 2), fmt(tok.rank), fmt(tok.entropy, 3), alts,
                  style=None if tok.scored else UNSCORED_STYLE)
    return table


def tokenize_table(result) -> TableSpec:
    table = TableSpec(f"{len(result)} tokens, {len(result.text)} characters",
                      columns(("id", "token", "span"), left=("token",)))
    for t in result.tokens:
        table.add(str(t.token_id), repr(t.text), f"[{t.start}, {t.end})")
    return table


# -- perplexity -------------------------------------------------------------------------------
def _count_cells(c) -> list[str]:
    return [str(c.num_scored), *(fmt(v, missing="-") for v in (c.perplexity, c.bits_per_byte, c.byte_perplexity,
                                                                c.word_perplexity))]


def per_source_table(r) -> TableSpec:
    """One row per file plus the token-weighted total."""
    from .text import perplexity_settings

    table = TableSpec(perplexity_settings(r), columns(
        ("file", "docs", "scored", "perplexity", "bits/byte", "byte ppl", "word ppl", "doc-mean ppl"), left=("file",)))
    for s in r.scored_sources:
        table.add(s.source, str(len(s.documents)), *_count_cells(s.counts),
                  fmt(s.mean_document_perplexity, missing="-"))
    if r.total is not None and len(r.scored_sources) > 1:
        table.add(Styled("total", "bold"), str(sum(len(s.documents) for s in r.scored_sources)),
                  *_count_cells(r.total), fmt(r.mean_document_perplexity, missing="-"))
    return table


def side_by_side_table(results) -> TableSpec:
    """One row per (model, convention): corpus totals."""
    table = TableSpec("corpus perplexity (token-weighted, all files)", columns(
        ("model", "convention", "window", "stride", "bos", "scored", "perplexity", "bits/byte", "byte ppl",
         "word ppl"), left=("model", "convention", "bos")))
    for r in results:
        cells = _count_cells(r.total) if r.total is not None else ["-"] * 5
        table.add(r.model, r.convention, str(r.window), "-" if r.stride is None else str(r.stride), r.bos, *cells)
    return table


# -- sampling and generation -------------------------------------------------------------------
def chain_table(result) -> TableSpec:
    table = TableSpec(f"sampler chain after {result.prompt!r}",
                      columns(("stage", "survivors", "entropy", "top tokens (prob)"),
                              left=("stage", "top tokens (prob)")))
    for s in result.stages:
        table.add(s.stage, str(s.survivors), f"{s.entropy:.3f}",
                  "  ".join(f"{show_token(c.text)} {c.prob:.3f}" for c in s.top))
    return table


def sample_table(result) -> TableSpec:
    title = (f"{result.n} draws after {result.prompt!r} (seed {result.seed}, {result.survivors} survivors): "
             f"{result.test_summary}")
    table = TableSpec(title, columns(("id", "token", "prob", "expected", "drawn", "freq"), left=("token",)))
    for r in result.rows:
        table.add(str(r.token_id), repr(r.text), f"{r.prob:.4f}", f"{r.prob * result.n:.1f}", str(r.count),
                  f"{r.count / result.n:.4f}")
    return table


def trace_table(result) -> TableSpec:
    """One row per step; from a top-k backend the entropy is a lower bound ("entropy ≥") and
    "outside top k" is the probability the backend did not show."""
    k = result.top_k_only
    names = ("step", "token", "p raw", "p processed", "rank", entropy_label(result),
             *(("outside top k",) if k else ()), "survivors", "top alternatives")
    title = f"generation trace (from the top {k} log-probs)" if k else "generation trace"
    table = TableSpec(title, columns(names, left=("token", "top alternatives")))
    for s in result.steps:
        alts = ", ".join(f"{show_token(a.text)} {a.prob:.2f}" for a in s.alternatives[:3])
        rest = (fmt(s.remaining_mass),) if k else ()
        table.add(str(s.step), repr(s.text), f"{s.prob:.4f}", f"{s.processed_prob:.4f}", str(s.rank),
                  f"{s.entropy:.3f}", *rest, str(s.survivors), alts)
    return table


def beam_table(result) -> TableSpec:
    table = TableSpec(f"beam search (B={result.num_beams}, alpha={result.alpha:g}) after {result.prompt!r}",
                      columns(("", "text", "tokens", "log-prob", "normalised", "EOS"), left=("", "text")))
    rows = [(f"beam {i + 1}", b) for i, b in enumerate(result.beams)] + [("greedy", result.greedy)]
    for label, b in rows:
        table.add(label, repr(b.text), str(len(b.token_ids)), f"{b.logprob:.4f}", f"{b.normalized:.4f}",
                  "yes" if b.finished else "no")
    return table


# -- confidence ----------------------------------------------------------------------------------
def uncertain_spans_table(result) -> TableSpec:
    table = TableSpec("uncertain spans", columns(("span", "chars", "min p", "max entropy"), left=("span",)))
    for sp in result.spans:
        table.add(repr(sp.text), f"{sp.start}-{sp.end}", fmt_p(sp.min_prob), f"{sp.max_entropy:.3f}")
    return table


def truth_table(result) -> TableSpec:
    cats = list(result.reports[0].by_category)
    table = TableSpec(f"true vs false, {result.num_pairs} pairs (0.5 = chance)",
                      columns(("measure", "pair acc.", "AUROC", *cats), left=("measure",)))
    for r in result.reports:
        table.add(r.measure, f"{r.pair_accuracy:.3f}", f"{r.auroc:.3f}", *(f"{r.by_category[c]:.2f}" for c in cats))
    return table


def rank_table(result, by: str = "sum", tokens: bool = False) -> TableSpec:
    norms = result.normalisations
    table = TableSpec(f"candidates after {result.prompt!r}, ordered by {by} "
                      f"(shared prefix: {result.shared_prefix_tokens} tokens)",
                      columns(("#", "candidate", "tokens", *norms), left=("candidate",)),
                      caption="\n".join(result.notes) or None)
    orders = {n: result.order(n) for n in norms}
    for i in orders[by]:
        c = result.candidates[i]
        cells = ["–" if c.score(n) is None else f"{c.score(n):.3f} (#{orders[n].index(i) + 1})" for n in norms]
        detail = " ".join(f"{t.text!r}:{t.logprob:.2f}" for t in c.result.scored_tokens) if tokens else ""
        table.add(str(orders[by].index(i) + 1), repr(c.candidate) + (f"\n{detail}" if detail else ""),
                  str(c.num_tokens), *cells)
    return table


def lift_table(result) -> TableSpec:
    verdict = "supported" if result.supported else "NOT supported by any context"
    table = TableSpec(f"answer {result.answer!r}: log p without context {result.total_without:.3f} · {verdict}"
                      f" (min lift {result.min_lift:g} nats)",
                      columns(("context", "log p with", "lift (nats)", "supported", "tokens the context made likely"),
                              left=("context", "tokens the context made likely")))
    for c in result.contexts:
        short = c.context if len(c.context) <= 50 else c.context[:47] + "..."
        made = ", ".join(f"{t.text!r} {t.lift:+.2f}" for t in c.lifted_tokens) if c.aligned else "(tokens differ)"
        table.add(repr(short), f"{c.total_with:.3f}", Styled(f"{c.lift:+.3f}", "green" if c.supported else "red"),
                  "yes" if c.supported else "no", made)
    return table


# -- calibration and quantization -------------------------------------------------------------------
def reliability_table(report) -> TableSpec:
    table = TableSpec("reliability (equal-width bins)", columns(("confidence", "n", "accuracy", "mean conf", "gap")))
    for b in report.metrics.bins:
        table.add(f"({b.low:.2f}, {b.high:.2f}]", str(b.count), fmt(b.accuracy), fmt(b.confidence),
                  fmt(b.gap) if b.count else "–")
    return table


def quantization_table(report) -> TableSpec:
    grid = "symmetric" if report.symmetric else "affine (min-max)"
    table = TableSpec(f"weights quantized {report.scheme}, {grid}; KL in nats; top= same top token %; "
                      f"Δp (mean, rms) of p(correct) %",
                      columns(("variant", "MB", "PPL", "KL mean", "KL med", "KL p99", "top=", "Δp", "rms"),
                              left=("variant",), no_wrap=True), compact=True)
    for v in report.variants:
        table.add(v.label, f"{v.size_bytes / 1e6:.0f}", f"{v.perplexity:.4g}", f"{v.kl_mean:.2g}",
                  f"{v.kl_median:.2g}", f"{v.kl_p99:.2g}", f"{100 * v.same_top:.1f}",
                  f"{100 * v.delta_p_mean:+.1f}", f"{100 * v.delta_p_rms:.1f}")
    return table


def worst_tokens_table(report, variant, n: int = 8) -> TableSpec:
    table = TableSpec(f"largest KL, {variant.label}", columns(("token #", "token", "KL (nats)"), left=("token",)))
    order = sorted(range(len(variant.token_kl)), key=lambda i: -variant.token_kl[i])[:n]
    for i in order:
        table.add(str(i), repr(show_token(report.token_texts[i])), f"{variant.token_kl[i]:.4f}")
    return table


# -- engines side by side ----------------------------------------------------------------------------
def _who(p: dict) -> str:
    return f"{p['model']} ({p['engine']} {p['dtype']})"


def comparison_table(result) -> TableSpec:
    kl = "KL(A‖B)" if result.kl_exact else "KL(A‖B), coarse: B's top k + rest (a lower bound)"
    table = TableSpec(f"model B against model A on the same {result.num_tokens} tokens",
                      columns(("measure", "value"), left=("measure",)))
    for name, value in (("model A", _who(result.a)), ("model B", _who(result.b)),
                        ("perplexity A", f"{result.perplexity_a:.4f}"), ("perplexity B", f"{result.perplexity_b:.4f}"),
                        ("Δ log p (B − A), mean", f"{result.delta_mean:+.4f} nats"),
                        ("|Δ log p|, max", f"{result.delta_max:.4f} nats"),
                        (f"{kl} mean / median", f"{result.kl_mean:.3g} / {result.kl_median:.3g} nats"),
                        (f"{kl} p99 / max", f"{result.kl_p99:.3g} / {result.kl_max:.3g} nats"),
                        ("same top token", f"{100 * result.same_top:.1f}%"),
                        ("token's rank changed", f"{100 * result.rank_changed:.1f}%"),
                        ("top-10 alternatives shared", f"{100 * result.top_overlap:.1f}%")):
        table.add(name, value)
    if not result.same_tokenization:
        table.add("tokens", "A's tokenization, scored by both (B's own tokenizer splits this text otherwise)")
    return table


def comparison_worst_table(result, n: int = 8) -> TableSpec:
    table = TableSpec("where the distributions moved most (largest KL)",
                      columns(("pos", "token", "log p A", "log p B", "Δ", "rank A", "rank B", "KL"), left=("token",)))
    for t in result.worst(n):
        table.add(str(t.position), repr(show_token(t.text)), f"{t.logprob_a:.4f}", f"{t.logprob_b:.4f}",
                  f"{t.delta:+.4f}", str(t.rank_a), str(t.rank_b), f"{t.kl:.4f}")
    return table
