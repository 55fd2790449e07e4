"""Logits processors: every sampling strategy as one pure, composable transform.

Each processor has the signature ``(input_ids, logits) -> logits`` over
``input_ids`` (B, T) and ``logits`` (B, V); a removed token gets -inf, so the
processed distribution ``softmax(logits)`` sums to 1 over the survivors.
The chain runs in the order production servers use:

    raw -> logit bias -> repetition penalty -> temperature -> top-k -> top-p -> min-p

Rules at the edges (tested with exact values in tests/test_processors.py):

* temperature 0 means greedy: only the argmax survives (the lowest id on a tie).
* top-k keeps every token tied with the k-th largest logit, so ties at the
  boundary are never broken arbitrarily (k=2 over [3, 1, 1] keeps 3 tokens).
* top-p keeps the smallest set, most likely first, whose cumulative probability
  reaches p; the token that crosses p is included, so the most likely token always
  survives (however small p is). Equal probabilities are ordered by token id.
  p = 1 keeps everything.
* min-p keeps tokens with p >= min_p * p_max (computed after temperature).
* logit bias adds a value to chosen ids; -inf bans them, +inf forces them: the +inf
  tokens share all the probability (every later stage sees them as the argmax).
  Values for one token add up, however it is named (the same string twice, a string
  and its id). Banning every token, or +inf and -inf on one token, is an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from . import mathops
from ..errors import InputError, check_range
from .validation import check_unicode, number, optional, whole

Processor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
NEG_INF = float("-inf")
TOP_P_TOLERANCE = 1e-9  # cumulative sums within this of p count as reaching it


# -- the processors ------------------------------------------------------------------

def logit_bias(bias: Mapping[int, float]) -> Processor:
    """Add ``bias[id]`` to each listed id's logit (-inf bans the id)."""
    ids = torch.tensor(list(bias), dtype=torch.long)
    values = torch.tensor([float(v) for v in bias.values()], dtype=torch.float64)

    def process(input_ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        if len(ids) == 0:
            return logits
        _check_ids(ids, logits.shape[-1])
        out = logits.clone()
        out[:, ids] = out[:, ids] + values.to(out.dtype)  # (B, n) boosted or banned
        if torch.isneginf(out).all(dim=-1).any():
            raise InputError("the logit bias bans every token", hint="leave at least one token unbanned")
        return out

    return process


def repetition_penalty(penalty: float) -> Processor:
    """CTRL-style penalty on ids already in ``input_ids``: positive logits are divided
    by ``penalty``, negative ones multiplied (penalty > 1 discourages repeats)."""
    check_range("repetition_penalty", penalty, 0, None, low_open=True)

    def process(input_ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        if penalty == 1.0 or input_ids.shape[-1] == 0:
            return logits
        seen = logits.gather(-1, input_ids)  # (B, T) logits of tokens already present
        seen = torch.where(seen > 0, seen / penalty, seen * penalty)
        return logits.scatter(-1, input_ids, seen)

    return process


def temperature(t: float) -> Processor:
    """Divide logits by t > 0; t = 0 is greedy (only the argmax survives)."""
    check_range("temperature", t, 0, None)

    def process(input_ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        if t == 0:
            return greedy(input_ids, logits)
        return mathops.apply_temperature(logits, t)

    return process


def greedy(input_ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Keep only the argmax of each row (the lowest id among equal maxima)."""
    best = logits.max(dim=-1, keepdim=True).indices  # (B, 1); max's indices: argmax's, 20x faster on CPU
    out = torch.full_like(logits, NEG_INF)
    return out.scatter(-1, best, logits.gather(-1, best))


def top_k(k: int) -> Processor:
    """Keep the k largest logits per row, plus every token tied with the k-th."""
    check_range("top_k", k, 1, None)

    def process(input_ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        if k >= logits.shape[-1]:
            return logits
        kth = logits.topk(k, dim=-1).values[:, -1:]  # (B, 1) the k-th largest logit
        return logits.masked_fill(logits < kth, NEG_INF)

    return process


def top_p(p: float) -> Processor:
    """Nucleus: keep the smallest most-likely-first set whose probability reaches p."""
    check_range("top_p", p, 0, 1, low_open=True)

    def process(input_ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        if p >= 1.0:
            return logits
        probs = mathops.softmax(logits.double())  # (B, V)
        order = torch.sort(probs, dim=-1, descending=True, stable=True).indices  # ties: lower id first
        sorted_p = probs.gather(-1, order)  # (B, V)
        before = sorted_p.cumsum(dim=-1) - sorted_p  # mass strictly ahead of each token
        keep_sorted = before < p - TOP_P_TOLERANCE  # the crossing token has before < p
        keep_sorted[:, 0] = True  # the most likely token reaches any p, even one below the tolerance
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        return logits.masked_fill(~keep, NEG_INF)

    return process


def min_p(m: float) -> Processor:
    """Keep tokens whose probability is at least ``m`` times the top probability."""
    check_range("min_p", m, 0, 1)

    def process(input_ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        if m == 0:
            return logits
        logp = mathops.log_softmax(logits.double())  # (B, V)
        floor = logp.amax(dim=-1, keepdim=True) + math.log(m)  # (B, 1): log(m * p_max)
        return logits.masked_fill(logp < floor, NEG_INF)

    return process


def _check_ids(ids: torch.Tensor, vocab: int) -> None:
    bad = ids[(ids < 0) | (ids >= vocab)]
    if len(bad):
        raise InputError(f"logit bias names token id {int(bad[0])}", hint=f"token ids must be in [0, {vocab - 1}]")


# -- configuration and the chain ---------------------------------------------------------

@dataclass(frozen=True)
class SamplerConfig:
    """A sampling strategy. Defaults are pure sampling from the raw distribution.

    ``bias`` pairs a token id or a string with a value added to its logit
    (-inf bans it); a string stands for all of its token ids under the model's
    tokenizer (" Paris" and "Paris" are different tokens). Pairs that name one
    token add up; a ``{token: value}`` mapping is taken as its pairs. Numbers may
    be numpy scalars: every field is stored as a Python number.
    """

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    bias: tuple[tuple[int | str, float], ...] = ()

    def __post_init__(self):
        for name, rule in (("temperature", number), ("top_k", optional(whole)), ("top_p", number),
                           ("min_p", number), ("repetition_penalty", number)):
            object.__setattr__(self, name, rule(name, getattr(self, name)))  # numpy scalars become Python numbers
        check_range("temperature", self.temperature, 0, None)
        if self.top_k is not None:
            check_range("top_k", self.top_k, 1, None)
        check_range("top_p", self.top_p, 0, 1, low_open=True)
        check_range("min_p", self.min_p, 0, 1)
        check_range("repetition_penalty", self.repetition_penalty, 0, None, low_open=True)
        pairs = self.bias.items() if isinstance(self.bias, Mapping) else self.bias  # {token: value} too
        object.__setattr__(self, "bias", tuple(_bias_pair(pair) for pair in pairs))

    @classmethod
    def greedy(cls) -> "SamplerConfig":
        return cls(temperature=0.0)

    @classmethod
    def of(cls, temperature: float = 1.0, top_k: int | None = None, top_p: float = 1.0, min_p: float = 0.0,
           repetition_penalty: float = 1.0, bias=()) -> "SamplerConfig":
        """The one conversion from the edges' sampling options (CLI flags, server and web request
        fields): keyword names, ``bias`` as a mapping or (token, value) pairs, ``top_k`` None = off."""
        pairs = bias.items() if isinstance(bias, Mapping) else (bias or ())
        return cls(temperature, top_k, top_p, min_p, repetition_penalty, tuple(pairs))

    @property
    def is_greedy(self) -> bool:
        return self.temperature == 0

    def stages(self, token_ids: Callable[[str], list[int]] | None = None) -> list[tuple[str, Processor]]:
        """The active processors in chain order, each with its stage name.

        ``token_ids`` maps a string bias to its ids (e.g. the backend's tokenizer).
        """
        out: list[tuple[str, Processor]] = []
        if self.bias:
            out.append(("bias", logit_bias(resolve_bias(self.bias, token_ids))))
        if self.repetition_penalty != 1.0:
            out.append((f"repetition {self.repetition_penalty:g}", repetition_penalty(self.repetition_penalty)))
        if self.temperature != 1.0:
            out.append(("greedy" if self.is_greedy else f"T={self.temperature:g}", temperature(self.temperature)))
        if self.top_k is not None:
            out.append((f"top-k {self.top_k}", top_k(self.top_k)))
        if self.top_p < 1.0:
            out.append((f"top-p {self.top_p:g}", top_p(self.top_p)))
        if self.min_p > 0.0:
            out.append((f"min-p {self.min_p:g}", min_p(self.min_p)))
        return out

    def to_dict(self) -> dict:
        return {"temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p, "min_p": self.min_p,
                "repetition_penalty": self.repetition_penalty,
                "bias": [[k, v if math.isfinite(v) else str(v)] for k, v in self.bias]}


def _bias_pair(pair) -> tuple[int | str, float]:
    """(token id or string, value) with Python types; repeated keys are kept (their values add up)."""
    if isinstance(pair, (str, bytes)) or len(pair) != 2:
        raise InputError(f"bias entry {pair!r} is not a (token, value) pair", hint="e.g. bias=((' Paris', -inf),)")
    key, value = pair
    key = check_unicode("bias token", key) if isinstance(key, str) else whole("bias token id", key)
    return key, number(f"bias value of {key!r}", value)


def resolve_bias(bias, token_ids: Callable[[str], list[int]] | None) -> dict[int, float]:
    """{id: value} from (id-or-string, value) pairs; a string adds to each of its ids."""
    out: dict[int, float] = {}
    named: dict[int, int | str] = {}  # id -> the key that named it (for the message)
    for key, value in bias:
        if isinstance(key, str):
            if token_ids is None:
                raise InputError(f"cannot map the bias string {key!r} to tokens",
                                 hint="give token ids, or build the chain with the model's tokenizer")
            ids = token_ids(key)
            if not ids:
                raise InputError(f"the bias string {key!r} has no tokens", hint="give a non-empty string")
        else:
            ids = [int(key)]
        for i in ids:
            out[i] = out.get(i, 0.0) + value
            named.setdefault(i, key)
    clash = [i for i, v in out.items() if math.isnan(v)]
    if clash:
        raise InputError(f"the logit bias gives {named[clash[0]]!r} (token id {clash[0]}) both +inf and -inf",
                         hint="force a token (+inf) or ban it (-inf), not both")
    return out


def compose(stages: list[tuple[str, Processor]]) -> Processor:
    """One processor running ``stages`` in order."""
    def process(input_ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        for _, stage in stages:
            logits = stage(input_ids, logits)
        return logits

    return process


def run_chain(stages: list[tuple[str, Processor]], input_ids: torch.Tensor,
              logits: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Logits after every stage, starting with ("raw", logits). Each entry is (B, V)."""
    out = [("raw", logits)]
    for name, stage in stages:
        out.append((name, stage(input_ids, out[-1][1])))
    return out


# -- drawing -----------------------------------------------------------------------------

class Sampler:
    """Processes logits with a config's chain and draws with a seeded generator.

    The same seed and the same logits give the same draws; greedy never uses the
    generator. ``seed=None`` picks a fresh seed, kept in ``self.seed`` for replay.
    """

    def __init__(self, config: SamplerConfig | None = None, seed: int | None = 0,
                 token_ids: Callable[[str], list[int]] | None = None):
        self.config = config or SamplerConfig()
        self.process = compose(self.config.stages(token_ids))
        self.seed = int(torch.randint(0, 2**31 - 1, ()).item()) if seed is None else check_seed(seed)
        self.generator = torch.Generator()
        self.generator.manual_seed(self.seed)

    def choose(self, processed: torch.Tensor, num_samples: int = 1) -> torch.Tensor:
        """Draw ids from processed logits (B, V) -> (B, num_samples)."""
        if self.config.is_greedy:
            return processed.max(dim=-1, keepdim=True).indices.expand(-1, num_samples)  # the first maximum
        probs = mathops.softmax(processed.double())  # (B, V), zero outside the survivors
        return torch.multinomial(probs, num_samples, replacement=True, generator=self.generator)


def check_seed(seed) -> int:
    """A seed torch's generator accepts: an integer in [0, 2**64 - 1]."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed={seed!r} is not an integer", hint="give a whole number in [0, 2**64 - 1]")
    return check_range("seed", seed, 0, MAX_SEED)


MAX_SEED = 2**64 - 1


# -- checking draws against a distribution -------------------------------------------------

def chi_square_gof(counts: torch.Tensor, probs: torch.Tensor, min_expected: float = 5.0) -> tuple[float, int, float]:
    """Pearson's goodness of fit of ``counts`` (V,) to ``probs`` (V,): (statistic, dof, p-value).

    Tokens expected fewer than ``min_expected`` times are pooled into one bin
    (draws outside the support land there too, so a draw of a removed token
    makes the statistic infinite). p = Q(dof/2, stat/2), the chi-square tail.
    """
    n = float(counts.sum())
    expected = probs.double() * n  # (V,)
    big = expected >= min_expected
    obs = counts.double()[big].tolist()
    exp = expected[big].tolist()
    rest_exp, rest_obs = n - math.fsum(exp), n - math.fsum(obs)
    if rest_exp > 1e-9 * n or rest_obs > 0:
        obs.append(rest_obs)
        exp.append(rest_exp)
    stat = math.fsum((o - e) ** 2 / e if e > 0 else math.inf for o, e in zip(obs, exp))
    dof = len(obs) - 1
    if dof < 1:
        return stat, 0, math.nan
    p = torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64), torch.tensor(stat / 2, dtype=torch.float64))
    return stat, dof, float(p)
