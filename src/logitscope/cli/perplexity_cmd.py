"""`perplexity`: corpus perplexity of files, per file and in total, under any convention."""

from __future__ import annotations

import sys
from contextlib import contextmanager

import click
from rich.table import Table

from ..scoring.perplexity import CONVENTIONS, WHY, PerplexityResult
from .common import ModelSpec, console, emit_json, json_option, load_model, report_problems

BOS_CHOICES = {"convention": None, "always": True, "never": False, "auto": "auto"}


@click.command("perplexity")
@click.argument("files", nargs=-1, required=True)
@click.option("--window", type=int, default=None, help="Ids per window, last target included (default: model context).")
@click.option("--stride", type=int, default=None, help="Strided convention: ids between window starts (default: window/2).")
@click.option("--convention", type=click.Choice(CONVENTIONS), default="strided", show_default=True,
              help="strided (HF guide), disjoint (lm-eval rolling), llamacpp (llama.cpp perplexity).")
@click.option("--compare-conventions", is_flag=True, help="Score under every convention, side by side.")
@click.option("--bos", type=click.Choice(list(BOS_CHOICES)), default="convention", show_default=True,
              help="Prefix token: the convention's own rule, always, never, or the tokenizer's (auto).")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl", "lines"]), default=None,
              help="text: a file is one document; jsonl: a 'text' field per line; lines: a document per line. "
                   "Default: jsonl for *.jsonl, else text.")
@click.option("--model", "-m", "models", type=ModelSpec(), multiple=True, metavar="MODEL",
              help="Model(s) to compare (repeat -m); default: $LOGITSCOPE_MODEL, else the bundled SmolLM2-135M.")
@json_option
def perplexity_cmd(files, window, stride, convention, compare_conventions, bos, fmt, models, as_json):
    """Token-weighted perplexity of FILE... (per file and in total), with bits-per-byte
    and lm-eval's byte- and word-level perplexity.

    \b
    Examples:
      logitscope perplexity notes.txt
      logitscope perplexity a.txt b.jsonl --window 512 --convention disjoint
      logitscope perplexity corpus.txt --window 256 --compare-conventions
      logitscope perplexity corpus.txt -m bundled -m ./other-model --json
    """
    conventions = CONVENTIONS if compare_conventions else (convention,)
    results = []
    for spec in models or (None,):
        model = load_model(spec)
        for conv in conventions:
            with _progress(as_json) as tick:
                results.append(model.perplexity(files=list(files), convention=conv, window=window,
                                                stride=stride if conv == "strided" or not compare_conventions else None,
                                                bos=BOS_CHOICES[bos], fmt=fmt, progress=tick))
    _emit(results, as_json, compare_conventions)
    _report_errors(results)


def _emit(results: list[PerplexityResult], as_json: bool, explain: bool) -> None:
    if as_json:
        return emit_json(results[0].to_dict() if len(results) == 1 else [r.to_dict() for r in results])
    if not any(r.scored_sources for r in results):
        return  # every file failed: the errors alone, no empty table
    out = console(piped_width=160)  # pipes get full numbers, not "…"
    if len(results) == 1:
        return out.print(per_source_table(results[0]))
    out.print(side_by_side_table(results))
    if explain:
        for conv in dict.fromkeys(r.convention for r in results):
            click.echo(f"  {conv:<9} {WHY[conv]}")


def _report_errors(results: list[PerplexityResult]) -> None:
    """One line per bad file (once, not per model/convention); exit 2 after the others were reported."""
    report_problems(dict.fromkeys(w for r in results for w in r.warnings), "warning")
    errors = list(dict.fromkeys([s.error for r in results for s in r.errors] +
                                [r.nothing_scored for r in results if r.nothing_scored]))
    for message in errors:
        click.echo(f"error: {message}", err=True)
    if errors:
        sys.exit(2)


@contextmanager
def _progress(quiet: bool):
    """A tqdm bar of scored tokens/s on stderr, only for a terminal and without --json."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(unit="tok", unit_scale=True, file=sys.stderr, desc="scoring", leave=False) as bar:
        yield bar.update


def _fmt(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _settings(r: PerplexityResult) -> str:
    stride = f" stride={r.stride}" if r.stride is not None else ""
    return f"{r.model} · {r.convention} window={r.window}{stride} · bos={r.bos} (prefix id {r.prefix_token_id})"


def per_source_table(r: PerplexityResult) -> Table:
    """One row per file plus the token-weighted total."""
    table = Table(title=_settings(r), title_justify="left")
    for col in ("file", "docs", "scored", "perplexity", "bits/byte", "byte ppl", "word ppl", "doc-mean ppl"):
        table.add_column(col, justify="left" if col == "file" else "right")
    for s in r.scored_sources:
        table.add_row(s.source, str(len(s.documents)), *_count_cells(s.counts), _fmt(s.mean_document_perplexity))
    if r.total is not None and len(r.scored_sources) > 1:
        table.add_row("[bold]total[/bold]", str(sum(len(s.documents) for s in r.scored_sources)),
                      *_count_cells(r.total), _fmt(r.mean_document_perplexity))
    return table


def side_by_side_table(results: list[PerplexityResult]) -> Table:
    """One row per (model, convention): corpus totals."""
    table = Table(title="corpus perplexity (token-weighted, all files)", title_justify="left")
    for col in ("model", "convention", "window", "stride", "bos", "scored", "perplexity", "bits/byte", "byte ppl",
                "word ppl"):
        table.add_column(col, justify="left" if col in ("model", "convention", "bos") else "right")
    for r in results:
        cells = _count_cells(r.total) if r.total is not None else ["-"] * 5
        table.add_row(r.model, r.convention, str(r.window), "-" if r.stride is None else str(r.stride), r.bos, *cells)
    return table


def _count_cells(c) -> list[str]:
    return [str(c.num_scored), _fmt(c.perplexity), _fmt(c.bits_per_byte), _fmt(c.byte_perplexity),
            _fmt(c.word_perplexity)]


COMMANDS = [perplexity_cmd]
