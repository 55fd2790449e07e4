"""`next`, `score` and `tokenize`: the foundation commands."""

from __future__ import annotations

import click

from .common import (HTML_EXTENSIONS, InputFile, OutputPath, bos_option, bos_value, console, json_option, load_model,
                     model_option, option_names, read_text, show)


@click.command("next")
@click.argument("prompt")
@click.option("-k", "--show", "rows", default=10, show_default=True, help="How many top tokens to list.")
@click.option("-t", "--temperature", default=1.0, show_default=True, help="Softmax temperature (> 0).")
@bos_option
@model_option
@json_option
@option_names(top_k="rows")
def next_cmd(prompt, rows, temperature, bos, model, as_json):
    """Show the next-token distribution after PROMPT.

    \b
    Examples:
      logitscope next "To be or not to"
      logitscope next "The capital of France is" -k 5 --temperature 0.7 --json

    -k is how many rows to show (as in every command); the next-token distribution is
    the model's own, before any sampler (see `dist` for --top-k and the other stages).
    """
    result = load_model(model).next_token(prompt, top_k=rows, temperature=temperature, bos=bos_value(bos))
    show(result, as_json)


@click.command("score")
@click.argument("text", required=False)
@click.option("-f", "--file", "file", type=InputFile(), help="Read the text from FILE ('-' for stdin).")
@click.option("-c", "--context", default=None, help="Condition on this context; score only TEXT (answer-only).")
@click.option("--alternatives", default=3, show_default=True, help="Top alternatives kept per token.")
@click.option("--table", is_flag=True, help="Also print a per-token table.")
@click.option("--window", type=int, default=None, help="Tokens per window for long texts (default: model context).")
@click.option("--stride", type=int, default=None, help="Window stride (default: window/2).")
@click.option("--html", "html_path", type=OutputPath(HTML_EXTENSIONS), default=None, help="Also write a self-contained HTML heatmap (hover a token).")
@click.option("--color-by", type=click.Choice(["prob", "rank", "entropy"]), default="prob", show_default=True,
              help="Colour tokens by probability, GLTR rank bucket or entropy.")
@click.option("--palette", type=click.Choice(["viridis", "classic"]), default="viridis", show_default=True,
              help="Colour scale: viridis (colour-blind safe) or classic (red to green, GLTR's rank colours).")
@bos_option
@model_option
@json_option
@option_names(top_k="alternatives")
def score_cmd(text, file, context, alternatives, table, window, stride, html_path, color_by, palette, bos, model,
              as_json):
    """Score TEXT (or -f FILE) token by token: a coloured heatmap with totals.

    \b
    Examples:
      logitscope score "The capital of France is Paris."
      logitscope score " Paris" --context "The capital of France is" --table
      logitscope score -f notes.txt --json
      logitscope score "The capital of Australia is Vienna." --html out.html --color-by rank
    """
    body = read_text(text, file)
    result = load_model(model).score(body, context=context, top_k=alternatives, bos=bos_value(bos),
                                     window=window, stride=stride)
    # the numbers first: a failed write of the page loses none
    show(result, as_json, table=table, color_by=color_by, palette_name=palette)
    if html_path is not None:
        from ..views.html import write_html

        click.echo(f"wrote {write_html(result, html_path, color_by, palette)}", err=True)


@click.command("tokenize")
@click.argument("text")
@model_option
@json_option
def tokenize_cmd(text, model, as_json):
    """Show how TEXT splits into tokens (id, text, character span).

    \b
    Example:
      logitscope tokenize "Tokenization isn't always intuitive."
    """
    result = load_model(model).tokenize(text)
    show(result, as_json, data=[t.to_dict() for t in result.tokens])  # JSON: the list of tokens


DEMO_PROMPT = "To be or not to"
DEMO_TEXT = "The capital of France is Paris, and the capital of Germany is Madrid."


@click.command("demo")
@model_option
def demo_cmd(model):
    """The main job: a next-token table and a per-token heatmap.

    \b
    Example:
      logitscope demo            # on the bundled SmolLM2-135M-Instruct
    """
    from ..views.terminal import render

    m = load_model(model)
    out = console()
    out.print(f"model: {m!r}")
    prompt, text = m.backend.demo_texts or (DEMO_PROMPT, DEMO_TEXT)  # the toy model knows ~13 words
    out.print(m.next_token(prompt, top_k=10))
    out.print(render(m.score(text), table=True))


COMMANDS = [next_cmd, score_cmd, tokenize_cmd, demo_cmd]
