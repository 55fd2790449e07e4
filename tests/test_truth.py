"""True vs false statements: the metrics, the bundled dataset, and the command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import logitscope
from logitscope import InputError
from logitscope.backends.toy import ToyBackend
from logitscope.confidence.truth import MEASURES, evaluate, load_pairs
from logitscope.core.calibration_math import auroc, pair_accuracy, roc_curve
from tolerances import FLOAT64

scores = st.lists(st.integers(-5, 5).map(float), min_size=1, max_size=12)


def brute_auroc(pos, neg):
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@given(scores, scores)
def test_auroc_equals_the_pairwise_count(pos, neg):
    assert auroc(pos, neg) == pytest.approx(brute_auroc(pos, neg))


@given(scores, scores)
def test_auroc_is_antisymmetric(pos, neg):
    assert auroc(pos, neg) + auroc(neg, pos) == pytest.approx(1.0)
    assert auroc([-x for x in pos], [-x for x in neg]) == pytest.approx(1.0 - auroc(pos, neg))


@given(st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3)), min_size=1, max_size=20))
def test_pair_accuracy_counts_wins_and_half_ties(pairs):
    t, f = [float(a) for a, _ in pairs], [float(b) for _, b in pairs]
    expected = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(t, f)) / len(pairs)
    assert pair_accuracy(t, f) == pytest.approx(expected)


def test_roc_curve_runs_from_origin_to_one():
    fpr, tpr = roc_curve([3.0, 2.0, 1.0], [2.0, 0.0])
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert fpr == sorted(fpr) and tpr == sorted(tpr)


def test_metric_bad_input():
    with pytest.raises(InputError):
        auroc([], [1.0])
    with pytest.raises(InputError):
        pair_accuracy([1.0], [1.0, 2.0])


# -- the bundled dataset -----------------------------------------------------------------------
def test_bundled_dataset_is_well_formed():
    pairs = load_pairs()
    assert len(pairs) >= 150
    assert len({p.id for p in pairs}) == len(pairs)
    assert {p.category for p in pairs} == {"capitals", "arithmetic", "dates", "science", "common knowledge"}
    for p in pairs:
        assert p.true != p.false and p.true.strip() and p.false.strip()
        assert p.true.split()[:2] == p.false.split()[:2]  # the same statement, one fact changed
    import logitscope.confidence.truth as truth_module
    assert (Path(truth_module.__file__).parents[1] / "data" / "LICENSE-data.md").is_file()


def test_bad_dataset_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_pairs(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"true": "a", "false": "b"}\n{"true": "only one side"}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: missing field .false."):
        load_pairs(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputError, match="no pairs"):
        load_pairs(empty)


# -- evaluation --------------------------------------------------------------------------------
TRUE = ["the sun is hot", "the snow is cold", "the sea is wet", "the sand is dry"]
FALSE = ["the sun is cold", "the snow is hot", "the sea is dry", "the sand is wet"]


@pytest.fixture
def toy_pairs(tmp_path):
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(json.dumps({"id": i, "category": "toy", "true": t, "false": f}) + "\n"
                            for i, (t, f) in enumerate(zip(TRUE, FALSE))))
    return path


@pytest.fixture
def believer():
    """A trigram model trained on the true statements only (false ones stay in the vocabulary)."""
    return logitscope.from_backend(ToyBackend.from_ngrams(TRUE + ["hot cold wet dry"], order=3, alpha=0.01))


def test_a_model_trained_on_the_truth_separates_the_pairs(believer, toy_pairs):
    result = believer.truth(toy_pairs)
    assert result.num_pairs == 4
    assert result.report("total_logprob").pair_accuracy == 1.0
    assert result.report("mean_logprob").auroc == 1.0
    assert {r.measure for r in result.reports} == set(MEASURES)
    frame = result.to_dataframe()
    assert len(frame) == 4 and "total_logprob_true" in frame.columns


def test_plot_writes_a_png(believer, toy_pairs, tmp_path):
    out = tmp_path / "t.png"
    fig = believer.truth(toy_pairs).plot(save_to=out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    roc, bars = fig.axes
    assert len(roc.lines) == len(MEASURES) + 1 and len(bars.patches) == len(MEASURES)  # + the chance diagonal


def test_truth_cli(cli, tmp_path):
    toy_pairs = tmp_path / "demo.jsonl"  # words of the CLI's toy model
    toy_pairs.write_text("".join(json.dumps({"true": t, "false": f}) + "\n" for t, f in [
        ("the cat sat on the mat", "the mat sat on the cat"), ("to be or not to be", "to be or not to cat"),
        ("the dog slept", "the dog be")]))
    png = tmp_path / "roc.png"
    out = cli(["truth", str(toy_pairs), "-m", "toy", "--json", "--plot", str(png)])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["num_pairs"] == 3 and png.exists()
    table = cli(["truth", str(toy_pairs), "-m", "toy", "--limit", "2"])
    assert "2 pairs" in table.output


@pytest.mark.slow
def test_truth_runs_on_the_bundled_model(smol):
    pairs = load_pairs()[:6]  # capitals the model knows well
    result = evaluate(smol.backend, pairs)
    # each measure's pair accuracy, recomputed independently from Model.score (every token scored)
    by_text = {s: smol.score(s, bos=True, top_k=0) for p in pairs for s in (p.true, p.false)}
    for measure, total in (("total_logprob", lambda r: r.total_logprob), ("mean_logprob", lambda r: r.mean_logprob)):
        wins = [1.0 if total(by_text[p.true]) > total(by_text[p.false]) else 0.0 for p in pairs]
        assert result.report(measure).pair_accuracy == FLOAT64.approx(sum(wins) / len(wins))
    assert result.report("total_logprob").pair_accuracy >= 5 / 6


def test_limit_keeps_the_first_pairs(believer, toy_pairs):
    assert believer.truth(toy_pairs, limit=2).num_pairs == 2
    assert believer.truth(toy_pairs, limit=99).num_pairs == 4
    with pytest.raises(logitscope.InputError, match="limit"):
        believer.truth(toy_pairs, limit=0)
