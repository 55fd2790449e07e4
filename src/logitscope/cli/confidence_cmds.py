"""`uncertain`, `truth`, `rank` and `lift`: judging text by its token probabilities."""

from __future__ import annotations

import sys

import click

from ..confidence.lift import DEFAULT_MIN_LIFT
from ..errors import InputError
from ..confidence.ranking import NORMALISATIONS
from ..confidence.uncertainty import DEFAULT_MAX_ENTROPY, DEFAULT_MAX_PROB
from .common import (HTML_EXTENSIONS, PLOT_EXTENSIONS, InputFile, OutputPath, bos_option, bos_value, exit_on_problems,
                     json_option, load_model, model_option, read_text, show)


@click.command("uncertain")
@click.argument("text", required=False)
@click.option("-f", "--file", "file", type=InputFile(), help="Read the text from FILE ('-' for stdin).")
@click.option("--max-prob-below", type=float, default=DEFAULT_MAX_PROB, show_default=True,
              help="Flag a token whose probability is below P (0..1; 0 switches this test off).")
@click.option("--entropy-above", type=float, default=DEFAULT_MAX_ENTROPY, show_default=True,
              help="Flag a token drawn from a distribution with entropy above H nats (>= 0; 'inf' switches "
                   "it off). 4 nats is as spread out as a fair choice among ~55 tokens.")
@click.option("--html", "html_path", type=OutputPath(HTML_EXTENSIONS), default=None, help="Also write a self-contained HTML heatmap here.")
@bos_option
@model_option
@json_option
def uncertain_cmd(text, file, max_prob_below, entropy_above, html_path, bos, model, as_json):
    """Mark where the model was unsure about TEXT: flagged tokens merged into word spans.

    \b
    Examples:
      logitscope uncertain "The capital of Australia is Vienna."
      logitscope uncertain -f answer.txt --max-prob-below 0.05 --entropy-above inf --json
    """
    body = read_text(text, file)  # before the model loads
    result = load_model(model).uncertain(body, max_prob_below, entropy_above, bos=bos_value(bos))
    show(result, as_json)  # the numbers first: a failed write loses none
    if html_path is not None:
        from ..views.html import write_html

        _wrote(write_html(result.scored, html_path, "prob"))


@click.command("truth")
@click.argument("dataset", required=False, type=InputFile(allow_stdin=False))
@click.option("--plot", "plot_path", type=OutputPath(PLOT_EXTENSIONS), default=None, help="Write ROC curves and pair accuracies to this PNG.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N pairs.")
@model_option
@json_option
def truth_cmd(dataset, plot_path, limit, model, as_json):
    """How well do confidence measures tell true statements from false ones?

    DATASET is a JSON-lines file of {"true": ..., "false": ...} pairs; default: the
    bundled 165 pairs (capitals, arithmetic, dates, science, common knowledge).

    \b
    Examples:
      logitscope truth --plot truth.png
      logitscope truth my_pairs.jsonl --limit 50 --json
    """
    from ..confidence.truth import load_pairs

    pairs = load_pairs(dataset)[:limit]  # before the model loads
    result = load_model(model).truth(pairs, progress=not as_json and sys.stderr.isatty())
    show(result, as_json)  # the numbers first: a failed write loses none
    if plot_path is not None:
        result.plot(save_to=plot_path)
        _wrote(plot_path)


@click.command("rank")
@click.argument("prompt")
@click.option("-c", "--candidate", "candidates", multiple=True, help="A candidate continuation (repeat).")
@click.option("--by", type=click.Choice(NORMALISATIONS), default="sum", show_default=True,
              help="Normalisation that orders the table.")
@click.option("--tokens", is_flag=True, help="Show per-token log-probs of every candidate.")
@click.option("--no-pmi", is_flag=True, help="Skip the unconditional pass that PMI needs.")
@bos_option
@model_option
@json_option
def rank_cmd(prompt, candidates, by, tokens, no_pmi, bos, model, as_json):
    """Rank candidate continuations of PROMPT (the prompt runs once; its KV cache is reused).

    \b
    Examples:
      logitscope rank "The capital of France is" -c " Paris" -c " Lyon" -c " Berlin"
      logitscope rank "Q: 2+2=? A:" -c " 4" -c " four" -c " 5" --by mean --tokens --json
    """
    if by == "pmi" and no_pmi:
        raise InputError("--by pmi needs the unconditional pass that --no-pmi skips",
                         hint="drop --no-pmi, or order --by sum, mean, per_byte or per_char")
    result = load_model(model).rank(prompt, list(candidates), top_k=3 if tokens else 0, bos=bos_value(bos),
                                    unconditional=not no_pmi)
    show(result, as_json, by=by, tokens=tokens)


@click.command("lift")
@click.option("-q", "--question", required=True, help="The question (the prompt the answer follows).")
@click.option("-a", "--answer", required=True, help="The answer to score.")
@click.option("-c", "--context", "contexts", multiple=True, required=True, help="A retrieved passage (repeat).")
@click.option("--min-lift", type=float, default=DEFAULT_MIN_LIFT, show_default=True,
              help="Nats of lift a context must give to count as supporting the answer.")
@bos_option
@model_option
@json_option
def lift_cmd(question, answer, contexts, min_lift, bos, model, as_json):
    """How much did each context raise the answer's log-probability (PMI, nats)?

    \b
    Examples:
      logitscope lift -q "Q: What is the capital of Australia? A:" -a " Canberra" \\
          -c "Canberra is the capital of Australia." -c "Bananas are yellow."
    """
    result = load_model(model).context_lift(question, answer, list(contexts), min_lift, bos=bos_value(bos))
    show(result, as_json)
    exit_on_problems(result.skipped)  # contexts that did not fit: after the others were shown


def _wrote(path) -> None:
    click.echo(f"wrote {path}", err=True)


COMMANDS = [uncertain_cmd, truth_cmd, rank_cmd, lift_cmd]
