"""Pure probability math: properties (hypothesis) and hand-worked values."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from logitscope.core import mathops
from logitscope.errors import InputError
from tolerances import FLOAT64

finite = st.floats(min_value=-50, max_value=50, allow_nan=False, allow_infinity=False)
logit_vectors = st.lists(finite, min_size=2, max_size=40).map(lambda v: torch.tensor(v, dtype=torch.float64))


@given(logit_vectors, finite)
def test_softmax_is_shift_invariant(z, c):
    assert FLOAT64.allclose(mathops.softmax(z), mathops.softmax(z + c))


@given(logit_vectors)
def test_softmax_sums_to_one_and_exp_logsoftmax_is_softmax(z):
    p = mathops.softmax(z)
    assert math.isclose(float(p.sum()), 1.0, abs_tol=1e-12)
    assert FLOAT64.allclose(mathops.log_softmax(z).exp(), p)


@given(st.lists(st.floats(min_value=990, max_value=1010), min_size=2, max_size=20))
def test_log_softmax_stays_finite_for_huge_logits(values):
    for dtype in (torch.float32, torch.float64):
        lp = mathops.log_softmax(torch.tensor(values, dtype=dtype))
        assert torch.isfinite(lp).all()
        assert math.isclose(float(lp.exp().sum()), 1.0, rel_tol=1e-5)


@given(logit_vectors)
def test_argmax_of_logits_equals_argmax_of_softmax(z):
    z = z + torch.arange(len(z), dtype=z.dtype) * 1e-6  # break exact ties
    assert int(z.argmax()) == int(mathops.softmax(z).argmax())


def test_seed_numerically_stable_example():
    # logits near 1e3 stay finite (a naive exp would overflow)
    lp = mathops.log_softmax(torch.tensor([1002.0, 1001.0, 999.0, 995.0], dtype=torch.float64))
    lse = math.log(1 + math.exp(-1) + math.exp(-3) + math.exp(-7))  # relative to the max, 1002
    expected = torch.tensor([-lse, -1 - lse, -3 - lse, -7 - lse], dtype=torch.float64)
    assert FLOAT64.allclose(lp, expected)


@given(logit_vectors)
def test_low_temperature_approaches_one_hot(z):
    top2 = z.topk(2).values
    assume(float(top2[0] - top2[1]) > 1e-2)  # a unique maximum, clear of the runner-up
    p = mathops.softmax(z, temperature=1e-4)
    assert float(p.max()) > 0.999
    assert int(p.argmax()) == int(z.argmax())


@given(logit_vectors)
def test_high_temperature_flattens_and_entropy_grows(z):
    h1 = float(mathops.entropy(mathops.log_softmax(z)))
    h_hot = float(mathops.entropy(mathops.log_softmax(z, temperature=1e4)))
    assert h_hot >= h1 - 1e-9
    assert math.isclose(h_hot, math.log(len(z)), rel_tol=1e-3)


@given(logit_vectors, logit_vectors)
def test_cross_entropy_is_entropy_plus_kl(a, b):
    n = min(len(a), len(b))
    p, q = mathops.log_softmax(a[:n]), mathops.log_softmax(b[:n])
    ce = mathops.cross_entropy(p, q)
    assert math.isclose(float(ce), float(mathops.entropy(p) + mathops.kl_divergence(p, q)), abs_tol=1e-9)
    assert float(mathops.kl_divergence(p, q)) >= 0
    assert float(mathops.kl_divergence(p, p)) == FLOAT64.approx(0.0)


def test_entropy_ignores_zero_probability_entries():
    lp = torch.log(torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64))
    assert float(mathops.entropy(lp)) == pytest.approx(math.log(2))


def test_seed_entropy_cross_entropy_kl_example():
    # entropy, cross-entropy and KL worked by hand: q = data, p_good / p_bad = models
    q = torch.log(torch.tensor([0.70, 0.20, 0.10], dtype=torch.float64))
    p_good = torch.log(torch.tensor([0.65, 0.25, 0.10], dtype=torch.float64))
    h = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    ce = -(0.7 * math.log(0.65) + 0.2 * math.log(0.25) + 0.1 * math.log(0.1))
    assert float(mathops.entropy(q)) == pytest.approx(h)
    assert float(mathops.cross_entropy(q, p_good)) == pytest.approx(ce)
    assert float(mathops.kl_divergence(q, p_good)) == pytest.approx(ce - h)


def test_rank_counts_strictly_larger_entries():
    logits = torch.tensor([[1.0, 3.0, 2.0, 3.0]])
    assert mathops.rank_of(logits, torch.tensor([2])).tolist() == [3]
    assert mathops.rank_of(logits, torch.tensor([1])).tolist() == [1]
    assert mathops.rank_of(logits, torch.tensor([0])).tolist() == [4]


def test_perplexity_bits_per_byte_and_char():
    nll = 3 * math.log(4)  # three tokens, each p = 1/4
    assert mathops.perplexity(nll, 3) == pytest.approx(4.0)
    assert mathops.bits_per_byte(nll, 3) == pytest.approx(2.0)
    assert mathops.bits_per_char(nll, 6) == pytest.approx(1.0)
    with pytest.raises(InputError):
        mathops.perplexity(1.0, 0)


def test_temperature_must_be_positive():
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(InputError, match="temperature"):
            mathops.apply_temperature(torch.zeros(3), bad)


@settings(max_examples=50)
@given(st.lists(st.floats(min_value=-30, max_value=0), min_size=1, max_size=10))
def test_logsumexp_paths_is_log_of_summed_probabilities(lps):
    assert mathops.logsumexp_paths(lps) == FLOAT64.approx(math.log(sum(math.exp(x) for x in lps)))


@settings(max_examples=50)
@given(st.lists(st.tuples(st.floats(min_value=-30, max_value=0), st.floats(min_value=-30, max_value=0)),
                min_size=1, max_size=6))
def test_lattice_total_is_the_float64_sum_over_paths(pairs):
    """s -> m_i -> t for each pair (log p(s->m_i), log p(m_i->t)): the total is exact to float64."""
    edges = {"s": [(f"m{i}", a) for i, (a, _) in enumerate(pairs)]} | {f"m{i}": [("t", b)] for i, (_, b) in enumerate(pairs)}
    total, _ = mathops.lattice_score(edges, "s", "t", "log")
    assert total == FLOAT64.approx(math.log(math.fsum(math.exp(a + b) for a, b in pairs)))


def test_lattice_total_and_best_path():
    half, quarter = math.log(0.5), math.log(0.25)
    edges = {"s": [("a", half), ("b", half)], "a": [("t", half)], "b": [("t", quarter), ("a", half)]}
    total, _ = mathops.lattice_score(edges, "s", "t", "log")
    # paths: s-a-t 0.25, s-b-t 0.125, s-b-a-t 0.125
    assert total == pytest.approx(math.log(0.5))
    best, path = mathops.lattice_score(edges, "s", "t", "max")
    assert best == pytest.approx(math.log(0.25)) and path == ["s", "a", "t"]
    assert mathops.lattice_score(edges, "t", "s")[0] == -math.inf
    with pytest.raises(InputError, match="cycle"):
        mathops.lattice_score({"a": [("b", 0.0)], "b": [("a", 0.0)]}, "a", "b")
