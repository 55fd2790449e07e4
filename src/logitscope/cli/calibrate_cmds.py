"""`calibrate` (multiple-choice accuracy and calibration) and `quantize` (what weight
quantization costs): thin adapters over logitscope.calibration and logitscope.quantization,
plus their terminal views."""

from __future__ import annotations

import math
import sys

import click
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..errors import InputError
from ..evaluation.calibration import DELIMITER, PROMPT_TEMPLATE, check_template, load_mcq
from ..evaluation.quantization import check_bits
from ..views.terminal import show_token
from .common import (PLOT_EXTENSIONS, InputFile, OutputPath, bos_option, bos_value, console, emit_json, json_option,
                     load_model, model_option, read_file, report_problems)


@click.command("calibrate")
@click.argument("dataset", required=False, type=InputFile(allow_stdin=False))
@click.option("--normalize", type=click.Choice(["sum", "mean", "bytes", "pmi"]), default="sum", show_default=True,
              help="Choice score: total log-prob, per token, per byte, or PMI against the prefix token.")
@click.option("--bins", default=10, show_default=True, help="Confidence bins for ECE/MCE and the diagram.")
@click.option("--template", default=PROMPT_TEMPLATE, show_default=True, callback=lambda c, p, v: check_template(v),
              help="The prompt for a question; {question} is replaced (lm-eval's doc_to_text).")
@click.option("--delimiter", default=DELIMITER, show_default=True,
              help="Put between the prompt and each choice (lm-eval's target_delimiter); use '' when the "
                   "choices already start with a space.")
@click.option("--skip-bad", is_flag=True, help="Evaluate the valid lines of a dataset with malformed ones "
                                              "(they are listed on stderr); without it such a file is refused.")
@click.option("--plot", "plot", type=OutputPath(PLOT_EXTENSIONS), metavar="FILE.png", default=None, help="Write a reliability diagram (PNG).")
@bos_option
@model_option
@json_option
def calibrate_cmd(dataset, normalize, bins, template, delimiter, skip_bad, plot, bos, model, as_json):
    """Multiple-choice accuracy and calibration on DATASET (JSONL; default: the bundled 172 questions).

    \b
    Each line: {"question": "...", "choices": ["a", "b", ...], "answer": 0}
    Examples:
      logitscope calibrate
      logitscope calibrate my_questions.jsonl --normalize pmi --bins 5 --plot reliability.png
      logitscope calibrate --json > calibration.json
    """
    data = load_mcq(dataset, skip_bad=skip_bad)  # before the model loads
    report_problems(data.problems, "skipped")
    report = load_model(model).calibrate(data, normalize=normalize, bins=bins, bos=bos_value(bos),
                                         progress=not as_json and sys.stderr.isatty(), template=template,
                                         delimiter=delimiter)
    report_problems(report.notes, "note")
    if plot is not None:
        from ..evaluation.calibration import plot_reliability

        plot_reliability(report, plot)
    if as_json:
        return emit_json(report.to_dict())
    console().print(calibration_view(report))


@click.command("quantize")
@click.argument("args", nargs=-1, required=True, metavar="FILE [BITS...]")
@click.option("--bits", "bits", default="16,8,4,3,2", show_default=True,
              help="Bit widths (1-32): '--bits 16 8 4' or '--bits 16,8,4'.")
@click.option("--scheme", type=click.Choice(["per-tensor", "per-channel"]), default="per-tensor", show_default=True)
@click.option("--symmetric", is_flag=True, help="Grid symmetric around 0 instead of seed 003's min-max grid.")
@click.option("--no-int8", is_flag=True, help="Skip the real PyTorch dynamic-int8 path.")
@click.option("--top-k", default=256, show_default=True, help="Base distribution kept as top-k + remaining mass.")
@click.option("--plot", "plot", type=OutputPath(PLOT_EXTENSIONS), metavar="FILE.png", default=None, help="Write perplexity/KL vs bits (PNG).")
@bos_option
@model_option
@json_option
def quantize_cmd(args, bits, scheme, symmetric, no_int8, top_k, plot, bos, model, as_json):
    """How much does quantizing the weights change the model's predictions on FILE?

    \b
    Examples:
      logitscope quantize notes.txt
      logitscope quantize notes.txt --bits 16 8 4 3 2 --scheme per-channel --plot quant.png
      logitscope quantize - --bits 8,4 --json < notes.txt
    """
    path, widths = split_file_and_bits(args, bits)
    text = read_file(path)  # before the model loads
    report = load_model(model).quantization_impact(
        text, bits=widths, scheme=scheme, symmetric=symmetric, int8=not no_int8, top_k=top_k,
        bos=bos_value(bos), progress=not as_json and sys.stderr.isatty())
    if plot is not None:
        from ..evaluation.quantization import plot_quantization

        plot_quantization(report, plot)
    if as_json:
        return emit_json(report.to_dict())
    console().print(quantization_view(report))


def split_file_and_bits(args: tuple[str, ...], bits: str) -> tuple[str, list[int]]:
    """FILE plus bit widths: click reads '--bits 16 8 4' as --bits=16 and two loose args."""
    loose = [a for a in args if a.lstrip("-").isdigit()]
    files = [a for a in args if a not in loose or a == "-"]
    if len(files) != 1:
        raise InputError(f"expected one FILE, got {files or 'none'}", hint="e.g. logitscope quantize notes.txt")
    words = bits.replace(",", " ").split() + loose
    if not all(w.lstrip("-").isdigit() for w in words) or not words:
        raise InputError(f"--bits {bits!r} is not a list of integers", hint="e.g. --bits 16 8 4 3 2")
    return files[0], [check_bits(int(w)) for w in words]  # before the model loads


# -- terminal views ----------------------------------------------------------------------------
def calibration_view(report) -> Group:
    m, t = report.metrics, report.temperature
    head = Text(f"{report.source}: {m.n} questions, normalize={report.normalize}\n"
                f"accuracy {m.accuracy:.3f} · ECE {m.ece:.4f} (equal-mass {m.ece_equal_mass:.4f}) · "
                f"MCE {m.mce:.4f} · Brier {m.brier:.4f} (top-label {m.brier_top_label:.4f}) · NLL {m.nll:.4f}")
    table = Table(title="reliability (equal-width bins)", title_justify="left")
    for col in ("confidence", "n", "accuracy", "mean conf", "gap"):
        table.add_column(col, justify="right")
    for b in m.bins:
        table.add_row(f"({b.low:.2f}, {b.high:.2f}]", str(b.count), _num(b.accuracy), _num(b.confidence),
                      _num(b.gap) if b.count else "–")
    parts = [head, table]
    if t is not None:
        parts.append(Text(
            f"temperature scaling: T = {t.temperature:.3f} fitted on {t.fit_size} questions "
            f"(NLL {t.nll_fit_before:.4f} -> {t.nll_fit_after:.4f}); held-out {t.before.n}: "
            f"ECE {t.before.ece:.4f} -> {t.after.ece:.4f}, NLL {t.before.nll:.4f} -> {t.after.nll:.4f}"))
    if report.problems:
        parts.append(Text(f"skipped {len(report.problems)} malformed line(s) (listed on stderr)", style="yellow"))
    return Group(*parts)


def quantization_view(report, worst: int = 8) -> Group:
    head = Text(f"{report.model}: {report.num_tokens} scored tokens; base float32 {report.base_bytes:,} bytes, "
                f"perplexity {report.base_perplexity:.4f}; base kept as top-{report.top_k} + rest "
                f"({report.base_store_bytes:,} bytes)")
    grid = "symmetric" if report.symmetric else "affine (min-max)"
    table = Table(title=f"weights quantized {report.scheme}, {grid}; KL in nats; top= same top token %; Δp (mean, rms) of p(correct) %", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("variant", "MB", "PPL", "KL mean", "KL med", "KL p99", "top=", "Δp", "rms"):
        table.add_column(col, justify="left" if col == "variant" else "right", no_wrap=True)
    for v in report.variants:
        table.add_row(v.label, f"{v.size_bytes / 1e6:.0f}", f"{v.perplexity:.4g}", f"{v.kl_mean:.2g}",
                      f"{v.kl_median:.2g}", f"{v.kl_p99:.2g}", f"{100 * v.same_top:.1f}",
                      f"{100 * v.delta_p_mean:+.1f}", f"{100 * v.delta_p_rms:.1f}")
    shown = _view_variant(report)
    parts = [head, table]
    if shown is not None:
        parts += [Text(f"\nper-token KL, {shown.label} (green <= 0.001 nats ... red >= 1 nat):"),
                  kl_heatmap(report.token_texts, shown.token_kl), _worst_tokens(report, shown, worst)]
    return Group(*parts)


def _view_variant(report):
    """The variant worth looking at token by token: the most damaged one with mean KL < 1 nat."""
    usable = [v for v in report.variants if v.kl_mean < 1.0] or list(report.variants)
    return max(usable, key=lambda v: v.kl_mean) if usable else None


def kl_colour(kl: float) -> str:
    """Green (KL <= 1e-3 nats) through yellow to red (KL >= 1 nat), log scale."""
    share = min(max((math.log10(max(kl, 1e-12)) + 3.0) / 3.0, 0.0), 1.0)
    red, green = int(200 * min(1.0, 2 * share)), int(160 * min(1.0, 2 * (1 - share)))
    return f"#{red:02x}{green:02x}30"


def kl_heatmap(texts, kls) -> Text:
    out = Text()
    for text, kl in zip(texts, kls):
        out.append(text, style=f"white on {kl_colour(kl)}")
    return out


def _worst_tokens(report, variant, n: int) -> Table:
    table = Table(title=f"largest KL, {variant.label}", title_justify="left")
    for col in ("token #", "token", "KL (nats)"):
        table.add_column(col, justify="left" if col == "token" else "right")
    order = sorted(range(len(variant.token_kl)), key=lambda i: -variant.token_kl[i])[:n]
    for i in order:
        table.add_row(str(i), repr(show_token(report.token_texts[i])), f"{variant.token_kl[i]:.4f}")
    return table


def _num(value, digits: int = 4) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


COMMANDS = [calibrate_cmd, quantize_cmd]
