"""Pure calibration math: a hand-worked ECE example and properties (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logitscope.core import calibration_math as cm
from logitscope.errors import InputError
from tolerances import FLOAT64

# a hand-worked example: ten predictions, five equal-width bins
SEED_CONF = [0.95, 0.90, 0.85, 0.80, 0.75, 0.70, 0.60, 0.55, 0.45, 0.30]
SEED_CORRECT = [1, 1, 0, 1, 0, 1, 0, 0, 0, 0]


def test_ece_matches_a_hand_computation():
    # (0.2,0.4]: {.30} acc 0 conf .30 -> .1*.30 = .030
    # (0.4,0.6]: {.60,.55,.45} acc 0 conf .5333 -> .3*.5333 = .160
    # (0.6,0.8]: {.80,.75,.70} acc 2/3 conf .75 -> .3*.0833 = .025
    # (0.8,1.0]: {.95,.90,.85} acc 2/3 conf .90 -> .3*.2333 = .070
    assert cm.expected_calibration_error(SEED_CONF, SEED_CORRECT, bins=5) == FLOAT64.approx(0.285)
    assert cm.maximum_calibration_error(SEED_CONF, SEED_CORRECT, bins=5) == FLOAT64.approx(0.16 / 0.3)


def test_reliability_table_of_seed_example():
    rows = cm.reliability_bins(SEED_CONF, SEED_CORRECT, bins=5)
    assert [r.count for r in rows] == [0, 1, 3, 3, 3]
    assert rows[3].accuracy == pytest.approx(2 / 3) and rows[3].confidence == pytest.approx(0.75)
    assert (rows[0].low, rows[0].high) == (0.0, 0.2) and math.isnan(rows[0].accuracy)


def test_perfectly_calibrated_set_has_zero_ece():
    # confidence c on 4 examples, exactly 4c of them right: every bin's accuracy equals its confidence
    conf = [0.25] * 4 + [0.5] * 4 + [0.75] * 4 + [1.0] * 4
    correct = [1, 0, 0, 0] + [1, 1, 0, 0] + [1, 1, 1, 0] + [1, 1, 1, 1]
    for bins in (4, 10):
        assert cm.expected_calibration_error(conf, correct, bins) == FLOAT64.approx(0.0)
    assert cm.expected_calibration_error(conf, correct, 4, "mass") == FLOAT64.approx(0.0)


def test_sampled_calibrated_set_has_small_ece():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.25, 1.0, 200_000)
    correct = rng.uniform(size=conf.size) < conf  # right with probability = confidence
    assert cm.expected_calibration_error(conf, correct, 10) < 0.01
    assert cm.expected_calibration_error(conf, correct, 10, "mass") < 0.01


def test_known_overconfident_set():
    conf = [0.9] * 10  # says 90%, right 6 times in 10
    correct = [1] * 6 + [0] * 4
    for binning in ("width", "mass"):
        assert cm.expected_calibration_error(conf, correct, 10, binning) == pytest.approx(0.3)
    assert cm.maximum_calibration_error(conf, correct) == pytest.approx(0.3)
    assert cm.brier_top_label(conf, correct) == pytest.approx((6 * 0.01 + 4 * 0.81) / 10)


def test_brier_and_nll_hand_worked():
    probs = [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]]
    labels = [0, 2]
    # (0.3² + 0.2² + 0.1²) = 0.14 and (0.1² + 0.6² + 0.7²) = 0.86 -> mean 0.5
    assert cm.brier_multiclass(probs, labels) == pytest.approx(0.5)
    # top labels: 0.7 right, 0.6 wrong -> ((0.3)² + (0.6)²) / 2
    assert cm.brier_top_label([0.7, 0.6], [1, 0]) == pytest.approx(0.225)
    assert cm.negative_log_likelihood(probs, labels) == pytest.approx(-(math.log(0.7) + math.log(0.3)) / 2)


def test_scores_nll_matches_probability_nll_and_ignores_padding():
    scores = np.array([[math.log(0.7), math.log(0.2), math.log(0.1)], [0.0, 1.0, -np.inf]])
    probs = cm.softmax_scores(scores)
    assert probs[1, 2] == 0.0 and probs[1].sum() == pytest.approx(1.0)
    assert cm.scores_nll(scores, [0, 1]) == pytest.approx(cm.negative_log_likelihood(probs, [0, 1]))


def test_equal_mass_bins_are_balanced():
    which = cm.bin_assignments(np.linspace(0, 1, 23), 5, "mass")
    counts = np.bincount(which, minlength=5)
    assert counts.sum() == 23 and counts.max() - counts.min() <= 1


def test_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, size=(4000, 4))
    p = cm.softmax_scores(logits, temperature=2.0)  # the truth is twice as flat as the scores say
    labels = np.array([rng.choice(4, p=row) for row in p])
    assert cm.fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.1)


confidences = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60)
score_rows = st.integers(2, 5).flatmap(lambda c: st.lists(
    st.lists(st.floats(-30, 30), min_size=c, max_size=c), min_size=1, max_size=40))


@given(confidences, st.data(), st.integers(1, 15))
def test_ece_bounds_and_mce_dominates(conf, data, bins):
    correct = data.draw(st.lists(st.integers(0, 1), min_size=len(conf), max_size=len(conf)))
    for binning in ("width", "mass"):
        ece = cm.expected_calibration_error(conf, correct, bins, binning)
        assert 0.0 <= ece <= 1.0 + 1e-12
        assert cm.maximum_calibration_error(conf, correct, bins, binning) >= ece - 1e-12
    assert 0.0 <= cm.brier_top_label(conf, correct) <= 1.0


@settings(max_examples=60, deadline=None)
@given(score_rows, st.data())
def test_temperature_scaling_never_increases_nll_on_its_split(rows, data):
    scores = np.array(rows)
    labels = np.array(data.draw(st.lists(st.integers(0, scores.shape[1] - 1),
                                         min_size=len(rows), max_size=len(rows))))
    t = cm.fit_temperature(scores, labels)
    assert 0.05 <= t <= 20.0
    assert cm.scores_nll(scores, labels, t) <= cm.scores_nll(scores, labels, 1.0) + 1e-12
    assert 0.0 <= cm.brier_multiclass(cm.softmax_scores(scores, t), labels) <= 2.0


def test_bad_input_is_an_input_error():
    with pytest.raises(InputError, match="bins"):
        cm.expected_calibration_error([0.5], [1], bins=0)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        cm.expected_calibration_error([1.5], [1])
    with pytest.raises(InputError, match="correctness"):
        cm.brier_top_label([0.5, 0.6], [1])
    with pytest.raises(InputError, match="label"):
        cm.brier_multiclass([[0.5, 0.5]], [2])
    with pytest.raises(InputError, match="binning"):
        cm.expected_calibration_error([0.5], [1], binning="quantile")
