"""The sampler chain made visible, and the seeded sampling check.

Two analyses of ONE next-token distribution, written once against ``Backend``:

* ``distribution_chain`` — the distribution after every stage of a ``SamplerConfig``
  chain (raw, bias, repetition, temperature, top-k, top-p, min-p): ``logitscope dist``,
  the web app's sampler lab. Besides each stage's top tokens it follows one fixed set of
  tokens through every stage (``StageView.rows``: the raw top plus every stage's top), so
  a view can show what a stage removes at its place, and says where each filter cut
  (``StageCut``: the top-k boundary, the mass at the top-p cut, the min-p threshold).
* ``sample_next`` — draw n next tokens with a seeded generator and compare the counts
  with the processed probabilities (Pearson chi-square): ``logitscope sample``.

Both read the whole vocabulary (full_vocab). An empty prompt means the prefix token
alone (BOS, else EOS), as in generation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch

from ..backends.base import Backend, as_float
from ..core import mathops
from ..core.processors import Sampler, SamplerConfig, chi_square_gof, run_chain
from ..errors import check_range
from ..results import ResultMixin, TokenCandidate, jsonable, prob_of
from ..scoring.score import candidates
from .session import check_room, start_ids, token_ids_of

# -- results -------------------------------------------------------------------------------

@dataclass(frozen=True)
class StageRow(ResultMixin):
    """One followed token at one stage: its logit and log-prob going into the stage and coming out.
    -inf (null in JSON) means removed; the rows of a stage are in the order of its input."""

    token_id: int
    text: str
    logit_in: float | None  # None at the raw stage (nothing goes in)
    logprob_in: float | None
    cum_in: float | None  # input mass of this token and of every token more likely than it
    logit: float
    logprob: float
    cum: float  # the same mass under this stage's distribution
    removed_by: str | None = None  # the stage that removed it (this one or an earlier one)

    prob = prob_of("logprob")
    prob_in = prob_of("logprob_in")

    @property
    def kept(self) -> bool:
        return self.removed_by is None

    def to_dict(self) -> dict:
        return {**{k: jsonable(v) for k, v in vars(self).items()}, "prob": self.prob, "prob_in": self.prob_in,
                "kept": self.kept}


@dataclass(frozen=True)
class StageCut(ResultMixin):
    """Where a filter stage cut its input distribution (the fields of other filters are None)."""

    kept: int  # survivors after the stage
    kept_mass: float  # the input probability of the survivors (1 - the removed mass)
    kth_logit: float | None = None  # top-k: the k-th largest input logit; every token below it goes
    mass_before_last: float | None = None  # top-p: the kept mass without the least likely survivor (< p)
    p_max: float | None = None  # min-p: the input's top probability ...
    threshold: float | None = None  # ... times min_p: tokens below it go


@dataclass(frozen=True)
class StageView(ResultMixin):
    """The distribution after one stage of the chain."""

    stage: str
    survivors: int  # tokens with non-zero probability
    entropy: float  # nats
    top: tuple[TokenCandidate, ...]  # logprob under this stage's distribution
    kind: str = "raw"  # raw | bias | repetition | temperature | greedy | top-k | top-p | min-p
    parameter: float | None = None  # the stage's setting: T, the penalty, k, p or min_p
    rows: tuple[StageRow, ...] = ()  # the followed tokens, in the order of the stage's input
    removed_mass: float = 0.0  # the input probability this stage removed
    cut: StageCut | None = None  # filters only


@dataclass(frozen=True)
class ChainResult(ResultMixin):
    prompt: str
    input_ids: tuple[int, ...]
    sampler: SamplerConfig
    stages: tuple[StageView, ...]

    def _rows(self) -> list[dict]:
        return [{"stage": s.stage, "survivors": s.survivors, "entropy": s.entropy, **c.to_dict()}
                for s in self.stages for c in s.top]


@dataclass(frozen=True)
class SampleCount(ResultMixin):
    token_id: int
    text: str
    logprob: float  # under the processed distribution
    count: int

    prob = prob_of("logprob")

    def to_dict(self) -> dict:
        return {"token_id": self.token_id, "text": self.text, "prob": self.prob, "count": self.count}


@dataclass(frozen=True)
class SampleResult(ResultMixin):
    """n seeded draws of the next token versus the processed probabilities."""

    prompt: str
    input_ids: tuple[int, ...]
    sampler: SamplerConfig
    seed: int
    n: int
    survivors: int
    rows: tuple[SampleCount, ...]  # the most likely survivors and every drawn token, likeliest first
    chi_square: float
    dof: int
    p_value: float  # NaN (null in JSON) when the test is undefined: dof = 0

    @property
    def test_summary(self) -> str:
        """One line on the chi-square test, saying so when it is undefined."""
        if self.dof < 1 or math.isnan(self.p_value):
            return ("chi-square test undefined: every draw is expected in one bin (dof 0); "
                    "draw more (-n) or keep more tokens")
        return f"chi2={self.chi_square:.2f}, dof={self.dof}, p={self.p_value:.3f}"


# -- the two analyses ----------------------------------------------------------------------------

def _first_logits(backend: Backend, ids: list[int]) -> torch.Tensor:
    check_room(backend, ids)
    return as_float(backend.next_logits([ids]))  # (1, V)


def distribution_chain(backend: Backend, prompt: str, sampler: SamplerConfig | None = None,
                       bos: str | bool = "auto", top: int = 10) -> ChainResult:
    """The next-token distribution after each stage of ``sampler``'s chain: each stage's top
    ``top`` tokens, and the followed tokens (the raw top ``top`` plus every stage's) at every stage."""
    check_range("top", top, 1, None)
    sampler = sampler or SamplerConfig()
    ids = start_ids(backend, prompt, bos)
    logits = _first_logits(backend, ids)  # (1, V)
    stages = run_chain(sampler.stages(token_ids_of(backend)), torch.tensor([ids]), logits)  # [(name, (1, V))]
    dists = [_Dist(row[0], mathops.log_softmax(row[0].double())) for _, row in stages]
    followed = _followed(dists, top)
    for d in dists:
        d.follow(followed)
    texts = {i: backend.token_text(i) for i in followed}
    removed_by: dict[int, str] = {}  # filled stage by stage
    views = [_stage_view(backend, name, before, d, top, sampler, followed, texts, removed_by)
             for (name, _), before, d in zip(stages, [None, *dists], dists)]
    return ChainResult(prompt, tuple(ids), sampler, tuple(views))


def stage_kind(name: str) -> str:
    """What a stage does, from its name in ``SamplerConfig.stages`` ("T=0.7" -> "temperature")."""
    return "temperature" if name.startswith("T=") else name.split()[0]


FILTERS = ("greedy", "top-k", "top-p", "min-p")


class _Dist:
    """One stage's output: logits (V,), log-probs (V,) and, for the followed tokens, the cumulative
    mass up to each (most likely first, equal probabilities by id: top-p's order)."""

    def __init__(self, logits: torch.Tensor, logp: torch.Tensor):
        self.logits, self.logp = logits, logp
        self.alive = torch.isfinite(logp)  # (V,) the survivors
        self.survivors = int(self.alive.sum())
        self.cum: dict[int, float] = {}

    @cached_property
    def p(self) -> torch.Tensor:
        return self.logp.exp()  # (V,)

    def follow(self, ids: list[int]) -> None:
        mine = self.logp[torch.tensor(ids)]  # (W,)
        alive = mine[torch.isfinite(mine)]
        self.cum = dict.fromkeys(ids, 1.0)  # a removed token: everything alive is ahead of it
        if not len(alive):
            return
        # only the head of the distribution down to the least likely followed token is sorted (not all V)
        head = self.logp.topk(int((self.logp >= alive.min()).sum()))  # (K,) every tie at the floor included
        by_id = torch.sort(head.indices).indices  # (K,)
        order = by_id[torch.sort(head.values[by_id], descending=True, stable=True).indices]  # ties: lower id first
        cum = head.values[order].exp().cumsum(0).tolist()
        at = {i: n for n, i in enumerate(head.indices[order].tolist())}
        self.cum.update({i: cum[at[i]] for i in ids if i in at})


def _followed(dists: list[_Dist], top: int) -> list[int]:
    """The tokens every stage shows: the top ``top`` of each stage (``StageView.top``), in the raw order."""
    ids: set[int] = set()
    for d in dists:
        ids.update(d.logp.topk(min(top, d.survivors)).indices.tolist())
    raw = dists[0].logits
    return sorted(ids, key=lambda i: (-float(raw[i]), i))


def _stage_view(backend: Backend, name: str, before: _Dist | None, d: _Dist, top: int, config: SamplerConfig,
                followed: list[int], texts: dict[int, str], removed_by: dict[int, str]) -> StageView:
    best = d.logp.topk(min(top, d.survivors)).indices
    kind = stage_kind(name)
    removed = 0.0 if before is None else float(before.p[~d.alive].sum())
    for i in followed:
        if not math.isfinite(d.logp[i]):
            removed_by.setdefault(i, name)
    parameter = {"repetition": config.repetition_penalty, "temperature": config.temperature,
                 "top-k": config.top_k, "top-p": config.top_p, "min-p": config.min_p}.get(kind)
    return StageView(name, d.survivors, float(mathops.entropy(d.logp)),
                     candidates(backend, best, d.logp[best], d.logits[best]), kind,
                     None if parameter is None else float(parameter), _rows(before, d, followed, texts, removed_by),
                     removed, _cut(kind, before, d, config) if kind in FILTERS else None)


def _rows(before: _Dist | None, d: _Dist, followed: list[int], texts: dict[int, str],
          removed_by: dict[int, str]) -> tuple[StageRow, ...]:
    """The followed tokens at one stage, most likely input first (ties and removed ones in raw order)."""
    ids = torch.tensor(followed)  # (W,)
    key = (d if before is None else before).logits[ids].double()  # (W,) the input's order
    order = ids[torch.sort(key, descending=True, stable=True).indices].tolist()
    if before is None:
        return tuple(StageRow(i, texts[i], None, None, None, float(d.logits[i]), float(d.logp[i]), d.cum[i],
                              removed_by.get(i)) for i in order)
    return tuple(StageRow(i, texts[i], float(before.logits[i]), float(before.logp[i]), before.cum[i],
                          float(d.logits[i]), float(d.logp[i]), d.cum[i], removed_by.get(i)) for i in order)


def _cut(kind: str, before: _Dist, d: _Dist, config: SamplerConfig) -> StageCut:
    """Where a filter cut, read off its input and output (the processors themselves stay the one rule)."""
    kept, p_in = d.alive, before.p  # (V,), (V,)
    mass = float(p_in[kept].sum())
    extra = {}
    if kind == "top-k":
        extra["kth_logit"] = float(before.logits[kept].min())
    elif kind == "top-p":
        extra["mass_before_last"] = mass - float(p_in[kept].min())
    elif kind == "min-p":
        extra["p_max"] = float(p_in.max())
        extra["threshold"] = extra["p_max"] * config.min_p
    return StageCut(int(kept.sum()), mass, **extra)


def sample_next(backend: Backend, prompt: str, n: int = 1000, sampler: SamplerConfig | None = None,
                seed: int = 0, bos: str | bool = "auto", top: int = 10) -> SampleResult:
    """Draw ``n`` next tokens (seeded) and test them against the processed distribution."""
    check_range("n", n, 1, 10_000_000)
    sampler = sampler or SamplerConfig()
    ids = start_ids(backend, prompt, bos)
    chooser = Sampler(sampler, seed, token_ids_of(backend))
    processed = chooser.process(torch.tensor([ids]), _first_logits(backend, ids))  # (1, V)
    draws = chooser.choose(processed, n)[0]  # (n,)
    counts = torch.bincount(draws, minlength=processed.shape[-1])  # (V,)
    logp = mathops.log_softmax(processed[0].double())  # (V,)
    stat, dof, p = chi_square_gof(counts, logp.exp())
    shown = set(logp.topk(min(top, int(torch.isfinite(logp).sum()))).indices.tolist()) | set(draws.unique().tolist())
    rows = sorted((SampleCount(i, backend.token_text(i), float(logp[i]), int(counts[i])) for i in shown),
                  key=lambda r: (-r.logprob, r.token_id))
    return SampleResult(prompt, tuple(ids), sampler, chooser.seed, n, int(torch.isfinite(logp).sum()), tuple(rows),
                        stat, dof, p)
