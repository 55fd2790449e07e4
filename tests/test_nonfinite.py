"""Non-finite numbers never become NaN probabilities or non-standard JSON.

Temperature limits (hypothesis), +inf logit bias, seeds out of range, an undefined
chi-square test, and strict JSON from the library's to_json.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import logitscope
from logitscope.cli.common import reject_constant
from logitscope.core import mathops
from logitscope.core.processors import Sampler, SamplerConfig, resolve_bias, temperature
from logitscope.errors import InputError

logit_rows = st.lists(st.floats(-50, 50, allow_nan=False, width=32), min_size=1, max_size=12)
tiny_t = st.floats(min_value=1e-300, max_value=1e-30) | st.just(5e-324)
huge_t = st.floats(min_value=1e30, max_value=1e300) | st.just(math.inf)


def rounded(row):
    return torch.tensor([round(x) for x in row], dtype=torch.float32)  # integers: exact ties are common


@given(logit_rows, tiny_t)
def test_tiny_temperature_is_greedy_with_ties_shared(row, t):
    logits = rounded(row)
    p = mathops.softmax(logits, temperature=t)
    best = logits == logits.max()
    assert not torch.isnan(p).any()
    assert torch.allclose(p[best], torch.full((int(best.sum()),), 1.0 / int(best.sum())))
    assert (p[~best] == 0).all()
    assert float(mathops.entropy(mathops.log_softmax(logits, temperature=t))) == pytest.approx(
        math.log(int(best.sum())), abs=1e-6)


@given(logit_rows, huge_t)
def test_huge_temperature_is_uniform(row, t):
    logits = torch.tensor(row, dtype=torch.float32)
    p = mathops.softmax(logits, temperature=t)
    assert torch.allclose(p, torch.full_like(p, 1.0 / len(row)), atol=1e-6)


@given(logit_rows, st.floats(min_value=5e-324, allow_infinity=True, allow_nan=False))
def test_any_positive_temperature_gives_a_distribution(row, t):
    logits = torch.tensor(row + [-math.inf], dtype=torch.float64)  # a banned token stays banned
    p = mathops.softmax(logits, temperature=t)
    assert not torch.isnan(p).any() and float(p.sum()) == pytest.approx(1.0)
    assert p[-1] == 0


def test_moderate_temperatures_keep_dividing_the_logits():
    assert temperature(0.5)(torch.zeros(1, 0, dtype=torch.long), torch.tensor([[2.0, -1.0]])).tolist() == [[4.0, -2.0]]


def test_next_with_a_tiny_temperature_ranks_the_argmax_first(cli):
    data = json.loads(cli(["next", "the", "-m", "toy", "-t", "1e-40", "--json"]).output)
    assert data["top"][0]["text"] == "cat" and data["top"][0]["prob"] == 1.0 and data["entropy"] == 0.0
    assert all(t["prob"] == 0.0 for t in data["top"][1:])


# -- +inf bias: the token becomes certain ----------------------------------------------------------
def test_plus_inf_bias_makes_the_token_certain_in_every_stage(cli):
    data = json.loads(cli(["dist", "the", "-m", "toy", "--bias", "cat=inf", "-t", "0.5", "--top-p", "0.9",
                           "--json"]).output)
    for stage in data["stages"][1:]:
        assert stage["survivors"] == 1 and stage["top"][0]["text"] == "cat" and stage["top"][0]["prob"] == 1.0
    assert data["sampler"]["bias"] == [["cat", "inf"]]


def test_two_forced_tokens_share_the_mass():
    m = logitscope.load("toy")
    result = m.chain("the", SamplerConfig(bias=(("cat", math.inf), ("dog", math.inf))))
    assert {c.text: round(c.prob, 6) for c in result.stages[-1].top} == {"cat": 0.5, "dog": 0.5}


@pytest.mark.parametrize("args", [["sample", "the", "-n", "50"], ["generate", "the", "-n", "3"]])
def test_plus_inf_bias_samples_only_that_token(cli, args):
    data = json.loads(cli([*args, "-m", "toy", "--bias", "cat=inf", "--json"]).output)
    if args[0] == "sample":
        assert [r["text"] for r in data["rows"] if r["count"]] == ["cat"]
    else:
        assert data["text"] == "cat cat cat" and all(s["processed_prob"] == 1.0 for s in data["steps"])


def test_plus_and_minus_inf_on_one_token_is_an_error():
    with pytest.raises(InputError, match="both \\+inf and -inf"):
        resolve_bias([(3, math.inf), (3, -math.inf)], None)


# -- seeds and the chi-square test -----------------------------------------------------------------
@pytest.mark.parametrize("seed", [-1, 2**64, 99999999999999999999, 1.5, True])
def test_seeds_out_of_range_are_input_errors(seed):
    with pytest.raises(InputError, match="seed"):
        Sampler(SamplerConfig(), seed)


def test_largest_seed_works():
    assert Sampler(SamplerConfig(), 2**64 - 1).seed == 2**64 - 1


def test_cli_seed_out_of_range(cli):
    res = cli(["sample", "the", "-m", "toy", "--seed", "99999999999999999999"])
    assert res.exit_code == 2 and res.stderr.startswith("error: Invalid value for '--seed'")


@pytest.mark.parametrize("args", [["-n", "1"], ["-t", "0"]])
def test_an_undefined_chi_square_test_is_said_to_be(cli, args):
    res = cli(["sample", "the", "-m", "toy", *args])
    assert "nan" not in res.stdout and "chi-square test undefined" in " ".join(res.stdout.split())
    data = json.loads(cli(["sample", "the", "-m", "toy", *args, "--json"]).stdout, parse_constant=reject_constant)
    assert data["p_value"] is None and data["dof"] == 0


# -- strict JSON from the library ---------------------------------------------------------------------
def test_to_json_is_strict_for_non_finite_values():
    m = logitscope.load("toy")
    text = m.next_token("the", temperature=math.inf).to_json()
    data = json.loads(text, parse_constant=reject_constant)
    assert data["temperature"] is None
    lift = m.context_lift("the", " cat", ["the cat"], min_lift=math.inf)
    assert json.loads(lift.to_json(), parse_constant=reject_constant)["min_lift"] is None
