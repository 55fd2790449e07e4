"""Ranking completions: normalisations, bad input, and KV-reuse parity on the bundled model."""

from __future__ import annotations

import json
import math

import pytest
import torch

import logitscope
from logitscope import InputError
from logitscope.backends.base import Backend
from logitscope.backends.toy import ToyBackend
from logitscope.confidence.ranking import NORMALISATIONS, rank
from logitscope.backends.toydata import DEMO_CORPUS
from tolerances import FLOAT32_TOKEN, FLOAT64


@pytest.fixture
def demo():
    return logitscope.from_backend(ToyBackend.from_ngrams(DEMO_CORPUS, order=2, alpha=0.1))


# -- toy: normalisations and bad input -----------------------------------------------------
def test_normalisations_follow_their_definitions(demo):
    result = demo.rank("the cat", [" sat", " sat on the mat", " slept"])
    for c in result.candidates:
        ref = demo.score(c.candidate, context="the cat")
        total = sum(t.logprob for t in ref.scored_tokens)
        uncond = demo.score(c.span, bos=True).total_logprob
        assert c.score("sum") == FLOAT64.approx(total)
        assert c.score("mean") == FLOAT64.approx(total / ref.num_scored)
        assert c.score("per_byte") == FLOAT64.approx(total / len(c.span.encode()))
        assert c.score("per_char") == FLOAT64.approx(total / len(c.span))
        assert c.score("pmi") == FLOAT64.approx(total - uncond)


def test_order_sorts_best_first_under_every_normalisation(demo):
    result = demo.rank("the cat", [" sat", " sat on the mat", " slept", " mat"])
    for n in NORMALISATIONS:
        scores = [result.candidates[i].score(n) for i in result.order(n)]
        assert scores == sorted(scores, reverse=True)
    assert result.best("sum").candidate == result.candidates[result.order("sum")[0]].candidate
    assert result.order("sum") != result.order("mean")  # the long candidate wins only per token


def test_json_and_dataframe_views(demo):
    result = demo.rank("the cat", [" sat", " slept"], top_k=2)
    data = json.loads(result.to_json())
    assert set(data["order"]) == set(NORMALISATIONS)
    assert data["candidates"][0]["tokens"][0]["alternatives"]
    frame = result.to_dataframe()
    assert list(frame["candidate"]) == [" sat", " slept"]
    assert {f"rank_{n}" for n in NORMALISATIONS} <= set(frame.columns)


@pytest.mark.parametrize("candidates, message", [
    ([], "no candidates"),
    ([" sat", ""], "candidate 1 is empty"),
    ([" sat", "   "], "candidate 1 is empty"),
    ([" sat", " slept", " sat"], "candidate 2 ' sat' duplicates candidate 0"),
    (" sat", "not one string"),
])
def test_bad_candidates_are_clear_errors(demo, candidates, message):
    with pytest.raises(InputError, match=message):
        demo.rank("the cat", candidates)


def test_one_candidate_is_a_trivial_ranking(demo):
    result = demo.rank("the cat", [" sat"])
    assert result.order("sum") == [0]
    assert any("only one candidate" in n for n in result.notes)


def test_prompt_longer_than_the_window_is_an_error():
    backend = ToyBackend.from_ngrams(DEMO_CORPUS, order=2, context_length=8)
    with pytest.raises(InputError, match="more than the model's context of 8"):
        rank(backend, "the cat sat on the mat the dog sat", [" on", " the mat"])


def test_empty_prompt_and_negative_top_k(demo):
    with pytest.raises(InputError, match="prompt"):
        demo.rank("  ", [" sat"])
    with pytest.raises(InputError, match="top_k"):
        demo.rank("the cat", [" sat"], top_k=-1)


def test_unconditional_off_leaves_pmi_missing_and_sorted_last(demo):
    result = demo.rank("the cat", [" sat", " slept"], unconditional=False)
    assert all(c.score("pmi") is None for c in result.candidates)
    assert sorted(result.order("pmi")) == [0, 1]


# -- bundled model: prefix reuse == independent full passes ------------------------------------
PROMPT = ("The committee met on Tuesday to discuss the new library. After a long debate about the budget, "
          "the chair announced that the building would open")
CANDIDATES = [" next spring.", " in the autumn of next year, after the roof is repaired.", " never.",
              " on Monday", " as soon as the money arrives from the city council."]


@pytest.mark.parity
@pytest.mark.slow
def test_prefix_reuse_matches_full_forward_passes(smol):
    reused = smol.rank(PROMPT, CANDIDATES, top_k=3)
    naive = smol.rank(PROMPT, CANDIDATES, top_k=3, reuse_prefix=False)
    assert reused.shared_prefix_tokens == len(smol.backend.tokenize(PROMPT).ids)
    assert naive.shared_prefix_tokens == 0
    for n in NORMALISATIONS:
        assert reused.order(n) == naive.order(n)
    for a, b in zip(reused.candidates, naive.candidates):
        assert a.result.input_ids == b.result.input_ids
        lp_a = [t.logprob for t in a.result.scored_tokens]
        lp_b = [t.logprob for t in b.result.scored_tokens]
        assert lp_a == FLOAT32_TOKEN.approx(lp_b)
        assert [t.rank for t in a.result.scored_tokens] == [t.rank for t in b.result.scored_tokens]


@pytest.mark.slow
def test_hf_score_continuations_matches_the_default_and_keeps_the_state(smol):
    backend = smol.backend
    state = backend.prefill(backend.tokenize("Once upon a time there was").ids)
    conts = [backend.tokenize(t).ids for t in [" a", " a little girl who lived", " nothing at all"]]
    fast = backend.score_continuations(state, conts, top_k=4)
    again = backend.score_continuations(state, conts, top_k=4)  # the state was not consumed
    slow = Backend.score_continuations(backend, state, conts, top_k=4)
    for f, g, s in zip(fast, again, slow):
        assert torch.equal(f.logprob, g.logprob)
        assert FLOAT32_TOKEN.allclose(f.logprob, s.logprob)
        assert FLOAT32_TOKEN.allclose(f.entropy, s.entropy)
        assert torch.equal(f.top_ids, s.top_ids)
    with pytest.raises(InputError, match="empty continuation"):
        backend.score_continuations(state, [[]])


@pytest.mark.slow
def test_boundary_rule_is_the_one_score_uses(smol):
    prompt = "I like apple"
    cands = ["s", " pie", "s and pears", "pie", " Pie"]
    result = smol.rank(prompt, cands)
    for c in result.candidates:
        ref = smol.score(c.candidate, context=prompt)
        assert c.result.input_ids == ref.input_ids
        assert c.result.boundary_merged == ref.boundary_merged
        assert c.total_logprob == FLOAT32_TOKEN.approx(ref.total_logprob)
    merged = [c.candidate for c in result.candidates if c.result.boundary_merged]
    assert merged == ["s", "s and pears"]
    assert result.candidates[0].span == " apples"
    assert result.shared_prefix_tokens == len(smol.backend.tokenize(prompt).ids) - 1  # ' apple' is re-run
    assert sum("merges with the end of the prompt" in n for n in result.notes) == 2


@pytest.mark.slow
def test_leading_space_variants_are_reported(smol):
    result = smol.rank("The capital of France is", [" Paris", "Paris"])
    spans = [c.span for c in result.candidates]
    assert spans == [" Paris", "Paris"]
    assert result.candidates[0].result.input_ids != result.candidates[1].result.input_ids
    assert any("differ only in leading whitespace" in n for n in result.notes)
    # a trailing space in the prompt moves into the candidate, exactly as score(context=...) does
    tied = smol.rank("The capital of France is ", ["Paris", " Paris"])
    assert tied.candidates[0].result.input_ids == smol.score("Paris", context="The capital of France is ").input_ids
    assert tied.candidates[0].span == " Paris" and tied.candidates[1].span == "  Paris"
    assert math.isfinite(tied.candidates[1].total_logprob)


def test_rank_cli_on_the_toy_model(cli):
    out = cli(["rank", "the cat", "-c", " sat", "-c", " slept", "-m", "toy", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert [c["candidate"] for c in data["candidates"]] == [" sat", " slept"]
    table = cli(["rank", "the cat", "-c", " sat", "-c", " slept", "-m", "toy", "--tokens", "--by", "mean"])
    assert "shared prefix" in table.output
    bad = cli(["rank", "the cat", "-m", "toy"])
    assert bad.exit_code == 2 and "no candidates" in bad.output
