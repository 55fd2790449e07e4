"""`dist`, `sample`, `generate`, `beam` and `tree`: sampling and generation commands."""

from __future__ import annotations

import math

import click

from ..errors import InputError
from ..core.textgate import for_terminal
from .common import (PLOT_EXTENSIONS, OutputPath, bos_option, bos_value, json_option, load_model, model_option,
                     option_names, seed_option, show)


def strategy_options(func):
    """--temperature/--top-k/--top-p/--min-p/--repetition-penalty/--bias, shared by the sampling commands."""
    for opt in reversed([
        click.option("-t", "--temperature", default=1.0, show_default=True, help="Temperature >= 0 (0 = greedy)."),
        click.option("--top-k", type=int, default=None,
                     help="Sampler stage: keep the k most likely tokens (ties kept), k >= 1."),
        click.option("--top-p", default=1.0, show_default=True, help="Nucleus: smallest set reaching p, in (0, 1]."),
        click.option("--min-p", default=0.0, show_default=True, help="Keep p >= min_p * p_max, in [0, 1]."),
        click.option("--repetition-penalty", default=1.0, show_default=True, help="> 1 discourages repeats."),
        click.option("--bias", multiple=True, metavar="TOKEN=VALUE",
                     help="Add VALUE to a token's logit (-inf bans it); TOKEN is an id or a string. Repeatable."),
    ]):
        func = opt(func)
    return func


def sampler_config(temperature, top_k, top_p, min_p, repetition_penalty, bias):
    from ..core.processors import SamplerConfig

    return SamplerConfig.of(temperature, top_k, top_p, min_p, repetition_penalty, [parse_bias(b) for b in bias])


def parse_bias(item: str) -> tuple[int | str, float]:
    """'123=-inf' -> (123, -inf); ' Paris=5' -> (' Paris', 5.0)."""
    token, sep, value = item.rpartition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not sep or not token or math.isnan(number):
        raise InputError(f"--bias {item!r} is not TOKEN=VALUE", hint="e.g. --bias ' Paris=-inf' or --bias 42=2.5")
    return (int(token) if token.lstrip("-").isdigit() else token), number


@click.command("dist")
@click.argument("prompt")
@strategy_options
@click.option("-k", "--show", "rows", default=8, show_default=True, help="How many top tokens to list per stage.")
@click.option("--plot", "plot_path", type=OutputPath(PLOT_EXTENSIONS), default=None, metavar="FILE.png",
              help="Draw the stages side by side.")
@bos_option
@model_option
@json_option
@option_names(top="rows")
def dist_cmd(prompt, temperature, top_k, top_p, min_p, repetition_penalty, bias, rows, plot_path, bos, model,
             as_json):
    """Show the next-token distribution after each stage of the sampler chain.

    \b
    Examples:
      logitscope dist "The capital of France is" -t 0.7 --top-k 20 --top-p 0.9
      logitscope dist "Once upon a" --min-p 0.1 --bias ' time=-inf' --plot chain.png

    --top-k is the sampler's top-k stage; -k is how many rows to show.
    """
    config = sampler_config(temperature, top_k, top_p, min_p, repetition_penalty, bias)
    result = load_model(model).chain(prompt, config, bos=bos_value(bos), top=rows)
    show(result, as_json)  # the numbers first: a failed write loses none
    if plot_path is not None:
        result.plot(save_to=plot_path)


@click.command("sample")
@click.argument("prompt")
@click.option("-n", "n", default=1000, show_default=True, help="Number of draws.")
@seed_option
@strategy_options
@bos_option
@model_option
@json_option
def sample_cmd(prompt, n, seed, temperature, top_k, top_p, min_p, repetition_penalty, bias, bos, model, as_json):
    """Draw N next tokens and compare their frequencies with the processed probabilities.

    \b
    Examples:
      logitscope sample "See you" -n 1000 --seed 1
      logitscope sample "See you" -n 5000 --top-k 10 --json
    """
    config = sampler_config(temperature, top_k, top_p, min_p, repetition_penalty, bias)
    result = load_model(model).sample(prompt, n, config, seed=seed, bos=bos_value(bos))
    show(result, as_json)


@click.command("generate")
@click.argument("prompt")
@click.option("-n", "--max-new-tokens", default=40, show_default=True, help="Most tokens to generate.")
@seed_option
@click.option("--stop", multiple=True, help="Stop once the new text contains this string. Repeatable.")
@click.option("--trace", is_flag=True, help="Print the per-step table after the text.")
@strategy_options
@bos_option
@model_option
@json_option
def generate_cmd(prompt, max_new_tokens, seed, stop, trace, temperature, top_k, top_p, min_p, repetition_penalty,
                 bias, bos, model, as_json):
    """Generate text after PROMPT (streamed), optionally with a per-step trace.

    \b
    Examples:
      logitscope generate "The capital of France is" -n 20 -t 0
      logitscope generate "Once upon a time" --top-p 0.9 --seed 3 --stop "." --trace
    """
    config = sampler_config(temperature, top_k, top_p, min_p, repetition_penalty, bias)
    on_text = None if as_json else (lambda piece: click.echo(for_terminal(piece), nl=False))
    result = load_model(model).generate(prompt, max_new_tokens, config, seed=seed, stop=stop, bos=bos_value(bos),
                                        on_text=on_text)
    show(result, as_json, show_text=False, trace=trace)  # the text was streamed above


@click.command("beam")
@click.argument("prompt")
@click.option("-b", "--beams", default=4, show_default=True, help="Beam width (1-64).")
@click.option("-n", "--max-new-tokens", default=20, show_default=True, help="Most tokens per beam.")
@click.option("--alpha", default=1.0, show_default=True, help="Length normalisation: score / len**alpha.")
@bos_option
@model_option
@json_option
@option_names(num_beams="beams")
def beam_cmd(prompt, beams, max_new_tokens, alpha, bos, model, as_json):
    """Beam search with length normalisation, compared with greedy decoding.

    \b
    Examples:
      logitscope beam "The capital of France is" --beams 4 -n 12
      logitscope beam "Q: What is 2+2?\\nA:" --beams 3 --alpha 0.6 --json
    """
    result = load_model(model).beam_search(prompt, beams, max_new_tokens, alpha, bos=bos_value(bos))
    show(result, as_json)


@click.command("tree")
@click.argument("prompt")
@click.option("-d", "--depth", default=3, show_default=True, help="Levels to expand (1-12).")
@click.option("-b", "--branch", default=3, show_default=True, help="Top tokens per node (1-50).")
@click.option("--min-prob", default=0.0, show_default=True, help="Drop children with p below this.")
@click.option("--image", "image_path", type=OutputPath(PLOT_EXTENSIONS), default=None, metavar="FILE.png", help="Also draw the tree.")
@bos_option
@model_option
@json_option
def tree_cmd(prompt, depth, branch, min_prob, image_path, bos, model, as_json):
    """The tree of possibilities: top-B tokens at each step, to depth D.

    \b
    Examples:
      logitscope tree "The capital of France is" --depth 3 --branch 3
      logitscope tree "Once upon a" -d 2 -b 4 --min-prob 0.05 --image tree.png
    """
    result = load_model(model).tree(prompt, depth, branch, min_prob, bos=bos_value(bos))
    show(result, as_json)  # the numbers first: a failed write loses none
    if image_path is not None:
        result.plot(save_to=image_path)


COMMANDS = [dist_cmd, sample_cmd, generate_cmd, beam_cmd, tree_cmd]
