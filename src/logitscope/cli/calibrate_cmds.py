"""`calibrate` (multiple-choice accuracy and calibration) and `quantize` (what weight
quantization costs): thin adapters over logitscope.evaluation.calibration and .quantization."""

from __future__ import annotations

import sys

import click

from ..errors import InputError
from ..evaluation.calibration import DELIMITER, PROMPT_TEMPLATE, check_template, load_mcq
from ..evaluation.quantization import check_bits
from .common import (PLOT_EXTENSIONS, InputFile, OutputPath, bos_option, bos_value, json_option, load_model,
                     model_option, option_names, read_file, report_problems, show)


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
    show(report, as_json)  # the numbers first: a failed write loses none
    if plot is not None:
        report.plot(save_to=plot)


@click.command("quantize")
@click.argument("args", nargs=-1, required=True, metavar="FILE [BITS...]")
@click.option("--bits", "bits", default="16,8,4,3,2", show_default=True,
              help="Bit widths (1-32): '--bits 16 8 4' or '--bits 16,8,4'.")
@click.option("--scheme", type=click.Choice(["per-tensor", "per-channel"]), default="per-tensor", show_default=True)
@click.option("--symmetric", is_flag=True, help="Grid symmetric around 0 instead of the min-max (affine) grid.")
@click.option("--which", type=click.Choice(["matrices", "all"]), default="matrices", show_default=True,
              help="Round the weight matrices only, or every parameter (biases and norm scales too).")
@click.option("--no-int8", is_flag=True, help="Skip the real PyTorch dynamic-int8 path.")
@click.option("--base-top-k", "base_top_k", default=256, show_default=True,
              help="Keep the base distribution as its N likeliest tokens + the remaining mass.")
@click.option("--plot", "plot", type=OutputPath(PLOT_EXTENSIONS), metavar="FILE.png", default=None,
              help="Write perplexity/KL vs bits (PNG).")
@bos_option
@model_option
@json_option
@option_names(top_k="base_top_k")
def quantize_cmd(args, bits, scheme, symmetric, which, no_int8, base_top_k, plot, bos, model, as_json):
    """How much does quantizing the weights change the model's predictions on FILE?

    \b
    Examples:
      logitscope quantize notes.txt
      logitscope quantize notes.txt --bits 16 8 4 3 2 --scheme per-channel --plot quant.png
      logitscope quantize - --bits 8,4 --json < notes.txt
      logitscope quantize notes.txt --bits 8 4 --which all --no-int8
    """
    path, widths = split_file_and_bits(args, bits)
    text = read_file(path)  # before the model loads
    report = load_model(model).quantization_impact(
        text, bits=widths, scheme=scheme, symmetric=symmetric, int8=not no_int8, top_k=base_top_k,
        bos=bos_value(bos), progress=not as_json and sys.stderr.isatty(), which=which)
    show(report, as_json)  # the numbers first: a failed write loses none
    if plot is not None:
        report.plot(save_to=plot)


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


COMMANDS = [calibrate_cmd, quantize_cmd]
