"""Traced generation, the chain view and the sampling check: toy logic, smol parity, CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch

import logitscope
from logitscope.backends.toy import ToyBackend
from logitscope.errors import InputError
from logitscope.sampling.chain import sample_next
from logitscope.sampling.generation import generate
from logitscope.core.processors import SamplerConfig
from logitscope.backends.toydata import demo_ngram
from tolerances import FLOAT64

GREEDY = SamplerConfig.greedy()


# -- toy: exact traces and stopping -------------------------------------------------------------------

def test_greedy_trace_on_the_table_model(table_model):
    result = table_model.generate("the", 10, GREEDY)
    assert [s.text for s in result.steps] == ["cat", "sat", "<EOS>"]
    assert [s.prob for s in result.steps] == pytest.approx([0.75, 0.55, 0.80])
    assert [s.processed_prob for s in result.steps] == pytest.approx([1.0, 1.0, 1.0])
    assert [s.rank for s in result.steps] == [1, 1, 1]
    assert result.steps[0].survivors == 1
    assert result.steps[0].entropy == FLOAT64.approx(-sum(p * math.log(p) for p in [0.75, 0.1, 0.1, 0.05]))
    assert [a.text for a in result.steps[0].alternatives[:4]][::3] == ["cat", "<EOS>"]
    assert {a.text for a in result.steps[0].alternatives[1:3]} == {"sat", "slept"}  # tied at 0.1
    assert (result.text, result.stop_reason) == ("cat sat", "eos")
    assert result.total_logprob == pytest.approx(math.log(0.75 * 0.55 * 0.8))


def test_empty_prompt_starts_from_the_prefix_token(table_model):
    result = table_model.generate("", 1, GREEDY)
    assert result.input_ids == (table_model.backend.bos_token_id,)
    assert result.steps[0].text == "the" and result.steps[0].prob == pytest.approx(0.9)


def test_whitespace_prompt_is_refused(table_model):
    with pytest.raises(InputError, match="prompt"):
        table_model.generate("   ", 3)


def test_processed_probability_under_top_k(table_model):
    result = table_model.generate("the", 1, SamplerConfig(top_k=2), seed=0)
    step = result.steps[0]
    assert step.survivors == 3  # 'cat' plus the tie 'sat'/'slept' at the boundary
    assert step.processed_prob == pytest.approx(step.prob / 0.95)


def test_stop_string_ends_generation():
    model = logitscope.from_backend(demo_ngram())
    result = model.generate("the", 30, SamplerConfig(), seed=0, stop=["mat"])
    assert result.stop_reason == "stop" and result.text.endswith("mat")
    assert "mat" not in result.text[:-3]


def test_generation_stops_at_the_context_limit():
    backend = ToyBackend.from_ngrams(["a b a b a b"], order=2, alpha=0.0, context_length=5)
    result = generate(backend, "a", 5, GREEDY)  # ids: <BOS> a + 3 new = 5
    assert result.stop_reason == "context" and len(result.token_ids) == 3


@pytest.mark.parametrize("n", [0, 513])
def test_max_new_tokens_out_of_range_is_refused(table_model, n):
    with pytest.raises(InputError, match=r"max_new_tokens.*\[1, 512\]"):
        table_model.generate("the", n)


def test_streamed_pieces_add_up_to_the_text():
    model = logitscope.from_backend(demo_ngram())
    pieces = []
    result = model.generate("to", 12, SamplerConfig(top_k=4), seed=3, on_text=pieces.append)
    assert "".join(pieces) == result.text


def test_same_seed_same_generation_different_seeds_differ():
    model = logitscope.from_backend(demo_ngram())
    run = lambda seed: model.generate("the", 15, SamplerConfig(), seed=seed).token_ids  # noqa: E731
    assert run(11) == run(11)
    assert len({run(s) for s in range(4)}) > 1


def test_seed_none_records_a_replayable_seed():
    model = logitscope.from_backend(demo_ngram())
    first = model.generate("the", 10, seed=None)
    assert model.generate("the", 10, seed=first.seed).token_ids == first.token_ids


def test_cache_free_path_gives_the_same_trace_on_toy(bigram_model):
    a = bigram_model.generate("the", 6, SamplerConfig(temperature=1.3), seed=5)
    b = bigram_model.generate("the", 6, SamplerConfig(temperature=1.3), seed=5, use_cache=False)
    assert a.token_ids == b.token_ids
    assert [s.logprob for s in a.steps] == pytest.approx([s.logprob for s in b.steps])


# -- toy: chain view and the sampling check ---------------------------------------------------------

def test_chain_view_stages(table_model):
    cfg = SamplerConfig(temperature=0.5, top_p=0.9, bias=(("sat", -math.inf),))
    result = table_model.chain("the", cfg)
    assert [s.stage for s in result.stages] == ["raw", "bias", "T=0.5", "top-p 0.9"]
    assert [s.survivors for s in result.stages] == [6, 5, 5, 1]
    assert result.stages[1].top[0].prob == FLOAT64.approx(0.75 / 0.9)
    assert result.stages[-1].entropy == FLOAT64.approx(0.0)
    assert len(result.to_dataframe()) == sum(len(s.top) for s in result.stages)


def test_bias_banning_everything_is_an_error(table_model):
    ban_all = tuple((i, -math.inf) for i in range(table_model.backend.vocab_size))
    with pytest.raises(InputError, match="bans every token"):
        table_model.chain("the", SamplerConfig(bias=ban_all))


def test_sample_frequencies_agree_with_processed_probabilities():
    scipy_stats = pytest.importorskip("scipy.stats")
    backend = demo_ngram()
    result = sample_next(backend, "the", 20000, SamplerConfig(temperature=0.9, top_k=6), seed=2024)
    assert sum(r.count for r in result.rows) == 20000
    assert result.survivors >= 6 and result.p_value > 0.001
    drawn = [r for r in result.rows if r.count]
    ref = scipy_stats.chisquare([r.count for r in drawn], [r.prob * 20000 for r in drawn], sum_check=False)
    assert result.chi_square == FLOAT64.approx(ref.statistic)
    assert sample_next(backend, "the", 500, seed=1).rows == sample_next(backend, "the", 500, seed=1).rows


# -- the bundled model: parity with transformers and with recomputation ----------------------------------

PROMPT = "The capital of France is"


@pytest.mark.slow
def test_greedy_matches_transformers_generate(smol):
    result = smol.generate(PROMPT, 12, GREEDY, top_alternatives=0)
    ids = torch.tensor([list(result.input_ids)])
    with torch.inference_mode():
        ref = smol.backend.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                          max_new_tokens=12, pad_token_id=smol.backend.eos_token_id)
    assert list(result.token_ids) == ref[0, ids.shape[1]:].tolist()


@pytest.mark.slow
def test_kv_cache_generation_equals_recomputation(smol):
    cached = smol.generate(PROMPT, 8, GREEDY, top_alternatives=3)
    fresh = smol.generate(PROMPT, 8, GREEDY, top_alternatives=3, use_cache=False)
    assert cached.token_ids == fresh.token_ids
    assert max(abs(a.logprob - b.logprob) for a, b in zip(cached.steps, fresh.steps)) < 1e-4
    assert max(abs(a.entropy - b.entropy) for a, b in zip(cached.steps, fresh.steps)) < 1e-4


@pytest.mark.slow
def test_seeded_sampling_on_smol(smol):
    cfg = SamplerConfig(temperature=1.0, top_p=0.95)
    first = smol.generate("Once upon a time", 6, cfg, seed=1, top_alternatives=0)
    assert smol.generate("Once upon a time", 6, cfg, seed=1, top_alternatives=0).token_ids == first.token_ids
    draws = smol.sample("Once upon a time", 300, cfg, seed=1)
    assert draws.rows == smol.sample("Once upon a time", 300, cfg, seed=1).rows
    assert draws.rows != smol.sample("Once upon a time", 300, cfg, seed=2).rows


# -- CLI ------------------------------------------------------------------------------------------------

def test_cli_dist_json_and_plot(cli, tmp_path):
    png = tmp_path / "chain.png"
    out = cli(["dist", "the", "-m", "toy", "--top-k", "2", "--bias", "cat=-inf", "--plot", str(png), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert [s["stage"] for s in data["stages"]] == ["raw", "bias", "top-k 2"]
    assert all(t["text"] != "cat" for t in data["stages"][1]["top"])
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_sample_and_generate(cli):
    out = cli(["sample", "the", "-m", "toy", "-n", "300", "--seed", "4", "--json"])
    assert out.exit_code == 0 and json.loads(out.output)["n"] == 300
    out = cli(["generate", "the", "-m", "toy", "-n", "5", "-t", "0", "--trace"])
    assert out.exit_code == 0 and "generation trace" in out.output and "stopped:" in out.output


@pytest.mark.parametrize("args, name", [
    (["--top-p", "1.5"], "--top-p"), (["--top-k", "0"], "--top-k"), (["--min-p", "2"], "--min-p"),
    (["-t", "-1"], "temperature"), (["--bias", "nonsense"], "--bias"),
])
def test_cli_bad_strategy_is_one_line_error(cli, args, name):
    out = cli(["generate", "the", "-m", "toy", *args])
    assert out.exit_code == 2
    lines = out.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and name in lines[0]
