"""Every result type shows itself as a notebook would show it: _repr_html_(), plot(),
__rich__() through a rich Console, and to_dataframe(); the one offsets-based heatmap; and
analysis modules that never import rich or matplotlib."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from html.parser import HTMLParser

import pandas as pd
import pytest
from matplotlib.figure import Figure
from rich.console import Console

import logitscope
from logitscope import CapabilityError, InputError
from logitscope.backends.toy import ToyBackend
from logitscope.confidence.truth import StatementPair, evaluate
from logitscope.core.processors import SamplerConfig
from logitscope.evaluation import calibration as cal
from logitscope.evaluation.quantization import QuantizationReport, VariantStats
from logitscope.views import html as html_views
from logitscope.views import terminal
from logitscope.views.text import show_token
from tolerances import printed

ANALYSIS_MODULES = [
    "logitscope", "logitscope.model", "logitscope.results", "logitscope.loading",
    "logitscope.core.mathops", "logitscope.core.calibration_math", "logitscope.core.processors",
    "logitscope.core.boundary", "logitscope.core.corpus",
    "logitscope.backends.base", "logitscope.backends.hf", "logitscope.backends.fast_forward", "logitscope.backends.toy",
    "logitscope.scoring.score", "logitscope.scoring.perplexity",
    "logitscope.sampling.generation", "logitscope.sampling.chain", "logitscope.sampling.session",
    "logitscope.sampling.beam", "logitscope.sampling.tree",
    "logitscope.core.topk_chain", "logitscope.sampling.topk_decode",
    "logitscope.confidence.ranking", "logitscope.confidence.lift", "logitscope.confidence.uncertainty",
    "logitscope.confidence.truth", "logitscope.evaluation.calibration", "logitscope.evaluation.quantization",
]


@pytest.fixture(scope="module")
def toy():
    return logitscope.load("toy")


def quantization_report() -> QuantizationReport:
    """A small report as quantization_impact builds it (its numbers are the view's input, not under test)."""
    def variant(label, bits, kl):
        return VariantStats(label, bits, 1_000_000 * (bits or 8) // 8, 12.0 + 10 * kl, kl, kl / 2, 4 * kl, 8 * kl,
                            1 - kl / 2, -kl / 10, kl / 5, 0.1, (kl / 2, kl, 2 * kl))
    return QuantizationReport("toy-hf", "per-tensor", False, 3, 256, 4_000_000, 12.0, 24_000,
                              (variant("8-bit", 8, 0.001), variant("4-bit", 4, 0.2), variant("2-bit", 2, 3.0),
                               variant("int8 torch", None, 0.002)), (1, 2, 3), (" the", " cat", " sat"))


def calibration_report():
    """Six two-choice questions on a toy model that saw "Question: pick Answer: cat" most."""
    corpus = ["Question: pick Answer: cat"] * 3 + ["Question: pick Answer: dog", "Question: pick Answer: big dog"]
    backend = ToyBackend.from_ngrams(corpus, order=2, alpha=0.1)
    items = tuple(cal.McqItem("pick", pair, answer) for pair, answer in
                  [(("cat", "dog"), 0), (("dog", "cat"), 0), (("big dog", "cat"), 1), (("cat", "big dog"), 1),
                   (("dog", "big dog"), 0), (("cat", "dog"), 0)])
    return cal.evaluate(backend, cal.McqDataset("toy", items, ()), bins=5)


def every_result(toy) -> dict:
    """One result of every type, from the toy model (the quantization report is built by hand:
    quantization needs a transformers model)."""
    pairs = [StatementPair("1", "toy", "the cat sat", "the cat be"),
             StatementPair("2", "toy", "the dog sat", "the dog or")]
    corpus = ["the cat sat on the mat", "the dog slept"]
    return {
        "NextTokenResult": toy.next_token("the", top_k=4),
        "ScoreResult": toy.score("the cat sat on the mat", bos=True),
        "TokenizeResult": toy.tokenize("the cat sat"),
        "PerplexityResult": toy.perplexity(texts=corpus, window=4),
        "PerplexityComparison": toy.compare_conventions(texts=corpus, window=4),
        "ChainResult": toy.chain("the", SamplerConfig(temperature=0.7, top_k=3), top=4),
        "SampleResult": toy.sample("the", 200, seed=1),
        "GenerationResult": toy.generate("the", 6, seed=2),
        "BeamResult": toy.beam_search("the", 2, 4),
        "TreeResult": toy.tree("the", 2, 2),
        "RankResult": toy.rank("the", [" cat", " dog", " mat"]),
        "LiftResult": toy.context_lift("the", " cat sat", ["the cat sat on the mat", "to be or not"], min_lift=0.5),
        "UncertaintyResult": toy.uncertain("the cat sat on the mat", 0.3, None),
        "TruthResult": evaluate(toy.backend, pairs),
        "CalibrationReport": calibration_report(),
        "QuantizationReport": quantization_report(),
    }


RESULT_TYPES = [
    "NextTokenResult", "ScoreResult", "TokenizeResult", "PerplexityResult", "PerplexityComparison", "ChainResult",
    "SampleResult", "GenerationResult", "BeamResult", "TreeResult", "RankResult", "LiftResult", "UncertaintyResult",
    "TruthResult", "CalibrationReport", "QuantizationReport"]


@pytest.fixture(scope="module")
def results(toy):
    return every_result(toy)


def rich_text(renderable, width: int = 120) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return out.getvalue()


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.parametrize("name", RESULT_TYPES)
def test_a_result_displays_itself_like_in_a_notebook(results, name):
    result = results[name]
    assert type(result).__name__ == name

    page = result._repr_html_()
    parsed = Tags()
    parsed.feed(page)
    assert page.startswith('<div class="logitscope">') and "script" not in parsed.tags
    assert "table" in parsed.tags or "pre" in parsed.tags or "span" in parsed.tags

    fig = result.plot()
    assert isinstance(fig, Figure) and fig.axes
    assert any(ax.has_data() for ax in fig.axes)

    shown = rich_text(result)
    assert shown.strip() and "object at 0x" not in shown
    # the terminal and the notebook show the same words
    words = [w for w in shown.split() if w.isalpha() and len(w) > 3][:5]
    assert words and all(w in "".join(parsed.text) for w in words)

    frame = result.to_dataframe()
    assert isinstance(frame, pd.DataFrame) and len(frame) > 0
    json.loads(result.to_json())


def test_every_public_result_type_is_covered(results):
    public = {n for n in logitscope.__all__ if n.endswith(("Result", "Report", "Comparison"))}
    assert public <= set(results)


def test_plot_draws_into_given_axes_and_writes_only_when_asked(results, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fig = Figure()
    ax = fig.subplots()
    assert results["LiftResult"].plot(ax=ax) is fig and ax.patches  # one bar per context
    truth = results["TruthResult"]
    two = Figure().subplots(1, 2)
    assert truth.plot(ax=two) is two[0].figure and two[0].lines and two[1].patches
    assert truth.plot(ax=Figure().subplots()).axes[0].lines  # one Axes: the main panel (ROC)
    assert list(tmp_path.iterdir()) == []
    out = truth.plot(save_to=tmp_path / "t.svg")
    assert isinstance(out, Figure) and (tmp_path / "t.svg").read_text().lstrip().startswith("<?xml")


def test_plot_data_is_the_results_numbers(results):
    score = results["ScoreResult"]
    probs, bits = score.plot().axes
    assert [p.get_height() for p in probs.patches] == pytest.approx([t.prob for t in score.scored_tokens])
    assert list(bits.lines[0].get_ydata()) == pytest.approx([t.surprisal_bits for t in score.scored_tokens])
    gen = results["GenerationResult"]
    trace, entropy = gen.plot().axes
    assert list(trace.lines[0].get_ydata()) == pytest.approx([s.prob for s in gen.steps])
    assert [p.get_height() for p in entropy.patches] == pytest.approx([s.entropy for s in gen.steps])
    chain = results["ChainResult"]
    assert len(chain.plot().axes) == len(chain.stages)


def test_a_part_of_a_result_has_a_plain_fallback(results):
    candidate = results["NextTokenResult"].top[0]
    assert candidate._repr_html_() is None  # Jupyter then shows the repr
    assert "TokenCandidate" in rich_text(candidate)
    with pytest.raises(CapabilityError, match="has no plot"):
        candidate.plot()


def test_view_options_reach_the_views(results):
    rank = results["RankResult"]
    assert "ordered by mean" in rich_text(terminal.render(rank, by="mean"))
    score = results["ScoreResult"]
    assert "per-token scores" in rich_text(terminal.render(score, table=True))
    assert "colour by entropy" in rich_text(terminal.render(score, color_by="entropy"))
    assert rank.plot(by="pmi").axes[0].get_xlabel().startswith("score (pmi")


def test_top_k_results_are_labelled_in_every_view(toy):
    from logitscope.backends.topk import TopKBackend

    topk = logitscope.from_backend(TopKBackend(toy.backend, 3))
    gen, tree = topk.generate("the cat", 4, SamplerConfig.greedy()), topk.tree("the cat", 2, 2)
    nxt, score = topk.next_token("the cat", top_k=3), topk.score("the cat sat", top_k=2)
    shown = rich_text(gen, 160)
    assert "entropy ≥" in shown and "outside top k" in shown and "from the top 3 log-probs" in shown
    assert f"{gen.steps[0].remaining_mass:.4f}" in shown
    assert "from the top 3 log-probs" in rich_text(tree).splitlines()[0]
    assert "entropy ≥" in rich_text(nxt, 200) and "from the top 3 log-probs" in rich_text(score, 200)
    assert "entropy ≥" in gen._repr_html_() and "entropy ≥" in score._repr_html_()
    assert "mean entropy ≥" in rich_text(topk.uncertain("the cat sat on the mat", 0.3, None, top_k=3), 200)
    assert gen.plot().axes[1].get_ylabel() == "entropy ≥ (nats)"
    plain = toy.generate("the cat", 4, SamplerConfig.greedy())
    assert "≥" not in rich_text(plain, 160) and "outside top k" not in rich_text(plain, 160)
    assert "log-probs" not in rich_text(toy.tree("the cat", 2, 2)).splitlines()[0]


def test_quantization_report_picks_the_variant_to_show():
    report = quantization_report()
    assert report.focus_variant.label == "4-bit"  # most damaged with mean KL < 1 nat
    assert "per-token KL, 4-bit" in rich_text(report)


# -- the one heatmap --------------------------------------------------------------------------------
def test_heatmap_colours_the_original_text_keeping_spaces(toy, cli):
    result = toy.score("the cat sat", bos=True)
    heat = terminal.heatmap(result)
    assert heat.plain == "the cat sat"
    styled = {heat.plain[s.start:s.end]: str(s.style) for s in heat.spans}
    assert styled[" "].startswith("dim") and " on #" in styled["cat"]  # the gaps no token covers are dim
    out = cli(["score", "the cat sat", "-m", "toy"]).output
    assert out.splitlines()[0] == "the cat sat"
    assert "colour by prob" in out and "rank buckets" in out and "scored 3 tokens" in out


@pytest.mark.slow
def test_heatmap_of_split_characters_shows_no_replacement_character(smol, cli):
    text = "Hi 😀, see you 👋🏽! שלום עולם, מה שלומך?"
    result = smol.score(text)
    assert "\ufffd" in "".join(t.text for t in result.tokens)  # byte-level tokens split these characters
    assert terminal.heatmap(result).plain == text
    for out in (cli(["score", text]).output, rich_text(smol.uncertain(text))):
        assert text in out and "\ufffd" not in out
    fragment = Tags()
    fragment.feed(html_views.heatmap_fragment(result))
    assert "".join(fragment.text) == text


# -- analysis modules import no views -----------------------------------------------------------------
def test_analysis_modules_and_results_import_no_rich_and_no_matplotlib():
    """One fresh interpreter: a result is made and serialised without loading any view, then
    every analysis module is imported, and still neither rich nor matplotlib is loaded."""
    code = ("import importlib, sys, logitscope\n"
            "logitscope.load('toy').score('the cat sat').to_json()\n"
            "print(sorted(m for m in sys.modules if m.startswith('logitscope.views')))\n"
            f"for m in {ANALYSIS_MODULES!r}: importlib.import_module(m)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'matplotlib'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "[]"]


# -- the teaching views: the softmax, temperature, cumulative mass, reliability -------------------------
def softmax64(z, tau=1.0):
    import numpy as np

    z = np.asarray(z, dtype=float) / tau
    return np.exp(z - z.max()) / np.exp(z - z.max()).sum()


def bar_heights(ax):
    return [p.get_height() for p in ax.patches]


def test_softmax_steps_draws_logits_exp_and_probabilities():
    from logitscope.views.plots import softmax_steps

    logits, exp, probs = softmax_steps([2.0, 1.0, 0.1], ["A", "B", "C"]).axes
    assert bar_heights(logits) == pytest.approx([2.0, 1.0, 0.1])
    assert bar_heights(exp) == printed(6).approx([7.389056, 2.718282, 1.105171])
    assert "sum 11.21" in exp.get_title()
    assert bar_heights(probs) == pytest.approx(softmax64([2.0, 1.0, 0.1]).tolist())
    assert [t.get_text() for t in probs.get_xticklabels()] == ["A", "B", "C"]
    stable = softmax_steps([1002.0, 1001.0, 999.0, 995.0]).axes  # exp(1002) overflows: shifted by the max
    assert "max" in stable[1].get_title() and bar_heights(stable[1])[0] == 1.0
    assert bar_heights(stable[2]) == printed(6).approx([0.704931, 0.259330, 0.035096, 0.000643])


def test_temperature_sweep_draws_softmax_at_each_tau_with_its_entropy():
    import numpy as np

    from logitscope.views.plots import temperature_sweep

    z, temps = [3.0, 2.0, 1.0, 0.0, -1.0], [0.4, 1.0, 2.5]
    ax = temperature_sweep(z, temps).axes[0]
    for line, tau in zip(ax.lines, temps):
        p = softmax64(z, tau)
        assert list(line.get_ydata()) == pytest.approx(p.tolist())
        assert f"H={-(p * np.log(p)).sum():.2f} nats" in line.get_label() and f"τ={tau:g}" in line.get_label()
    assert len(ax.lines) == 3


def test_next_token_plot_adds_a_temperature_sweep_and_the_cumulative_mass(results):
    import dataclasses

    nxt = results["NextTokenResult"]
    bars, sweep, mass = nxt.plot(temperatures=(0.5, 2.0), mass=True).axes
    ids = [c.token_id for c in nxt.top]
    for line, tau in zip(sweep.lines, (0.5, 2.0)):
        assert list(line.get_ydata()) == pytest.approx(softmax64(nxt.logprobs.double().numpy(), tau)[ids].tolist())
    curve = list(mass.lines[0].get_ydata())
    assert curve[0] == pytest.approx(nxt.top[0].prob) and curve[-1] == pytest.approx(1.0)
    assert curve == sorted(curve) and len(curve) == nxt.logprobs.numel()
    assert len(nxt.plot().axes) == 1  # the default picture is unchanged
    with pytest.raises(CapabilityError, match="full-vocabulary"):
        dataclasses.replace(nxt, logprobs=None).plot(mass=True)


def test_generation_plot_can_show_the_running_product(results):
    import math

    gen = results["GenerationResult"]
    trace = gen.plot(running=True).axes[0]
    running = [math.exp(sum(s.logprob for s in gen.steps[: i + 1])) for i in range(len(gen.steps))]
    assert list(trace.lines[2].get_ydata()) == pytest.approx(running)
    assert trace.get_yscale() == "log" and len(gen.plot().axes[0].lines) == 2


def test_tree_plot_by_path_probability(results):
    """by="path": each branch as wide as the product of p down to it, labelled with p and the path."""
    tree = results["TreeResult"]
    nodes = [node for _, node in tree.nodes()]  # depth first, as the branches are drawn
    ax = tree.plot(by="path").axes[0]
    widths = [line.get_linewidth() for line in ax.lines]
    top = max(n.cum_prob for n in nodes)
    assert widths == pytest.approx([0.6 + 6 * n.cum_prob / top for n in nodes])
    labels = [t.get_text() for t in ax.texts][1:]  # after the prompt
    assert labels == [f"{show_token(n.text)}  p={n.prob:.2g}  path={n.cum_prob:.2g}" for n in nodes]
    assert "path probability" in ax.get_title()
    default = tree.plot().axes[0]  # unchanged: width by the conditional p, no title
    assert [line.get_linewidth() for line in default.lines] == pytest.approx([0.5 + 4 * n.prob for n in nodes])
    assert default.get_title() == ""
    with pytest.raises(InputError, match="unknown tree width"):
        tree.plot(by="cum")


def test_reliability_diagram_of_bins_shows_accuracy_and_confidence():
    from logitscope.core.calibration_math import reliability_bins
    from logitscope.views.plots import reliability_diagram

    conf = [0.95, 0.90, 0.85, 0.80, 0.75, 0.70, 0.60, 0.55, 0.45, 0.30]
    correct = [1, 1, 0, 1, 0, 1, 0, 0, 0, 0]
    bins = reliability_bins(conf, correct, bins=5)
    ax = reliability_diagram(bins, title="ten predictions").axes[0]
    assert bar_heights(ax) == pytest.approx([0.0, 0.0, 0.0, 2 / 3, 2 / 3])  # (0.6,0.8]: 0.8 and 0.7 right of 3
    dots = ax.lines[0]
    assert list(dots.get_ydata()) == pytest.approx([b.confidence for b in bins if b.count])
    assert ax.get_title() == "ten predictions"


def test_quantization_plot_says_which_parameters_were_rounded():
    import dataclasses

    report = quantization_report()
    assert "weight matrices" in report.plot().axes[0].get_title()
    assert "every parameter" in dataclasses.replace(report, which="all").plot().axes[0].get_title()
    broken = dataclasses.replace(report.variants[2], perplexity=float("inf"), kl_mean=float("inf"),
                                 kl_p99=float("inf"), kl_max=float("inf"))  # a token got probability 0
    ppl, kl = dataclasses.replace(report, variants=(*report.variants[:2], broken, report.variants[3])).plot().axes
    assert list(ppl.lines[0].get_xdata()) == [4, 8] and "1 inf/NaN left out" in ppl.get_title()
    nan = dataclasses.replace(broken, perplexity=float("nan"), kl_p99=float("nan"))  # the forward pass overflowed
    ppl = dataclasses.replace(report, variants=(report.variants[0], nan)).plot().axes[0]
    assert list(ppl.lines[0].get_xdata()) == [8] and "1 inf/NaN left out" in ppl.get_title()
    assert list(kl.lines[0].get_xdata()) == [4, 8]
    astronomical = dataclasses.replace(report.variants[2], perplexity=2.4e277)  # seed 003's 1-bit sweep
    fig = dataclasses.replace(report, variants=(astronomical,)).plot()
    fig.savefig(io.BytesIO(), format="png")  # a log axis over 277 decades fails here, when ticks are placed
    ppl = fig.axes[0]
    assert ppl.get_ylabel() == "log10 perplexity" and list(ppl.lines[0].get_ydata()) == printed(2).approx([277.38])
