"""`compare`: two engines, dtypes or models on the same text, token by token."""

from __future__ import annotations

import sys

import click

from .common import (InputFile, ModelSpec, bos_option, bos_value, json_option, load_model, load_model_as, read_text,
                     show)


@click.command("compare")
@click.argument("text", required=False)
@click.option("-f", "--file", "file", type=InputFile(), help="Read the text from FILE ('-' for stdin).")
@click.option("--model", "-m", "models", type=ModelSpec(), multiple=True, metavar="MODEL",
              help="Model A, then model B (default: both the model of $LOGITSCOPE_MODEL, else the bundled one).")
@click.option("--engine-b", type=click.Choice(["auto", "torch", "llamacpp"]), default=None,
              help="Model B's engine (default: A's); --engine sets A's.")
@click.option("--dtype-b", type=click.Choice(["float32", "bfloat16"]), default=None,
              help="Model B's dtype (default: A's); --dtype sets A's.")
@click.option("--window", type=int, default=512, show_default=True, help="Ids per window (disjoint windows).")
@click.option("--worst", type=click.IntRange(0, 1000), default=8, show_default=True,
              help="Rows of the largest-KL table.")
@bos_option
@json_option
def compare_cmd(text, file, models, engine_b, dtype_b, window, worst, bos, as_json):
    """Compare model B with model A on the same tokens of TEXT (or -f FILE): per-token Δlog-prob,
    KL(A‖B), same top token, rank changes, perplexity of each.

    Why do log-probs differ between engines? A is the reference (e.g. torch float32), B the other.

    \b
    Examples:
      logitscope compare "To be or not to be, that is the question." --engine-b llamacpp
      logitscope compare -f notes.txt --dtype-b bfloat16
      logitscope compare -f notes.txt -m bundled -m http://127.0.0.1:8000/v1 --json
    """
    if len(models) > 2:
        raise click.UsageError("give at most two models (-m A -m B)")
    body = read_text(text, file)
    spec_a = models[0] if models else None
    a = load_model(spec_a)
    b = load_model_as(models[1] if len(models) > 1 else spec_a, engine=engine_b, dtype=dtype_b)
    progress = not as_json and sys.stderr.isatty()
    show(a.compare(b, body, window=window, bos=bos_value(bos), progress=progress), as_json, worst=worst)


COMMANDS = [compare_cmd]
