"""The sampler chain made visible, seeded sampling checks, and traced generation.

Three analyses, each written once against ``Backend``:

* ``distribution_chain`` — the next-token distribution after every stage of a
  ``SamplerConfig`` chain (raw, bias, temperature, top-k, ...).
* ``sample_next`` — draw n next tokens with a seeded generator and compare the
  counts with the processed probabilities (Pearson chi-square).
* ``generate`` — autoregressive generation on ``prefill``/``extend`` (the KV
  cache when the backend has one) that records every step. On a top-k-only
  backend (a remote server) it runs on ``next_top_k`` instead (``topk_decode.py``):
  greedy always, sampling where the chain provably stays inside the top k; the
  result's ``top_k_only`` says so and each step's entropy is a lower bound.

Empty prompt: generation (and the two views above) start from the prefix token
alone — BOS, else EOS — so ``generate("")`` shows what the model says unprompted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from ..core import mathops
from ..backends.base import Backend, DecodeState, as_float, require
from ..core.boundary import check_fits, prompt_ids
from ..errors import InputError, check_range, check_sequence
from ..core.processors import NEG_INF, Sampler, SamplerConfig, chi_square_gof, run_chain
from ..results import ResultMixin, TokenCandidate, jsonable, prob_of
from ..scoring.score import candidates
from .speculative import DRAFT_TOKENS, PromptLookup, accepts, draw
from .topk_decode import top_k_steps


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


@dataclass(frozen=True)
class TraceStep(ResultMixin):
    """One generated token and what the model believed when it was chosen."""

    step: int
    token_id: int
    text: str
    logprob: float  # under the raw distribution
    processed_logprob: float  # under the sampler's processed distribution
    rank: int  # in the raw distribution, 1 = argmax
    entropy: float  # nats, raw distribution; a lower bound when the backend is top-k only
    survivors: int  # tokens left after the chain
    alternatives: tuple[TokenCandidate, ...]  # raw top-k
    remaining_mass: float | None = None  # top-k-only backends: the probability outside the known top k

    prob = prob_of("logprob")
    processed_prob = prob_of("processed_logprob")

    def to_dict(self) -> dict:
        return {**{k: jsonable(v) for k, v in vars(self).items() if k != "alternatives"},
                "prob": self.prob, "processed_prob": self.processed_prob,
                "alternatives": [a.to_dict() for a in self.alternatives]}


@dataclass(frozen=True)
class GenerationResult(ResultMixin):
    prompt: str
    input_ids: tuple[int, ...]  # what the model saw before the first new token
    token_ids: tuple[int, ...]  # new tokens, a final EOS included
    text: str  # the new text (EOS left out)
    steps: tuple[TraceStep, ...]
    stop_reason: str  # "eos" | "stop" | "context" | "max_new_tokens"
    sampler: SamplerConfig
    seed: int  # the seed actually used (a fresh one when generate got seed=None)
    used_cache: bool
    top_k_only: int | None = None  # decoded from the backend's top k: entropies are lower bounds

    @property
    def total_logprob(self) -> float:
        return math.fsum(s.logprob for s in self.steps)

    def _rows(self) -> list[dict]:
        return [{**s.to_dict(), "alternatives": [a.text for a in s.alternatives]} for s in self.steps]


# -- shared pieces ---------------------------------------------------------------------------

def start_ids(backend: Backend, prompt: str, bos: str | bool = "auto") -> list[int]:
    """Prompt ids under the prefix policy; the empty prompt is the prefix token alone.
    For the analyses that read full next-token distributions (the chain view, sampling
    checks, beam search), so it needs a full-vocabulary backend; generation and the tree
    also run on top-k backends and call ``decode_ids``."""
    require(backend, "full_vocab", "reading the whole next-token distribution (the sampler-chain view, sampling "
                                   "checks, beam search, stepping)")
    return decode_ids(backend, prompt, bos)


def decode_ids(backend: Backend, prompt: str, bos: str | bool = "auto") -> list[int]:
    """Prompt ids under the prefix policy; the empty prompt is the prefix token alone."""
    return prompt_ids(backend, prompt, bos, allow_empty=True)


def _token_ids(backend: Backend) -> Callable[[str], list[int]]:
    return lambda s: backend.tokenize(s).ids


def _check_room(backend: Backend, ids: list[int]) -> None:
    """The prompt must leave room for at least one more token."""
    check_fits(backend, len(ids) + 1, "the prompt plus one new token", "shorten the prompt")


def _first_logits(backend: Backend, ids: list[int]) -> torch.Tensor:
    _check_room(backend, ids)
    return as_float(backend.next_logits([ids]))  # (1, V)


def _stage_view(backend: Backend, name: str, logits: torch.Tensor, top: int) -> StageView:
    logp = mathops.log_softmax(logits.double())  # (V,)
    survivors = int(torch.isfinite(logp).sum())
    best = logp.topk(min(top, survivors))
    return StageView(name, survivors, float(mathops.entropy(logp)),
                     candidates(backend, best.indices, best.values, logits[best.indices]))


# -- the chain view and the sampling check -----------------------------------------------------

def distribution_chain(backend: Backend, prompt: str, sampler: SamplerConfig | None = None,
                       bos: str | bool = "auto", top: int = 10) -> ChainResult:
    """The next-token distribution after each stage of ``sampler``'s chain."""
    check_range("top", top, 1, None)
    sampler = sampler or SamplerConfig()
    ids = start_ids(backend, prompt, bos)
    logits = _first_logits(backend, ids)  # (1, V)
    stages = run_chain(sampler.stages(_token_ids(backend)), torch.tensor([ids]), logits)
    return ChainResult(prompt, tuple(ids), sampler,
                       tuple(_stage_view(backend, name, row[0], top) for name, row in stages))


def sample_next(backend: Backend, prompt: str, n: int = 1000, sampler: SamplerConfig | None = None,
                seed: int = 0, bos: str | bool = "auto", top: int = 10) -> SampleResult:
    """Draw ``n`` next tokens (seeded) and test them against the processed distribution."""
    check_range("n", n, 1, 10_000_000)
    sampler = sampler or SamplerConfig()
    ids = start_ids(backend, prompt, bos)
    chooser = Sampler(sampler, seed, _token_ids(backend))
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


# -- traced generation ---------------------------------------------------------------------------

def generate(backend: Backend, prompt: str, max_new_tokens: int = 50, sampler: SamplerConfig | None = None,
             seed: int | None = 0, stop: Sequence[str] = (), bos: str | bool = "auto", top_alternatives: int = 10,
             use_cache: bool = True, on_text: Callable[[str], None] | None = None,
             speculative: bool = True) -> GenerationResult:
    """Generate up to ``max_new_tokens`` tokens, recording every step.

    Stops at EOS, when the new text contains a ``stop`` string (kept in the
    text), or when the sequence fills the model's context. ``use_cache=False``
    recomputes the whole prefix each step (the reference path). ``on_text``
    receives the new text as it is produced. ``speculative`` lets backends that
    can verify several tokens in one forward check prompt-lookup drafts
    (``speculative.py``): same tokens when greedy, same distribution when
    sampling, every reported probability the model's own.

    A top-k-only backend decodes from its top k (``topk_decode.py``, one
    ``next_top_k`` call per token, no cache): ``top_alternatives`` is capped at k,
    sampling that would renormalise beyond the top k raises CapabilityError.
    """
    context = backend.capabilities.context_length
    check_range("max_new_tokens", max_new_tokens, 1, context)
    check_range("top_alternatives", top_alternatives, 0, None)
    sampler = sampler or SamplerConfig()
    ids = decode_ids(backend, prompt, bos)
    _check_room(backend, ids)
    chooser = Sampler(sampler, seed, _token_ids(backend))
    stream = _Stream(backend, stop, on_text)
    records, reason = [], None
    top_k_only = backend.capabilities.top_k_only
    use_cache = use_cache and top_k_only is None
    drafts = speculative and use_cache and backend.capabilities.verify_rows
    with torch.inference_mode():
        steps = (_traced_tokens(backend, chooser, ids, top_alternatives, use_cache, drafts, max_new_tokens)
                 if top_k_only is None else top_k_steps(backend, chooser, ids, top_alternatives))
        for token, record in steps:
            records.append(record)
            reason = _stop_reason(backend, stream, token, len(ids) + len(records), context)
            if reason or len(records) == max_new_tokens:
                break
        steps.close()
    stream.finish()
    return _generation_result(backend, prompt, ids, records, reason or "max_new_tokens", sampler, chooser.seed,
                              use_cache, top_k_only)


def _traced_tokens(backend: Backend, sampler: Sampler, ids: list[int], k: int, use_cache: bool,
                   drafts: bool, limit: int) -> Iterator[tuple[int, tuple]]:
    """Yield (token, trace record) pairs; the caller stops when it has enough (drafts never run past ``limit``).

    Each round feeds the chosen token plus a prompt-lookup draft in one forward
    and keeps the drafted tokens that pass ``speculative.accepts``; the first
    rejected one is replaced by a draw from the residual distribution.
    """
    history = list(ids)
    lookup = PromptLookup(history) if drafts else None
    state = backend.prefill(ids) if use_cache else DecodeState(tuple(ids), backend.next_logits([ids])[0])
    raw, rejected = as_float(state.logits), None  # (V,) logits for the next token
    context = backend.capabilities.context_length
    while True:
        processed = _process(sampler, history, raw)  # (V,)
        token = draw(sampler, processed, rejected)
        yield token, _record(raw, processed, token, k)
        history.append(token)
        draft = _draft(lookup, token, min(context - len(history), limit + len(ids) - len(history)) - 1)
        state, rows = _feed(backend, state, [token] + draft, use_cache)  # rows (1 + len(draft), V)
        raw, rejected = rows[-1], None
        for i, guess in enumerate(draft):
            processed = _process(sampler, history, rows[i])
            if not accepts(sampler, processed, guess):
                state, raw, rejected = backend.rewind(state, len(history), rows[i]), rows[i], guess
                break
            yield guess, _record(rows[i], processed, guess, k)
            history.append(guess)
            lookup.push(guess)


def _draft(lookup: PromptLookup | None, token: int, room: int) -> list[int]:
    """Record ``token`` with the drafter and propose up to DRAFT_TOKENS more (none without a drafter)."""
    if lookup is None:
        return []
    lookup.push(token)
    return lookup.propose(min(DRAFT_TOKENS, room))


def _feed(backend: Backend, state: DecodeState, tokens: list[int],
          use_cache: bool) -> tuple[DecodeState, torch.Tensor]:
    """The state after ``tokens`` and the logits after each of them (T, V)."""
    if not use_cache:
        ids = state.ids + tuple(tokens)
        state = DecodeState(ids, backend.next_logits([list(ids)])[0])  # recompute the whole prefix
        return state, as_float(state.logits)[None]
    if len(tokens) > 1:
        state, rows = backend.extend_rows(state, tokens)  # type: ignore[attr-defined]  # verify_rows declared
        return state, as_float(rows)
    state = backend.extend(state, tokens)
    return state, as_float(state.logits)[None]


def _process(sampler: Sampler, history: list[int], raw: torch.Tensor) -> torch.Tensor:
    """The sampler's processed logits (V,) after ``history``."""
    return sampler.process(torch.tensor([history]), raw[None])[0]


def _record(raw: torch.Tensor, processed: torch.Tensor, token: int, k: int) -> tuple:
    """What the trace keeps of one step, as tensors (converted once per generation).

    One log-normaliser pass serves the chosen token's log-prob, the entropy and
    the top-k; the top-k also gives the shift and, for a token inside it, the rank.
    Nothing of size V is sorted or kept.
    """
    top = raw.topk(min(max(k, 1), raw.shape[-1]))  # most likely first
    peak = top.values[0]
    shifted = raw - peak  # (V,), largest entry 0
    weights = shifted.exp()  # (V,) unnormalised probabilities
    total = weights.sum()
    lse = peak + total.log()  # log Z of the raw distribution
    spread = torch.dot(weights, shifted)  # Σ w (z - max); NaN only where a -inf logit has weight 0
    if torch.isnan(spread):
        spread = (weights * shifted.masked_fill(weights == 0, 0)).sum()
    entropy = (total.log() - spread / total).clamp_min(0)  # H = log Z - E_p[z]
    value = raw[token]
    beaten = top.values if value >= top.values[-1] else raw  # every larger logit is in the top k, or look at all
    untouched = processed.data_ptr() == raw.data_ptr()  # no stage of the chain changed the logits
    kept = processed if untouched else processed[processed > NEG_INF]  # the chain's survivors (and +inf)
    lse_processed = lse if untouched else torch.logsumexp(kept, dim=-1)
    chosen = (processed[token] - lse_processed if torch.isfinite(lse_processed)
              else mathops.log_softmax(processed)[token])  # processed log-prob; +inf bias: certain or shared
    return (token, value - lse, chosen, (beaten > value).sum() + 1, entropy,
            torch.isfinite(kept).sum(), top.indices[:k], top.values[:k] - lse)


class _Stream:
    """Incremental text of the new tokens: stop-string checks and streaming output."""

    def __init__(self, backend: Backend, stop: Sequence[str], on_text: Callable[[str], None] | None):
        check_sequence("stop", stop)
        if any(not s for s in stop):
            raise InputError("a stop string is empty", hint="give non-empty stop strings")
        self.backend, self.stop, self.on_text = backend, list(stop), on_text
        self.ids: list[int] = []
        self.shown = ""

    def push(self, token: int) -> bool:
        """Add a token; True when the text now contains a stop string."""
        if token != self.backend.eos_token_id:
            self.ids.append(token)
        if not (self.stop or self.on_text):
            return False
        text = self.backend.detokenize(self.ids)
        if self.on_text and not text.endswith("\ufffd"):  # wait for a split UTF-8 character to complete
            self.on_text(text[len(self.shown):])
            self.shown = text
        return any(s in text for s in self.stop)

    def finish(self) -> None:
        """Show what was held back: generation may end inside a multi-byte character, and
        the streamed text must then match the result's text (with its U+FFFD)."""
        if self.on_text:
            text = self.backend.detokenize(self.ids)
            if text != self.shown and text.startswith(self.shown):
                self.on_text(text[len(self.shown):])
                self.shown = text


def _stop_reason(backend: Backend, stream: _Stream, token: int, length: int, context: int) -> str | None:
    hit_stop = stream.push(token)
    if token == backend.eos_token_id:
        return "eos"
    if hit_stop:
        return "stop"
    return "context" if length >= context else None


def _generation_result(backend, prompt, ids, records, reason, sampler, seed, used_cache,
                       top_k_only=None) -> GenerationResult:
    """Records are generation's ``_record`` tuples; a top-k step adds its remaining mass (``topk_decode``)."""
    tokens = [r[0] for r in records]
    cols = [torch.stack([r[i] for r in records]).tolist() for i in range(1, 6)]  # one conversion for all steps
    steps = tuple(
        TraceStep(n, tok, backend.token_text(tok), float(lp), float(plp), int(rank), float(ent), int(surv),
                  candidates(backend, rec[6], rec[7]), float(rec[8]) if len(rec) > 8 else None)
        for n, (tok, lp, plp, rank, ent, surv, rec) in enumerate(zip(tokens, *cols, records)))
    text_ids = tokens[:-1] if reason == "eos" else tokens
    return GenerationResult(prompt, tuple(ids), tuple(tokens), backend.detokenize(text_ids), steps, reason,
                            sampler, seed, used_cache, top_k_only)
