"""`uncertain`, `truth`, `rank` and `lift`: judging text by its token probabilities."""

from __future__ import annotations

import sys

import click
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..errors import InputError
from ..views import heatmap
from ..confidence.lift import DEFAULT_MIN_LIFT, LiftResult
from ..confidence.ranking import NORMALISATIONS, RankResult
from ..confidence.truth import TruthResult
from ..confidence.uncertainty import DEFAULT_MAX_ENTROPY, DEFAULT_MAX_PROB, UncertaintyResult
from .common import (HTML_EXTENSIONS, PLOT_EXTENSIONS, InputFile, OutputPath, bos_option, bos_value, console,
                     emit_json, exit_on_problems, json_option, load_model, model_option, read_text)


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
    if html_path is not None:
        _wrote(heatmap.write_html(result.scored, html_path, "prob"))
    if as_json:
        return emit_json(result.to_dict())
    console().print(heatmap.terminal_heatmap(result.scored, "prob"), _uncertainty_view(result))


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
    from ..confidence.truth import evaluate, load_pairs, plot

    pairs = load_pairs(dataset)[:limit]  # before the model loads
    m = load_model(model)
    result = evaluate(m.backend, pairs, progress=not as_json and sys.stderr.isatty())
    if plot_path is not None:
        _wrote(plot(result, plot_path))
    if as_json:
        return emit_json(result.to_dict())
    console().print(_truth_table(result))


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
    if as_json:
        return emit_json(result.to_dict())
    console().print(_rank_table(result, by, tokens))


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
    if as_json:
        emit_json(result.to_dict())
    else:
        console().print(_lift_table(result))
    exit_on_problems(result.skipped)  # contexts that did not fit: after the others were shown


# -- presentation -------------------------------------------------------------------------
def _wrote(path) -> None:
    click.echo(f"wrote {path}", err=True)


def _uncertainty_view(result: UncertaintyResult) -> Group:
    s = result.summary()
    summary = Text(f"{s['num_flagged']} of {s['num_scored']} tokens flagged · min p {_fmt_p(s['min_token_prob'])}"
                   f" · mean log p {s['mean_logprob']:.3f} · mean entropy {s['mean_entropy']:.3f} nats"
                   f" · MSP {s['msp']:.3f} nats")
    table = Table(title="uncertain spans", title_justify="left")
    for col in ("span", "chars", "min p", "max entropy"):
        table.add_column(col, justify="left" if col == "span" else "right")
    for sp in result.spans:
        table.add_row(repr(sp.text), f"{sp.start}-{sp.end}", _fmt_p(sp.min_prob), f"{sp.max_entropy:.3f}")
    return Group(summary, table)


def _fmt_p(p: float) -> str:
    return f"{p:.4f}" if p >= 1e-3 else f"{p:.2e}"


def _truth_table(result: TruthResult) -> Table:
    cats = list(result.reports[0].by_category)
    table = Table(title=f"true vs false, {result.num_pairs} pairs (0.5 = chance)", title_justify="left")
    for col in ("measure", "pair acc.", "AUROC", *cats):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for r in result.reports:
        table.add_row(r.measure, f"{r.pair_accuracy:.3f}", f"{r.auroc:.3f}", *(f"{r.by_category[c]:.2f}" for c in cats))
    return table


def _rank_table(result: RankResult, by: str, tokens: bool) -> Table:
    table = Table(title=f"candidates after {result.prompt!r}, ordered by {by} "
                        f"(shared prefix: {result.shared_prefix_tokens} tokens)", title_justify="left",
                  caption="\n".join(result.notes) or None, caption_justify="left")
    for col in ("#", "candidate", "tokens", *NORMALISATIONS):
        table.add_column(col, justify="left" if col == "candidate" else "right")
    orders = {n: result.order(n) for n in NORMALISATIONS}
    for i in orders[by]:
        c = result.candidates[i]
        cells = [_fmt_rank(c.score(n), orders[n].index(i) + 1) for n in NORMALISATIONS]
        detail = " ".join(f"{t.text!r}:{t.logprob:.2f}" for t in c.result.scored_tokens) if tokens else ""
        table.add_row(str(orders[by].index(i) + 1), repr(c.candidate) + (f"\n{detail}" if detail else ""),
                      str(c.num_tokens), *cells)
    return table


def _fmt_rank(value: float | None, place: int) -> str:
    return "–" if value is None else f"{value:.3f} (#{place})"


def _lift_table(result: LiftResult) -> Table:
    verdict = "supported" if result.supported else "NOT supported by any context"
    table = Table(title=f"answer {result.answer!r}: log p without context {result.total_without:.3f} · {verdict}"
                        f" (min lift {result.min_lift:g} nats)", title_justify="left")
    for col in ("context", "log p with", "lift (nats)", "supported", "tokens the context made likely"):
        table.add_column(col, justify="left" if col in ("context", "tokens the context made likely") else "right")
    for c in result.contexts:
        short = c.context if len(c.context) <= 50 else c.context[:47] + "..."
        made = ", ".join(f"{t.text!r} {t.lift:+.2f}" for t in c.lifted_tokens) if c.aligned else "(tokens differ)"
        table.add_row(repr(short), f"{c.total_with:.3f}", Text(f"{c.lift:+.3f}", style="green" if c.supported
                      else "red"), "yes" if c.supported else "no", made)
    return table


COMMANDS = [uncertain_cmd, truth_cmd, rank_cmd, lift_cmd]
