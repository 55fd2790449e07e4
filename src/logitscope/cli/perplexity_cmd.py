"""`perplexity`: corpus perplexity of files, per file and in total, under any convention."""

from __future__ import annotations

import sys
from contextlib import contextmanager

import click

from ..scoring.perplexity import CONVENTIONS
from .common import ModelSpec, json_option, load_model, report_problems, show

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
    from ..scoring.perplexity import compare

    with _progress(as_json) as tick:
        result = compare((load_model(spec).backend for spec in models or (None,)), files=list(files),
                         conventions=CONVENTIONS if compare_conventions else (convention,), window=window,
                         stride=stride, bos=BOS_CHOICES[bos], fmt=fmt, progress=tick)
    runs = [r.to_dict() for r in result.results]
    if as_json or any(r.scored_sources for r in result.results):  # every file failed: the errors alone, no table
        show(result, as_json, data=runs[0] if len(runs) == 1 else runs, piped_width=160)  # pipes get full numbers
    report_problems(result.warnings, "warning")
    _report_errors(result.errors)


def _report_errors(errors: tuple[str, ...]) -> None:
    """One line per bad file (once, not per model/convention); exit 2 after the others were reported."""
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


COMMANDS = [perplexity_cmd]
