"""Logits processors: exact outputs on hand-made logits, chain invariants, seeded draws."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from logitscope.errors import InputError
from logitscope.core.processors import (Sampler, SamplerConfig, chi_square_gof, compose, greedy, logit_bias, min_p,
                                   repetition_penalty, run_chain, temperature, top_k, top_p)
from tolerances import FLOAT64

NO_IDS = torch.zeros(1, 0, dtype=torch.long)
INF = math.inf


def logits_of(probs: list[float]) -> torch.Tensor:
    """(1, V) float64 logits whose softmax is ``probs``."""
    return torch.tensor([probs], dtype=torch.float64).log()


def kept(logits: torch.Tensor) -> list[int]:
    return torch.isfinite(logits[0]).nonzero().flatten().tolist()


# -- temperature and greedy ---------------------------------------------------------------------

def test_temperature_divides_logits():
    out = temperature(0.5)(NO_IDS, torch.tensor([[2.0, -1.0, 0.0]]))
    assert out.tolist() == [[4.0, -2.0, 0.0]]


def test_temperature_zero_is_greedy_and_ties_go_to_the_lowest_id():
    out = temperature(0)(NO_IDS, torch.tensor([[1.0, 3.0, 3.0, 2.0]]))
    assert kept(out) == [1]
    assert torch.softmax(out, -1).tolist() == [[0.0, 1.0, 0.0, 0.0]]


def test_greedy_per_row():
    out = greedy(NO_IDS, torch.tensor([[0.0, 5.0, 1.0], [9.0, 0.0, 1.0]]))
    assert [torch.isfinite(r).nonzero().flatten().tolist() for r in out] == [[1], [0]]


def test_huge_temperature_flattens_to_uniform():
    probs = torch.softmax(temperature(1e9)(NO_IDS, logits_of([0.7, 0.2, 0.1])), -1)
    assert FLOAT64.allclose(probs, torch.full((1, 3), 1 / 3, dtype=torch.float64))


def test_tiny_temperature_concentrates_on_the_argmax():
    probs = torch.softmax(temperature(1e-3)(NO_IDS, logits_of([0.5, 0.3, 0.2])), -1)
    assert probs[0, 0] == FLOAT64.approx(1.0)


@pytest.mark.parametrize("bad", [-0.5, -1e-9, math.nan])
def test_negative_temperature_is_refused(bad):
    with pytest.raises(InputError, match="temperature"):
        temperature(bad)


# -- top-k ----------------------------------------------------------------------------------------

def test_top_k_keeps_the_k_largest():
    assert kept(top_k(2)(NO_IDS, torch.tensor([[0.1, 3.0, 2.0, -1.0]]))) == [1, 2]


def test_top_k_keeps_every_token_tied_with_the_kth():
    assert kept(top_k(2)(NO_IDS, torch.tensor([[3.0, 1.0, 1.0, 0.0]]))) == [0, 1, 2]
    assert kept(top_k(1)(NO_IDS, torch.tensor([[2.0, 2.0, 0.0]]))) == [0, 1]


def test_top_k_larger_than_vocab_is_identity():
    x = torch.tensor([[0.1, 0.2]])
    assert torch.equal(top_k(10)(NO_IDS, x), x)


def test_top_k_below_one_is_refused():
    with pytest.raises(InputError, match=r"top_k.*\[1, inf\)"):
        top_k(0)


# -- top-p ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("p, expected", [
    (0.8, [0, 1]),          # 0.5 + 0.3 reaches 0.8 exactly: ' the crossing token' is the 2nd
    (0.8001, [0, 1, 2]),    # just past it needs the third
    (0.5, [0]),             # the first token alone reaches 0.5
    (0.3, [0]),             # the smallest set is never empty
    (1e-9, [0]),            # at the tolerance: still the most likely token (issue 22)
    (1e-300, [0]),          # below it too
    (0.96, [0, 1, 2, 3]),
    (1.0, [0, 1, 2, 3]),
])
def test_top_p_boundaries(p, expected):
    assert kept(top_p(p)(NO_IDS, logits_of([0.5, 0.3, 0.15, 0.05]))) == expected


def test_top_p_breaks_ties_by_token_id():
    assert kept(top_p(0.5)(NO_IDS, logits_of([0.2, 0.4, 0.2, 0.2]))) == [0, 1]


def test_top_p_is_order_independent_of_the_vocabulary_layout():
    assert kept(top_p(0.8)(NO_IDS, logits_of([0.05, 0.3, 0.15, 0.5]))) == [1, 3]


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.01])
def test_top_p_out_of_range_is_refused(bad):
    with pytest.raises(InputError, match=r"top_p.*\(0, 1\]"):
        top_p(bad)


# -- min-p ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("m, expected", [
    (0.0, [0, 1, 2, 3]),
    (0.2, [0, 1, 2, 3]),  # floor 0.08
    (0.3, [0, 1, 2]),     # floor 0.12
    (0.6, [0, 1]),        # floor 0.24
    (1.0, [0]),           # only tokens as likely as the top
])
def test_min_p_keeps_tokens_above_a_fraction_of_the_top(m, expected):
    assert kept(min_p(m)(NO_IDS, logits_of([0.4, 0.3, 0.2, 0.1]))) == expected


@pytest.mark.parametrize("bad", [-0.01, 1.5])
def test_min_p_out_of_range_is_refused(bad):
    with pytest.raises(InputError, match=r"min_p.*\[0, 1\]"):
        min_p(bad)


# -- bias and repetition penalty ---------------------------------------------------------------------

def test_bias_bans_and_boosts():
    out = logit_bias({1: -INF, 2: 1.5})(NO_IDS, torch.tensor([[0.0, 5.0, 1.0]]))
    assert out.tolist() == [[0.0, -INF, 2.5]]


def test_bias_banning_every_token_is_refused():
    with pytest.raises(InputError, match="bans every token"):
        logit_bias({0: -INF, 1: -INF})(NO_IDS, torch.tensor([[0.0, 1.0]]))


def test_bias_with_an_unknown_id_is_refused():
    with pytest.raises(InputError, match="token id 7"):
        logit_bias({7: 1.0})(NO_IDS, torch.tensor([[0.0, 1.0]]))


def test_string_bias_maps_to_its_token_ids():
    stages = SamplerConfig(bias=(("ab", -INF),)).stages(lambda s: [0, 2] if s == "ab" else [])
    assert kept(compose(stages)(NO_IDS, torch.zeros(1, 4))) == [1, 3]


def test_string_bias_needs_a_tokenizer():
    with pytest.raises(InputError, match="bias string"):
        SamplerConfig(bias=(("x", 1.0),)).stages()


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits():
    out = repetition_penalty(2.0)(torch.tensor([[0, 1, 0]]), torch.tensor([[2.0, -2.0, 1.0]]))
    assert out.tolist() == [[1.0, -4.0, 1.0]]


# -- the chain -----------------------------------------------------------------------------------------

def test_chain_order_and_stage_names():
    cfg = SamplerConfig(temperature=0.5, top_k=3, top_p=0.9, min_p=0.1, repetition_penalty=1.2, bias=((0, 1.0),))
    assert [name for name, _ in cfg.stages()] == ["bias", "repetition 1.2", "T=0.5", "top-k 3", "top-p 0.9",
                                                  "min-p 0.1"]


def test_chain_on_hand_made_logits():
    # T=0.5 squares the probabilities: [.5,.3,.15,.05] -> [.25,.09,.0225,.0025]/0.365
    cfg = SamplerConfig(temperature=0.5, top_k=3, top_p=0.9)
    stages = run_chain(cfg.stages(), NO_IDS, logits_of([0.5, 0.3, 0.15, 0.05]))
    assert [(name, kept(x)) for name, x in stages] == [
        ("raw", [0, 1, 2, 3]), ("T=0.5", [0, 1, 2, 3]), ("top-k 3", [0, 1, 2]), ("top-p 0.9", [0, 1])]
    final = torch.softmax(stages[-1][1], -1)[0]
    assert final[:2].tolist() == pytest.approx([0.25 / 0.34, 0.09 / 0.34])


def test_temperature_runs_before_top_p():
    # raw p=[.5,.3,.2]: top-p 0.7 keeps 2 tokens; after T=0.1 the top token alone has > 0.99
    cfg = SamplerConfig(temperature=0.1, top_p=0.7)
    assert kept(compose(cfg.stages())(NO_IDS, logits_of([0.5, 0.3, 0.2]))) == [0]


@pytest.mark.parametrize("kwargs, name", [
    ({"temperature": -1.0}, "temperature"), ({"top_k": 0}, "top_k"), ({"top_p": 0.0}, "top_p"),
    ({"top_p": 2.0}, "top_p"), ({"min_p": 1.1}, "min_p"), ({"repetition_penalty": 0.0}, "repetition_penalty"),
])
def test_config_validates_every_range(kwargs, name):
    with pytest.raises(InputError, match=name) as info:
        SamplerConfig(**kwargs)
    assert name in info.value.hint


logit_rows = st.lists(st.floats(-30, 30, allow_nan=False), min_size=2, max_size=40)
configs = st.builds(SamplerConfig, temperature=st.sampled_from([0.0, 0.3, 1.0, 2.5]),
                    top_k=st.one_of(st.none(), st.integers(1, 50)), top_p=st.floats(0.01, 1.0),
                    min_p=st.floats(0.0, 1.0))


@settings(max_examples=150, deadline=None)
@given(logit_rows, configs)
def test_processed_distribution_sums_to_one_over_nested_survivors(row, cfg):
    stages = run_chain(cfg.stages(), NO_IDS, torch.tensor([row], dtype=torch.float64))
    previous = set(range(len(row)))
    for _, logits in stages:
        survivors = set(kept(logits))
        assert survivors and survivors <= previous  # every stage only removes tokens
        probs = torch.softmax(logits, -1)[0]
        assert float(probs.sum()) == FLOAT64.approx(1.0)
        assert all(probs[i] == 0 for i in set(range(len(row))) - survivors)
        previous = survivors


# -- drawing ----------------------------------------------------------------------------------------------

def test_same_seed_same_draws_different_seed_different_draws():
    logits = logits_of([0.25] * 4)
    draw = lambda seed: Sampler(SamplerConfig(), seed).choose(logits, 50)[0].tolist()  # noqa: E731
    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


def test_greedy_sampler_ignores_the_seed():
    logits = logits_of([0.2, 0.5, 0.3])
    assert Sampler(SamplerConfig.greedy(), 1).choose(logits, 3).tolist() == [[1, 1, 1]]


def test_chi_square_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    counts = torch.tensor([48, 33, 19])
    probs = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    stat, dof, p = chi_square_gof(counts, probs, min_expected=1)
    ref = scipy_stats.chisquare([48, 33, 19], [50, 30, 20])
    assert (stat, dof) == (pytest.approx(ref.statistic), 2)
    assert p == FLOAT64.approx(ref.pvalue)


def test_draws_follow_the_processed_probabilities():
    cfg = SamplerConfig(temperature=0.8, top_k=5, min_p=0.05)
    logits = logits_of([0.3, 0.25, 0.2, 0.1, 0.08, 0.07])
    sampler = Sampler(cfg, seed=1234)
    probs = torch.softmax(sampler.process(NO_IDS, logits), -1)[0]
    counts = torch.bincount(sampler.choose(sampler.process(NO_IDS, logits), 20000)[0], minlength=6)
    assert counts[5] == 0  # removed by top-k: never drawn
    _, dof, p = chi_square_gof(counts, probs)
    assert dof == 4 and p > 0.001
    _, _, p_wrong = chi_square_gof(counts, torch.softmax(logits, -1)[0])  # the unprocessed distribution
    assert p_wrong < 1e-6
