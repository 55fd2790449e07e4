"""Typed, frozen results. Stored numbers are natural-log log-probabilities.

Probability, surprisal in bits and perplexity are derived properties, so no flag
ever changes a stored unit. Every result converts to a plain dict (JSON-ready)
and to a pandas DataFrame, and shows itself: ``plot()`` (a matplotlib Figure),
``_repr_html_()`` (Jupyter) and ``__rich__()`` (a rich Console). The views live in
``logitscope.views`` and load only when asked for, so importing a result type never
imports rich or matplotlib.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .core import mathops

if TYPE_CHECKING:  # views load lazily; these names are for type checkers only
    from matplotlib.figure import Figure


def jsonable(value):
    """Recursively turn dataclasses/tuples into JSON-ready values; NaN and ±inf become None
    (strict JSON has no such numbers; see docs/errors.md)."""
    if dataclasses.is_dataclass(value):
        return value.to_dict() if hasattr(value, "to_dict") else {
            f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value) if f.repr
        }
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def prob_of(name: str) -> property:
    """A read-only ``exp(self.<name>)`` property (None while the log-prob is None): results
    store log-probabilities and derive probabilities from them."""
    def prob(self) -> float | None:
        logprob = getattr(self, name)
        return None if logprob is None else math.exp(logprob)
    return property(prob, doc=f"exp({name})")


class ResultMixin:
    """to_dict / to_json / to_dataframe for result dataclasses (fields with repr=False are
    skipped), and their views: plot(), _repr_html_() and __rich__().

    ``produced_by`` says which model, engine and dtype computed the result ({"model", "engine",
    "dtype"}; set by ``Model``'s methods, None for a result built by hand): the terminal and
    notebook views print it under the result and the CLI's --json carries it (``with_producer``);
    ``to_dict``/``to_json`` hold the result's own numbers only."""

    def to_dict(self) -> dict:
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self) if f.repr}

    def to_json(self, **kwargs) -> str:
        return json.dumps(jsonable(self.to_dict()), ensure_ascii=False, allow_nan=False, **kwargs)

    @property
    def produced_by(self) -> dict | None:
        return self.__dict__.get("_produced_by")

    def stamped(self, producer: dict):
        """This result, marked as computed by ``producer`` ({"model", "engine", "dtype"}); returns self."""
        object.__setattr__(self, "_produced_by", dict(producer))
        return self

    def with_producer(self, data: dict) -> dict:
        """``data`` (this result's dict) with ``produced_by`` added when it is known."""
        return data | {"produced_by": self.produced_by} if self.produced_by and isinstance(data, dict) else data

    def _rows(self) -> list[dict]:
        return [self.to_dict()]

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame(self._rows())

    def plot(self, ax=None, save_to=None, **options) -> Figure:
        """A matplotlib Figure of this result (drawn into ``ax`` when given); written to
        ``save_to`` only when that is given. Options depend on the result (e.g. ``by=`` for a
        RankResult, ``top=`` for a ChainResult)."""
        from .views.plots import plot

        return plot(self, ax=ax, save_to=save_to, **options)

    def _repr_html_(self) -> str | None:
        from .views.html import render

        return render(self)

    def __rich__(self):
        from .views.terminal import render

        return render(self)


@dataclass(frozen=True)
class TokenPiece(ResultMixin):
    """One token of a tokenized text: its id, its text and its character span in the input."""

    token_id: int
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class TokenizeResult(ResultMixin):
    """How a text splits into tokens (no special tokens added)."""

    text: str
    tokens: tuple[TokenPiece, ...]

    @property
    def ids(self) -> list[int]:
        return [t.token_id for t in self.tokens]

    def __len__(self) -> int:
        return len(self.tokens)

    def to_dict(self) -> dict:
        return {"text": self.text, "num_tokens": len(self.tokens), "num_chars": len(self.text),
                "tokens": [t.to_dict() for t in self.tokens]}

    def _rows(self) -> list[dict]:
        return [t.to_dict() for t in self.tokens]


@dataclass(frozen=True)
class ModelInfo(ResultMixin):
    """What a loaded model is and can do (``Model.info()``, ``logitscope info``)."""

    model: str
    backend: str  # the backend class
    engine: str  # what computes the numbers: torch, llamacpp, remote, python (toy)
    dtype: str  # the arithmetic of the logits: float32, bfloat16, a GGUF type, ...
    vocab_size: int
    bos_token_id: int | None
    eos_token_id: int | None
    adds_bos_by_default: bool
    capabilities: dict  # Capabilities.describe(): full_vocab, top_k_only, context_length, ...

    def to_dict(self) -> dict:
        return {k: jsonable(v) for k, v in vars(self).items() if k != "capabilities"} | dict(self.capabilities)

    def _rows(self) -> list[dict]:
        return [{"fact": k, "value": v} for k, v in self.to_dict().items()]


@dataclass(frozen=True)
class TokenCandidate(ResultMixin):
    """One vocabulary entry in a next-token distribution."""

    token_id: int
    text: str
    logprob: float
    rank: int
    logit: float | None = None

    prob = prob_of("logprob")

    @property
    def surprisal_bits(self) -> float:
        return -mathops.nats_to_bits(self.logprob)

    def to_dict(self) -> dict:
        return {"token_id": self.token_id, "text": self.text, "logit": jsonable(self.logit),
                "logprob": jsonable(self.logprob), "prob": self.prob, "rank": self.rank}


@dataclass(frozen=True)
class NextTokenResult(ResultMixin):
    """The distribution over the token that follows ``prompt``.

    ``logprobs`` holds the full-vocabulary log-probabilities (after temperature)
    when the backend has them; it is kept out of JSON.
    """

    prompt: str
    input_ids: tuple[int, ...]
    temperature: float
    entropy: float  # nats, of the full distribution after temperature
    top: tuple[TokenCandidate, ...]
    logprobs: object = field(default=None, repr=False, compare=False)  # torch (V,) or None
    top_k_only: int | None = None  # set when the backend sees only its top k: entropy is then a lower bound

    @property
    def entropy_bits(self) -> float:
        return mathops.nats_to_bits(self.entropy)

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "input_ids": list(self.input_ids), "temperature": self.temperature,
                "entropy": self.entropy, "entropy_bits": self.entropy_bits, "top_k_only": self.top_k_only,
                "top": [c.to_dict() for c in self.top]}

    def _rows(self) -> list[dict]:
        return [c.to_dict() for c in self.top]


@dataclass(frozen=True)
class TokenScore(ResultMixin):
    """One token of a scored text. ``logprob`` is None where the token is not scored
    (a prefix token, context tokens, or the first token when no prefix token was added)."""

    position: int  # index into ScoreResult.input_ids
    token_id: int
    text: str
    start: int  # character offsets into the scored string (context + continuation)
    end: int
    logprob: float | None = None
    rank: int | None = None
    entropy: float | None = None  # nats, of the predictive distribution at this position
    alternatives: tuple[TokenCandidate, ...] = ()
    role: str = "text"  # "prefix" | "context" | "text"

    @property
    def scored(self) -> bool:
        return self.logprob is not None

    prob = prob_of("logprob")

    @property
    def surprisal_bits(self) -> float | None:
        return None if self.logprob is None else -mathops.nats_to_bits(self.logprob)

    def to_dict(self) -> dict:
        return {"position": self.position, "token_id": self.token_id, "text": self.text,
                "start": self.start, "end": self.end, "role": self.role,
                "logprob": jsonable(self.logprob), "prob": self.prob,
                "surprisal_bits": jsonable(self.surprisal_bits), "rank": self.rank,
                "entropy": self.entropy, "alternatives": [a.to_dict() for a in self.alternatives]}


@dataclass(frozen=True)
class ScoreResult(ResultMixin):
    """Per-token scores of ``context + text`` with totals over the scored tokens.

    Boundary facts are recorded, not implied: ``prefix_token_id`` is the token
    prepended before the text (None if none), ``first_token_scored`` says whether
    the first text token got a log-prob, ``boundary_merged`` whether a token
    straddles the context/continuation split.
    """

    text: str  # the continuation that was scored (after moving context whitespace)
    context: str | None
    input_ids: tuple[int, ...]  # exactly the ids the model saw, prefix token included
    tokens: tuple[TokenScore, ...]
    prefix_token_id: int | None
    first_token_scored: bool
    boundary_merged: bool = False
    num_windows: int = 1
    top_k_only: int | None = None  # backend saw only its top k: rank k+1 means "> k", entropies are lower bounds

    @property
    def scored_tokens(self) -> tuple[TokenScore, ...]:
        return tuple(t for t in self.tokens if t.scored)

    @property
    def num_scored(self) -> int:
        return len(self.scored_tokens)

    @property
    def total_logprob(self) -> float:
        return math.fsum(t.logprob for t in self.scored_tokens)

    @property
    def mean_logprob(self) -> float:
        return self.total_logprob / self.num_scored if self.num_scored else math.nan

    @property
    def perplexity(self) -> float:
        return mathops.perplexity(-self.total_logprob, self.num_scored) if self.num_scored else math.nan

    @property
    def num_bytes(self) -> int:
        """UTF-8 bytes of the text covered by scored tokens."""
        scored = self.scored_tokens
        if not scored:
            return 0
        full = (self.context or "") + self.text
        return len(full[scored[0].start: scored[-1].end].encode("utf-8"))

    @property
    def bits_per_byte(self) -> float:
        return mathops.bits_per_byte(-self.total_logprob, self.num_bytes) if self.num_bytes else math.nan

    def to_dict(self) -> dict:
        return {"text": self.text, "context": self.context, "input_ids": list(self.input_ids),
                "prefix_token_id": self.prefix_token_id, "first_token_scored": self.first_token_scored,
                "boundary_merged": self.boundary_merged, "num_windows": self.num_windows,
                "top_k_only": self.top_k_only, "tokens": [t.to_dict() for t in self.tokens],
                "total_logprob": self.total_logprob, "mean_logprob": jsonable(self.mean_logprob),
                "num_scored": self.num_scored, "perplexity": jsonable(self.perplexity),
                "bits_per_byte": jsonable(self.bits_per_byte), "num_bytes": self.num_bytes}

    def _rows(self) -> list[dict]:
        rows = []
        for t in self.tokens:
            row = t.to_dict()
            row["alternatives"] = [a.text for a in t.alternatives]
            rows.append(row)
        return rows
