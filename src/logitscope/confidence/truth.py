"""True vs false statements: how well does each confidence measure separate them?

Every statement of a pair dataset (``{"id", "category", "true", "false"}`` per
line; the bundled ``data/truth_pairs.jsonl`` has 165 pairs) is scored with every
token counted (prefix token in front). Each measure turns a scored statement into
one number, higher meaning "the model finds this more believable":

    total_logprob      Σ log p               (favours short statements)
    mean_logprob       Σ log p / N
    min_token_prob     min p                 (the weakest link)
    neg_mean_entropy   -mean entropy         (how sure the model was, whatever the token)
    neg_mean_log_rank  -mean log rank

Two numbers per measure: pair accuracy — the share of pairs whose true member
scores higher (ties count one half) — and AUROC over all statements
(Mann-Whitney, ties one half). 0.5 is chance for both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..backends.base import Backend
from ..core import jsonio
from ..core import corpus
from ..errors import InputError
from ..core.calibration_math import auroc, pair_accuracy
from ..results import ResultMixin, ScoreResult
from ..scoring.score import score_texts

BATCH = 64  # statements per score_texts call (one progress-bar step)


# -- pure measures and metrics ----------------------------------------------------------
def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


MEASURES: dict[str, Callable[[ScoreResult], float]] = {
    "total_logprob": lambda r: r.total_logprob,
    "mean_logprob": lambda r: r.mean_logprob,
    "min_token_prob": lambda r: min(t.prob for t in r.scored_tokens),
    "neg_mean_entropy": lambda r: -_mean([t.entropy for t in r.scored_tokens]),
    "neg_mean_log_rank": lambda r: -_mean([math.log(t.rank) for t in r.scored_tokens]),
}


# -- data ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StatementPair:
    id: str
    category: str
    true: str
    false: str


def load_pairs(path: str | Path | None = None) -> list[StatementPair]:
    """Read a pair dataset (JSON lines); None reads the bundled one."""
    path = Path(path) if path is not None else Path(str(resources.files("logitscope") / "data" / "truth_pairs.jsonl"))
    pairs = [_parse_pair(line, f"{path}:{n}") for n, line in corpus.numbered_lines(path)]
    if not pairs:
        raise InputError(f"{path}: the dataset has no pairs", hint='one {"true": ..., "false": ...} object per line')
    return pairs


def _parse_pair(line: str, where: str) -> StatementPair:
    rec = jsonio.loads(line, where)
    if not isinstance(rec, dict):
        raise InputError(f"{where}: a line must be a JSON object, got {type(rec).__name__}", hint=PAIR_HINT)
    for field in ("true", "false"):
        if field not in rec:
            raise InputError(f"{where}: missing field {field!r}", hint=PAIR_HINT)
        if not isinstance(rec[field], str) or not rec[field].strip():
            raise InputError(f"{where}: field {field!r} must be a non-empty string, got {rec[field]!r}",
                             hint=PAIR_HINT)
    return StatementPair(str(rec.get("id", where.rsplit(":", 1)[1])), str(rec.get("category", "")),
                         rec["true"], rec["false"])


PAIR_HINT = 'each line: {"id": ..., "category": ..., "true": "...", "false": "..."}'


# -- results -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class MeasureReport(ResultMixin):
    measure: str
    pair_accuracy: float
    auroc: float
    by_category: dict  # category -> pair accuracy


@dataclass(frozen=True)
class TruthResult(ResultMixin):
    num_pairs: int
    reports: tuple[MeasureReport, ...]
    pairs: tuple[StatementPair, ...]
    true_scores: dict  # measure -> tuple of scores, one per pair
    false_scores: dict

    def report(self, measure: str) -> MeasureReport:
        return next(r for r in self.reports if r.measure == measure)

    def to_dict(self) -> dict:
        return {"num_pairs": self.num_pairs, "measures": [r.to_dict() for r in self.reports]}

    def _rows(self) -> list[dict]:
        rows = []
        for i, p in enumerate(self.pairs):
            row = {"id": p.id, "category": p.category, "true": p.true, "false": p.false}
            for m in MEASURES:
                row[f"{m}_true"], row[f"{m}_false"] = self.true_scores[m][i], self.false_scores[m][i]
            rows.append(row)
        return rows


def evaluate(backend: Backend, pairs: Sequence[StatementPair], progress: bool = False) -> TruthResult:
    """Score both versions of every pair (batched) and report every measure."""
    statements = [s for p in pairs for s in (p.true, p.false)]
    scored = _score_batched(backend, statements, progress)
    values = {m: [f(r) for r in scored] for m, f in MEASURES.items()}
    trues = {m: tuple(v[0::2]) for m, v in values.items()}
    falses = {m: tuple(v[1::2]) for m, v in values.items()}
    reports = tuple(MeasureReport(m, pair_accuracy(trues[m], falses[m]), auroc(trues[m], falses[m]),
                                  _by_category(pairs, trues[m], falses[m])) for m in MEASURES)
    return TruthResult(len(pairs), reports, tuple(pairs), trues, falses)


def _score_batched(backend: Backend, statements: list[str], progress: bool) -> list[ScoreResult]:
    from tqdm import tqdm

    out: list[ScoreResult] = []
    with tqdm(total=len(statements), disable=not progress, unit="stmt", desc="scoring") as bar:
        for i in range(0, len(statements), BATCH):
            out.extend(score_texts(backend, statements[i:i + BATCH], top_k=0, bos=True))
            bar.update(len(statements[i:i + BATCH]))
    return out


def _by_category(pairs: Sequence[StatementPair], trues: Sequence[float], falses: Sequence[float]) -> dict:
    cats: dict[str, list[int]] = {}
    for i, p in enumerate(pairs):
        cats.setdefault(p.category, []).append(i)
    return {c: pair_accuracy([trues[i] for i in idx], [falses[i] for i in idx]) for c, idx in sorted(cats.items())}
