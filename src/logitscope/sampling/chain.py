"""The sampler chain made visible, and the seeded sampling check.

Two analyses of ONE next-token distribution, written once against ``Backend``:

* ``distribution_chain`` — the distribution after every stage of a ``SamplerConfig``
  chain (raw, bias, repetition, temperature, top-k, top-p, min-p): ``logitscope dist``,
  the web app's sampler lab.
* ``sample_next`` — draw n next tokens with a seeded generator and compare the counts
  with the processed probabilities (Pearson chi-square): ``logitscope sample``.

Both read the whole vocabulary (full_vocab). An empty prompt means the prefix token
alone (BOS, else EOS), as in generation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..backends.base import Backend, as_float
from ..core import mathops
from ..core.processors import Sampler, SamplerConfig, chi_square_gof, run_chain
from ..errors import check_range
from ..results import ResultMixin, TokenCandidate, prob_of
from ..scoring.score import candidates
from .session import check_room, start_ids, token_ids_of

# -- results -------------------------------------------------------------------------------

@dataclass(frozen=True)
class StageView(ResultMixin):
    """The distribution after one stage of the chain."""

    stage: str
    survivors: int  # tokens with non-zero probability
    entropy: float  # nats
    top: tuple[TokenCandidate, ...]  # logprob under this stage's distribution


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


def _stage_view(backend: Backend, name: str, logits: torch.Tensor, top: int) -> StageView:
    logp = mathops.log_softmax(logits.double())  # (V,)
    survivors = int(torch.isfinite(logp).sum())
    best = logp.topk(min(top, survivors))
    return StageView(name, survivors, float(mathops.entropy(logp)),
                     candidates(backend, best.indices, best.values, logits[best.indices]))


def distribution_chain(backend: Backend, prompt: str, sampler: SamplerConfig | None = None,
                       bos: str | bool = "auto", top: int = 10) -> ChainResult:
    """The next-token distribution after each stage of ``sampler``'s chain."""
    check_range("top", top, 1, None)
    sampler = sampler or SamplerConfig()
    ids = start_ids(backend, prompt, bos)
    logits = _first_logits(backend, ids)  # (1, V)
    stages = run_chain(sampler.stages(token_ids_of(backend)), torch.tensor([ids]), logits)
    return ChainResult(prompt, tuple(ids), sampler,
                       tuple(_stage_view(backend, name, row[0], top) for name, row in stages))


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
