"""Multiple-choice loading, choice scoring and the calibration report (toy model + a few smol checks)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import logitscope
from logitscope.evaluation import calibration as cal
from logitscope.backends.toy import ToyBackend
from logitscope.errors import InputError
from tolerances import FLOAT32_TOKEN, FLOAT64

# "Question: pick\nAnswer:" is three toy words; after "Answer:" the bigram model
# prefers "cat" 3:1 over "dog" (add-0.1 smoothing), and "big dog" is two words.
TOY_CORPUS = ["Question: pick Answer: cat"] * 3 + ["Question: pick Answer: dog", "Question: pick Answer: big dog"]


@pytest.fixture
def toy():
    return logitscope.from_backend(ToyBackend.from_ngrams(TOY_CORPUS, order=2, alpha=0.1))


def write_jsonl(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize("line, message", [
    ('{"question": "q", "choices": [', "not valid JSON"),
    ('["q", ["a", "b"], 0]', "JSON object"),
    ('{"question": "q", "choices": ["a", "b"]}', "missing field(s) answer"),
    ('{"question": " ", "choices": ["a", "b"], "answer": 0}', "'question'"),
    ('{"question": "q", "choices": ["a"], "answer": 0}', "at least 2"),
    ('{"question": "q", "choices": ["a", "a"], "answer": 0}', "distinct"),
    ('{"question": "q", "choices": ["a", "b"], "answer": 2}', "[0, 1], got 2"),
    ('{"question": "q", "choices": ["a", "b"], "answer": -1}', "got -1"),
    ('{"question": "q", "choices": ["a", "b"], "answer": true}', "got True"),
])
def test_bad_lines_say_what_is_wrong(line, message):
    with pytest.raises(InputError) as err:
        cal.parse_mcq_line(line)
    assert message in err.value.message


def test_malformed_lines_are_reported_with_file_and_line_and_the_rest_is_kept(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", [
        {"question": "pick", "choices": ["cat", "dog"], "answer": 0},
        '{"question": "broken"',
        "",
        {"question": "pick", "choices": ["cat"], "answer": 0},
        {"question": "pick", "choices": ["dog", "cat"], "answer": 5},
        {"question": "pick", "choices": ["dog", "cat"], "answer": 1},
    ])
    data = cal.load_mcq(path)
    assert [it.answer for it in data.items] == [0, 1]
    assert [p.split(": ")[0] for p in data.problems] == [f"{path}:2", f"{path}:4", f"{path}:5"]


def test_a_file_with_no_valid_line_or_no_file_is_an_error(tmp_path):
    with pytest.raises(InputError, match="no valid question"):
        cal.load_mcq(write_jsonl(tmp_path / "bad.jsonl", ["nope", "{}"]))
    with pytest.raises(InputError, match="does not exist"):
        cal.load_mcq(tmp_path / "missing.jsonl")


def test_bundled_dataset_is_clean_and_balanced():
    data = cal.load_mcq()
    assert len(data.items) >= 150 and data.problems == ()
    assert all(len(it.choices) == 4 for it in data.items)
    counts = np.bincount([it.answer for it in data.items], minlength=4)
    assert counts.min() >= len(data.items) // 4 - 1
    assert len({it.question for it in data.items}) == len(data.items)


def toy_logprob(model, prompt_words, word):
    """log p(word | prompt) straight from the toy model's next-token distribution."""
    ids = [model.backend.bos_token_id] + model.backend.tokenize(prompt_words).ids
    return float(torch.log_softmax(model.backend.next_logits([ids])[0].double(), -1)[model.backend.index[word]])


def test_sum_confidence_is_the_model_probability_renormalised_over_choices(toy):
    items = (cal.McqItem("pick", ("cat", "dog"), 0), cal.McqItem("pick", ("dog", "cat"), 0))
    report = cal.evaluate(toy.backend, cal.McqDataset("toy", items, ()), normalize="sum", bins=5)
    prompt = "Question: pick\nAnswer:"
    p_cat, p_dog = (math.exp(toy_logprob(toy, prompt, w)) for w in ("cat", "dog"))
    first = report.questions[0]
    assert first.probs[0] == FLOAT64.approx(p_cat / (p_cat + p_dog))
    assert first.scores[0] == FLOAT64.approx(math.log(p_cat))
    assert [q.correct for q in report.questions] == [True, False]
    assert report.metrics.accuracy == 0.5
    assert report.temperature is None  # fewer than 4 questions: no split to fit on


def test_normalisations_change_multi_token_choices_only(toy):
    item = cal.McqItem("pick", ("cat", "big dog"), 0)
    sums = cal.score_choices(toy.backend, [item], "sum")[0]
    means = cal.score_choices(toy.backend, [item], "mean")[0]
    per_byte = cal.score_choices(toy.backend, [item], "bytes")[0]
    assert means[0] == pytest.approx(sums[0]) and means[1] == pytest.approx(sums[1] / 2)
    assert per_byte[1] == FLOAT64.approx(sums[1] / len("big dog".encode()))  # toy tokens exclude spaces
    with pytest.raises(InputError, match="normalisation"):
        cal.score_choices(toy.backend, [item], "max")


def test_padding_for_questions_with_fewer_choices(toy):
    items = [cal.McqItem("pick", ("cat", "dog"), 0), cal.McqItem("pick", ("dog", "cat", "big dog"), 1)]
    scores = cal.score_choices(toy.backend, items, "sum")
    assert scores.shape == (2, 3) and scores[0, 2] == -np.inf
    metrics = cal.calibration_metrics(scores, np.array([0, 1]), bins=4)
    probs = [np.exp(row[np.isfinite(row)]) / np.exp(row[np.isfinite(row)]).sum() for row in scores]
    brier = np.mean([((p - np.eye(len(p))[y]) ** 2).sum() for p, y in zip(probs, (0, 1))])  # padding adds nothing
    assert metrics.accuracy == 1.0 and metrics.brier == FLOAT64.approx(brier)


def test_temperature_report_never_worsens_its_own_split():
    rng = np.random.default_rng(3)
    scores = rng.normal(0, 4, size=(60, 4))  # overconfident scores, labels only loosely related
    labels = np.where(rng.uniform(size=60) < 0.5, scores.argmax(1), rng.integers(0, 4, 60))
    rep = cal.temperature_report(scores, labels, bins=5)
    assert rep.fit_size == 30 and rep.before.n == 30
    assert rep.nll_fit_after <= rep.nll_fit_before
    assert rep.temperature > 1.0  # overconfident -> flatten
    assert rep.after.temperature == rep.temperature and rep.before.temperature == 1.0


@pytest.mark.parity
@pytest.mark.slow
def test_smol_choice_scores_match_model_score(smol):
    item = cal.load_mcq().items[0]  # the capital of France
    scores = cal.score_choices(smol.backend, [item], "sum")[0]
    prompt = cal.PROMPT_TEMPLATE.format(question=item.question)
    for choice, score in zip(item.choices, scores):
        assert score == FLOAT32_TOKEN.approx(smol.score(" " + choice, context=prompt).total_logprob)


@pytest.mark.slow
def test_smol_calibrate_cli_reports_bad_lines_and_writes_a_plot(cli, tmp_path):
    data = cal.load_mcq()
    rows = [{"question": it.question, "choices": list(it.choices), "answer": it.answer} for it in data.items[:6]]
    path = write_jsonl(tmp_path / "q.jsonl", rows[:3] + ['{"question": 1}'] + rows[3:])
    refused = cli(["calibrate", str(path), "--json"])
    assert refused.exit_code == 2 and refused.stdout == "" and f"error: {path}:4: " in refused.stderr
    out = cli(["calibrate", str(path), "--json", "--bins", "5", "--plot", str(tmp_path / "r.png"), "--skip-bad"])
    assert out.exit_code == 0
    report = json.loads(out.stdout)
    assert report["metrics"]["n"] == 6 and report["problems"][0].startswith(f"{path}:4: ")
    assert report["temperature"]["fit_size"] == 3
    assert (tmp_path / "r.png").stat().st_size > 1000
    text = cli(["calibrate", str(path), "--normalize", "pmi", "--skip-bad"])
    assert text.stderr.startswith(f"skipped: {path}:4: ") and "skipped 1 malformed line(s)" in text.stdout
    assert "temperature scaling" in text.stdout


def test_calibrate_cli_bad_input_is_one_line(cli, tmp_path):
    out = cli(["calibrate", str(tmp_path / "none.jsonl"), "--model", "toy"])
    assert out.exit_code == 2 and out.output.count("\n") == 1 and "does not exist" in out.output
