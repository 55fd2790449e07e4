"""Multiple-choice evaluation with calibration: does confidence 0.8 mean right 80% of the time?

Each question becomes a prompt through ``template`` (default
``"Question: {question}\\nAnswer:"``, lm-eval's ``doc_to_text``) and every choice is
``delimiter + choice`` (default ``" "``, lm-eval's ``target_delimiter``), scored as its continuation with ``ranking.rank`` (the prompt is prefilled once
and its KV cache reused; the boundary rule of ``boundary.encode`` applies). A
choice's score is one normalisation of its log-probability:

    sum    Σ log p(choice tokens | prompt)
    mean   sum / number of scored tokens
    bytes  sum / UTF-8 bytes of the scored span
    pmi    sum - log p(span | prefix token only)

The confidence over choices is softmax(scores); the prediction is its argmax.
For ``sum`` this is the model's probability of each choice renormalised over the
choices; for the other normalisations it is a softmax of normalised scores.
Temperature scaling is fitted on one half of the questions (a fixed shuffle) and
reported on the other half.

Dataset format (JSONL, one object per line):
    {"question": "What is 2 + 2?", "choices": ["3", "4", "5", "6"], "answer": 1}
Malformed lines are reported as ``file:line: problem``; ``load_mcq(skip_bad=False)``
refuses such a file, ``skip_bad=True`` keeps the valid lines and counts the others.
Lines end at "\\n" only. A choice that already starts with whitespace after a delimiter
that ends with it (an lm-eval-style dataset with the default delimiter) would be scored
with a doubled space: the report's ``notes`` say so (use ``delimiter=""`` for such data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..core import calibration_math as cm
from ..core import jsonio
from ..core import corpus
from ..backends.base import Backend
from ..core.boundary import prefix_token_id
from ..errors import CapabilityError, InputError, check_range
from ..progress import progress as progress_bar
from ..results import ResultMixin

PROMPT_TEMPLATE = "Question: {question}\nAnswer:"
DELIMITER = " "
NORMALIZE = {"sum": "sum", "mean": "mean", "bytes": "per_byte", "pmi": "pmi"}  # ours -> ranking's name


# -- dataset --------------------------------------------------------------------------------
@dataclass(frozen=True)
class McqItem(ResultMixin):
    question: str
    choices: tuple[str, ...]
    answer: int  # 0-based index into choices
    where: str = ""  # "file:line"


@dataclass(frozen=True)
class McqDataset(ResultMixin):
    source: str
    items: tuple[McqItem, ...]
    problems: tuple[str, ...]  # "file:line: what is wrong", one per skipped line


def bundled_dataset_path() -> Path:
    """The 172-question general-knowledge set shipped with logitscope (CC0)."""
    return Path(str(resources.files("logitscope") / "data" / "mcq.jsonl"))


def load_mcq(path: str | Path | None = None, skip_bad: bool = True) -> McqDataset:
    """Read a JSONL multiple-choice file; bad lines become ``problems``, good ones items.

    ``skip_bad=False`` raises InputError when any line is malformed (the error's ``problems``
    lists them all), so nothing is scored on a half-read file.
    """
    path = Path(path) if path is not None else bundled_dataset_path()
    items, problems = [], []
    for number, line in corpus.numbered_lines(path):
        try:
            items.append(parse_mcq_line(line, f"{path}:{number}"))
        except InputError as exc:
            problems.append(f"{path}:{number}: {exc.message}")
    data = McqDataset(str(path), tuple(items), tuple(problems))
    if not items:
        raise InputError(f"{path}: holds no valid question ({len(problems)} bad lines)", problems=data.problems,
                         hint='each line must be {"question": str, "choices": [str, ...], "answer": int}')
    if problems and not skip_bad:
        raise InputError(f"{path}: {len(problems)} of {len(problems) + len(items)} lines are malformed",
                         problems=data.problems,
                         hint=f"fix them, or pass --skip-bad to evaluate the {len(items)} valid question(s)")
    return data


def parse_mcq_line(line: str, where: str = "") -> McqItem:
    """One JSONL line -> McqItem, or InputError saying what is wrong with it."""
    obj = jsonio.loads(line, hint=None)  # load_mcq puts FILE:LINE in front
    if not isinstance(obj, dict):
        raise InputError("a line must be a JSON object")
    missing = [k for k in ("question", "choices", "answer") if k not in obj]
    if missing:
        raise InputError(f"missing field(s) {', '.join(missing)}")
    question, choices, answer = obj["question"], obj["choices"], obj["answer"]
    if not isinstance(question, str) or not question.strip():
        raise InputError(f"field 'question' must be a non-empty string, got {question!r}")
    if not isinstance(choices, list) or len(choices) < 2:
        raise InputError(f"field 'choices' must be a list of at least 2 strings, got {choices!r}")
    if not all(isinstance(c, str) and c.strip() for c in choices) or len(set(choices)) != len(choices):
        raise InputError("field 'choices' must hold distinct non-empty strings")
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
        raise InputError(f"field 'answer' must be an integer index in [0, {len(choices) - 1}], got {answer!r}")
    return McqItem(question.strip(), tuple(choices), answer, where)


# -- scoring ----------------------------------------------------------------------------------
def check_normalize(normalize: str) -> str:
    if normalize not in NORMALIZE:
        raise InputError(f"unknown normalisation {normalize!r}", hint=f"use one of {', '.join(NORMALIZE)}")
    return normalize


def check_template(template: str) -> str:
    if not isinstance(template, str) or "{question}" not in template:
        raise InputError(f"template {template!r} has no {{question}}", hint="e.g. 'Question: {question}\\nAnswer:'")
    return template


def render_prompt(template: str, question: str) -> str:
    """The template with {question} substituted once (braces in the question stay as they are)."""
    return check_template(template).replace("{question}", question)


def doubled_space_note(items: Sequence[McqItem], template: str, delimiter: str) -> str | None:
    """A note when whitespace would be doubled where the prompt, delimiter and choice meet."""
    def doubled(prompt: str, choice: str) -> bool:
        joint = prompt[-1:] + delimiter + choice[:1]
        return any(a.isspace() and b.isspace() for a, b in zip(joint, joint[1:]))

    n = sum(doubled(render_prompt(template, it.question), c) for it in items for c in it.choices)
    if not n:
        return None
    return (f"{n} choice(s) meet the prompt with doubled whitespace (delimiter {delimiter!r}); they are scored "
            "that way. Choices that already start with a space (lm-eval style) want --delimiter ''")


def score_choices(backend: Backend, items: Sequence[McqItem], normalize: str = "sum",
                  bos: str | bool = "auto", progress: bool = False, template: str = PROMPT_TEMPLATE,
                  delimiter: str = DELIMITER) -> np.ndarray:
    """Choice scores (N, C_max); questions with fewer choices are padded with -inf."""
    from ..confidence.ranking import rank  # the ranking machinery: prefix KV reuse, one boundary rule

    check_normalize(normalize)
    if normalize == "pmi" and prefix_token_id(backend) is None:
        raise CapabilityError("pmi needs a BOS or EOS token to score choices unconditionally",
                              hint="use --normalize sum, mean or bytes")
    out = np.full((len(items), max(len(it.choices) for it in items)), -np.inf)  # (N, C_max)
    for row, item in enumerate(progress_bar(items, progress, "scoring questions")):
        result = rank(backend, render_prompt(template, item.question), [delimiter + c for c in item.choices],
                      bos=bos, unconditional=normalize == "pmi")
        out[row, : len(item.choices)] = [c.score(NORMALIZE[normalize]) for c in result.candidates]
    return out


# -- metrics and report ---------------------------------------------------------------------
@dataclass(frozen=True)
class CalibrationMetrics(ResultMixin):
    """Accuracy and calibration of softmax(scores / temperature) on some questions."""

    n: int
    temperature: float
    accuracy: float
    ece: float  # equal-width bins
    ece_equal_mass: float
    mce: float  # equal-width bins
    brier: float  # multi-class: mean Σ_c (p_c - y_c)², in [0, 2]
    brier_top_label: float  # mean (confidence - correct)², in [0, 1]
    nll: float  # mean -log p(correct choice), nats
    bins: tuple[cm.CalibrationBin, ...]  # equal-width reliability table


def calibration_metrics(scores: np.ndarray, labels: np.ndarray, bins: int = 10,
                        temperature: float = 1.0) -> CalibrationMetrics:
    """Every calibration number for choice scores (N, C) and correct indices (N,)."""
    probs = cm.softmax_scores(scores, temperature)  # (N, C)
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    correct = (pred == labels).astype(float)
    return CalibrationMetrics(
        n=len(labels), temperature=temperature, accuracy=float(correct.mean()),
        ece=cm.expected_calibration_error(conf, correct, bins, "width"),
        ece_equal_mass=cm.expected_calibration_error(conf, correct, bins, "mass"),
        mce=cm.maximum_calibration_error(conf, correct, bins, "width"),
        brier=cm.brier_multiclass(probs, labels), brier_top_label=cm.brier_top_label(conf, correct),
        nll=cm.scores_nll(scores, labels, temperature),
        bins=tuple(cm.reliability_bins(conf, correct, bins, "width")))


@dataclass(frozen=True)
class TemperatureReport(ResultMixin):
    """Temperature fitted on ``fit`` questions, judged on the held-out ``eval`` questions."""

    temperature: float
    fit_size: int
    nll_fit_before: float  # on the fitting split, T = 1
    nll_fit_after: float  # on the fitting split, fitted T (never larger than before)
    before: CalibrationMetrics  # held-out split, T = 1
    after: CalibrationMetrics  # held-out split, fitted T


def temperature_report(scores: np.ndarray, labels: np.ndarray, bins: int = 10,
                       seed: int = 0) -> TemperatureReport | None:
    """Fit T on a random half, report before/after on the other half (None if < 4 questions)."""
    if len(labels) < 4:
        return None
    order = np.random.default_rng(seed).permutation(len(labels))
    fit, held = order[: len(order) // 2], order[len(order) // 2:]
    t = cm.fit_temperature(scores[fit], labels[fit])
    return TemperatureReport(
        t, len(fit), cm.scores_nll(scores[fit], labels[fit]), cm.scores_nll(scores[fit], labels[fit], t),
        calibration_metrics(scores[held], labels[held], bins), calibration_metrics(scores[held], labels[held], bins, t))


@dataclass(frozen=True)
class QuestionScore(ResultMixin):
    question: str
    choices: tuple[str, ...]
    answer: int
    scores: tuple[float, ...]  # normalised log-prob score of each choice
    probs: tuple[float, ...]  # softmax over choices (T = 1)

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probs))

    @property
    def correct(self) -> bool:
        return self.predicted == self.answer

    @property
    def confidence(self) -> float:
        return max(self.probs)

    def to_dict(self) -> dict:
        return {"question": self.question, "choices": list(self.choices), "answer": self.answer,
                "predicted": self.predicted, "correct": self.correct, "confidence": self.confidence,
                "scores": list(self.scores), "probs": list(self.probs)}


@dataclass(frozen=True)
class CalibrationReport(ResultMixin):
    source: str
    normalize: str
    metrics: CalibrationMetrics  # all questions, T = 1
    temperature: TemperatureReport | None
    questions: tuple[QuestionScore, ...]
    problems: tuple[str, ...]  # skipped dataset lines
    notes: tuple[str, ...] = ()  # facts about how the data was scored (e.g. doubled spaces)

    def _rows(self) -> list[dict]:
        return [q.to_dict() for q in self.questions]


def evaluate(backend: Backend, dataset: str | Path | McqDataset | None = None, normalize: str = "sum",
             bins: int = 10, bos: str | bool = "auto", seed: int = 0, progress: bool = False,
             template: str = PROMPT_TEMPLATE, delimiter: str = DELIMITER) -> CalibrationReport:
    """Score a multiple-choice set and report accuracy and calibration (see module docstring)."""
    check_range("bins", bins, 1, 1000)
    check_normalize(normalize)
    check_template(template)
    data = dataset if isinstance(dataset, McqDataset) else load_mcq(dataset)
    scores = score_choices(backend, data.items, normalize, bos, progress, template, delimiter)  # (N, C_max)
    labels = np.array([it.answer for it in data.items])
    probs = cm.softmax_scores(scores)
    questions = tuple(QuestionScore(it.question, it.choices, it.answer, tuple(scores[i, : len(it.choices)].tolist()),
                                    tuple(probs[i, : len(it.choices)].tolist())) for i, it in enumerate(data.items))
    note = doubled_space_note(data.items, template, delimiter)
    return CalibrationReport(data.source, normalize, calibration_metrics(scores, labels, bins),
                             temperature_report(scores, labels, bins, seed), questions, data.problems,
                             (note,) if note else ())
