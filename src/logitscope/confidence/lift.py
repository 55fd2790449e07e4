"""Context lift: did a retrieved passage make the answer more likely?

For a question Q, an answer A and contexts C1..Cn, the answer is scored once
without any context and once after each context (``template``), with the same
boundary rule as ``score(A, context=prompt)``:

    without:  log p(A | Q)        = Σ_t log p(a_t | Q, a_<t)
    with Ci:  log p(A | Ci, Q)    = Σ_t log p(a_t | Ci, Q, a_<t)
    lift(Ci)  = log p(A | Ci, Q) - log p(A | Q)      (pointwise mutual information
                                                      of answer and context, given Q)

Lift is in nats; lift > 0 means the context raised the answer's probability
(lift = ln 2: doubled it). Per-token lift shows which answer tokens the context
made likely. An answer whose lift stays below ``min_lift`` for every context is
flagged as not supported by the contexts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..backends.base import Backend
from ..core.boundary import check_fits, encode, require_text
from ..errors import InputError, check_range, check_sequence
from ..results import ResultMixin, ScoreResult, prob_of
from ..scoring.score import score_texts

DEFAULT_TEMPLATE = "{context}\n\n{question}"
DEFAULT_MIN_LIFT = 3.0  # nats: the context made the answer e^3 ≈ 20x more likely (an unrelated
#                        context alone often moves a small model by 1-2 nats)


@dataclass(frozen=True)
class TokenLift(ResultMixin):
    """One answer token: its log-prob without and with the context (nats)."""

    token_id: int
    text: str
    logprob_without: float
    logprob_with: float

    prob_without = prob_of("logprob_without")
    prob_with = prob_of("logprob_with")

    @property
    def lift(self) -> float:
        return self.logprob_with - self.logprob_without

    def to_dict(self) -> dict:
        return {"token_id": self.token_id, "text": self.text, "logprob_without": self.logprob_without,
                "logprob_with": self.logprob_with, "lift": self.lift,
                "prob_without": self.prob_without, "prob_with": self.prob_with}


@dataclass(frozen=True)
class ContextLift(ResultMixin):
    """The answer scored after one context."""

    context: str
    scored: ScoreResult  # the answer after template(context, question)
    total_without: float
    tokens: tuple[TokenLift, ...]  # empty when the answer tokenized differently (see aligned)
    min_lift: float

    @property
    def total_with(self) -> float:
        return self.scored.total_logprob

    @property
    def lift(self) -> float:
        return self.total_with - self.total_without

    @property
    def aligned(self) -> bool:
        """True when the answer's tokens are the same with and without the context."""
        return bool(self.tokens)

    @property
    def supported(self) -> bool:
        return self.lift >= self.min_lift

    @property
    def lifted_tokens(self) -> tuple[TokenLift, ...]:
        """Answer tokens the context made at least e^min_lift times more likely."""
        return tuple(t for t in self.tokens if t.lift >= self.min_lift)

    def to_dict(self) -> dict:
        return {"context": self.context, "total_with": self.total_with, "total_without": self.total_without,
                "lift": self.lift, "supported": self.supported, "aligned": self.aligned,
                "lifted_tokens": [t.text for t in self.lifted_tokens], "tokens": [t.to_dict() for t in self.tokens]}


@dataclass(frozen=True)
class LiftResult(ResultMixin):
    question: str
    answer: str
    without: ScoreResult  # the answer after the question alone
    contexts: tuple[ContextLift, ...]
    min_lift: float
    skipped: tuple[str, ...] = ()  # "context N: why", one per context that could not be scored

    @property
    def total_without(self) -> float:
        return self.without.total_logprob

    @property
    def best(self) -> ContextLift:
        return max(self.contexts, key=lambda c: c.lift)

    @property
    def supported(self) -> bool:
        """Did at least one context raise the answer's log-prob by ``min_lift``?"""
        return any(c.supported for c in self.contexts)

    def to_dict(self) -> dict:
        return {"question": self.question, "answer": self.answer, "total_without": self.total_without,
                "min_lift": self.min_lift, "supported": self.supported,
                "contexts": [c.to_dict() for c in self.contexts], "skipped": list(self.skipped)}

    def _rows(self) -> list[dict]:
        return [{"context_index": i, "token": t.text, "logprob_without": t.logprob_without,
                 "logprob_with": t.logprob_with, "lift": t.lift}
                for i, c in enumerate(self.contexts) for t in c.tokens]


def context_lift(backend: Backend, question: str, answer: str, contexts: Sequence[str],
                 template: str = DEFAULT_TEMPLATE, min_lift: float = DEFAULT_MIN_LIFT,
                 bos: str | bool = "auto") -> LiftResult:
    """Score ``answer`` after ``question`` alone and after each context (one batch).

    A context that does not fit the model's window is reported in ``skipped`` and the
    others are still scored; InputError when none fits (or the question alone does not).
    """
    require_text(question, "question")
    require_text(answer, "answer")
    check_range("min_lift", min_lift, None, None)
    contexts = _check_contexts(contexts)
    if not isinstance(template, str) or "{context}" not in template or "{question}" not in template:
        raise InputError("the template needs {context} and {question}", hint="e.g. '{context}\\n\\n{question}'")
    _check_fits(backend, encode(backend, answer, question, bos).ids, "the question + answer")
    fitting, skipped = [], []
    for i, c in enumerate(contexts):
        try:
            prompt = _fill(template, c, question)
            _check_fits(backend, encode(backend, answer, prompt, bos).ids, f"context {i} + question + answer")
            fitting.append((c, prompt))
        except InputError as exc:
            skipped.append(str(exc) if str(exc).startswith("context ") else f"context {i}: {exc}")
    if not fitting:
        raise InputError(f"none of the {len(contexts)} contexts could be scored", hint="see the errors above",
                         problems=tuple(skipped))
    without, *with_ctx = score_texts(backend, [answer] * (len(fitting) + 1), [question] + [p for _, p in fitting],
                                     top_k=0, bos=bos)
    lifts = tuple(ContextLift(c, r, without.total_logprob, token_lifts(without, r), min_lift)
                  for (c, _), r in zip(fitting, with_ctx))
    return LiftResult(question, answer, without, lifts, min_lift, tuple(skipped))


def token_lifts(without: ScoreResult, with_ctx: ScoreResult) -> tuple[TokenLift, ...]:
    """Pair the answer's scored tokens; empty when the two tokenizations differ."""
    a, b = without.scored_tokens, with_ctx.scored_tokens
    if [t.token_id for t in a] != [t.token_id for t in b]:
        return ()
    return tuple(TokenLift(x.token_id, x.text, x.logprob, y.logprob) for x, y in zip(a, b))


def _check_contexts(contexts: Sequence[str]) -> list[str]:
    check_sequence("contexts", contexts)
    if not contexts:
        raise InputError("no contexts given", hint="pass at least one context (--context TEXT)")
    for i, c in enumerate(contexts):
        require_text(c, f"context {i}")
    return list(contexts)


def _fill(template: str, context: str, question: str) -> str:
    """The template with {context} and {question} substituted in one pass: braces inside the
    context or the question are text, never placeholders."""
    values = {"{context}": context, "{question}": question}
    return _PLACEHOLDER.sub(lambda m: values[m.group()], template)


_PLACEHOLDER = re.compile(r"\{context\}|\{question\}")


def _check_fits(backend: Backend, ids: list[int], what: str) -> None:
    check_fits(backend, len(ids), what, "shorten or split the context; lift does not window")
