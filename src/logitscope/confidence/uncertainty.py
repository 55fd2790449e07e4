"""Where was the model unsure? Token flags merged into word/phrase spans.

A scored token is flagged when its probability is below ``max_prob_below`` or
the entropy of the distribution it was drawn from is above ``entropy_above``
(either test may be switched off with None). Flags are then lifted to words —
maximal runs of non-whitespace characters, found from character offsets, so a
word split into several tokens is flagged once — and neighbouring flagged words
merge into one phrase span:

    text     The  capital  of  Austr|alia  is  Vien|na .
    flagged                       ^^^^              ^^
    spans                    [Australia]       [Vienna.]

Sequence summary (over scored tokens): minimum token probability, mean
log-prob, mean entropy, and the maximum-sequence-probability uncertainty
``msp = -Σ log p`` (LM-Polygraph's MSP: higher means less likely overall).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import InputError, check_range
from ..results import ResultMixin, ScoreResult, TokenScore

DEFAULT_MAX_PROB = 0.1  # a token the model gave less than 10% is flagged
DEFAULT_MAX_ENTROPY = 4.0  # nats; ≈ as spread out as a uniform choice among e^4 ≈ 55 tokens
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class UncertainSpan(ResultMixin):
    start: int  # character offsets into the scored string
    end: int
    text: str
    token_positions: tuple[int, ...]  # flagged tokens inside the span
    min_prob: float
    max_entropy: float


@dataclass(frozen=True)
class UncertaintyResult(ResultMixin):
    scored: ScoreResult
    max_prob_below: float | None
    entropy_above: float | None
    flagged: tuple[int, ...]  # token positions
    spans: tuple[UncertainSpan, ...]

    @property
    def min_token_prob(self) -> float:
        return min(t.prob for t in self.scored.scored_tokens)

    @property
    def mean_logprob(self) -> float:
        return self.scored.mean_logprob

    @property
    def mean_entropy(self) -> float:
        toks = self.scored.scored_tokens
        return math.fsum(t.entropy for t in toks) / len(toks)

    @property
    def msp(self) -> float:
        """Maximum-sequence-probability uncertainty: -log p(text), in nats."""
        return -self.scored.total_logprob

    def summary(self) -> dict:
        return {"num_scored": self.scored.num_scored, "num_flagged": len(self.flagged),
                "min_token_prob": self.min_token_prob, "mean_logprob": self.mean_logprob,
                "mean_entropy": self.mean_entropy, "msp": self.msp}

    def to_dict(self) -> dict:
        return {"text": self.scored.text, "max_prob_below": self.max_prob_below,
                "entropy_above": self.entropy_above, "summary": self.summary(),
                "spans": [s.to_dict() for s in self.spans], "flagged_positions": list(self.flagged)}

    def _rows(self) -> list[dict]:
        return [s.to_dict() for s in self.spans]


def check_thresholds(max_prob_below: float | None, entropy_above: float | None) -> None:
    if max_prob_below is None and entropy_above is None:
        raise InputError("both thresholds are off, nothing can be flagged",
                         hint="set max_prob_below in [0, 1] or entropy_above >= 0")
    if max_prob_below is not None:
        check_range("max_prob_below", max_prob_below, 0.0, 1.0)
    if entropy_above is not None:
        check_range("entropy_above", entropy_above, 0.0, None)


def is_flagged(tok: TokenScore, max_prob_below: float | None, entropy_above: float | None) -> bool:
    if not tok.scored:
        return False
    low_prob = max_prob_below is not None and tok.prob < max_prob_below
    spread = entropy_above is not None and tok.entropy > entropy_above
    return low_prob or spread


def flag_uncertain(scored: ScoreResult, max_prob_below: float | None = DEFAULT_MAX_PROB,
                   entropy_above: float | None = DEFAULT_MAX_ENTROPY) -> UncertaintyResult:
    """Flag tokens of an already scored text and merge them into word spans."""
    check_thresholds(max_prob_below, entropy_above)
    if not scored.num_scored:
        raise InputError("no token of the text was scored", hint="score a longer text or use bos=True")
    flagged = [t for t in scored.tokens if is_flagged(t, max_prob_below, entropy_above)]
    full = (scored.context or "") + scored.text
    spans = merge_spans(full, flagged)
    return UncertaintyResult(scored, max_prob_below, entropy_above, tuple(t.position for t in flagged), spans)


def merge_spans(full: str, flagged: list[TokenScore]) -> tuple[UncertainSpan, ...]:
    """Lift flagged tokens to the words they touch; adjacent flagged words form one span."""
    words = [m.span() for m in _WORD.finditer(full)]
    hits: dict[int, list[TokenScore]] = {}
    for tok in flagged:
        for w in _words_touched(words, tok.start, tok.end):
            hits.setdefault(w, []).append(tok)
    spans, run = [], []
    for w in sorted(hits):
        if run and w != run[-1] + 1:
            spans.append(_span(full, words, run, hits))
            run = []
        run.append(w)
    if run:
        spans.append(_span(full, words, run, hits))
    return tuple(spans)


def _words_touched(words: list[tuple[int, int]], start: int, end: int) -> list[int]:
    """Indices of words overlapping [start, end); a whitespace-only token touches the next word."""
    touched = [i for i, (ws, we) in enumerate(words) if ws < end and we > start]
    if not touched:
        touched = [i for i, (ws, _) in enumerate(words) if ws >= end][:1]
    return touched


def _span(full: str, words: list[tuple[int, int]], run: list[int], hits: dict) -> UncertainSpan:
    toks = {t.position: t for w in run for t in hits[w]}.values()
    start, end = words[run[0]][0], words[run[-1]][1]
    return UncertainSpan(start, end, full[start:end], tuple(sorted(t.position for t in toks)),
                         min(t.prob for t in toks), max(t.entropy for t in toks))
