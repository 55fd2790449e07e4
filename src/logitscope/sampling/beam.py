"""Beam search with length normalisation, compared with greedy on the same prompt.

Each step every alive beam proposes its top 2B next tokens; the 2B best
(beam score + token log-prob) candidates are taken in order: one ending in EOS
finishes (if it ranks within the first B), the others fill the B alive beams.
Search ends after ``max_new_tokens`` or once B beams have finished. Beams are
ranked by the length-normalised score

    normalised = total log-prob / (number of new tokens) ** alpha

(alpha = 0: raw sum, which favours short beams; alpha = 1: mean log-prob).
Siblings share their parent's KV cache: all but the last child fork it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core import mathops
from ..backends.base import Backend, DecodeState
from ..errors import check_range
from .generation import generate
from .session import check_room, start_ids
from ..core.processors import SamplerConfig
from ..results import ResultMixin, prob_of


@dataclass(frozen=True)
class Beam(ResultMixin):
    token_ids: tuple[int, ...]  # new tokens, a final EOS included
    text: str
    logprob: float  # total natural-log probability of the new tokens
    normalized: float  # logprob / len ** alpha
    finished: bool  # ended with EOS

    prob = prob_of("logprob")


@dataclass(frozen=True)
class BeamResult(ResultMixin):
    prompt: str
    input_ids: tuple[int, ...]
    num_beams: int
    alpha: float
    max_new_tokens: int
    beams: tuple[Beam, ...]  # best normalised score first
    greedy: Beam  # greedy decoding on the same prompt, scored the same way

    @property
    def best(self) -> Beam:
        return self.beams[0]

    def _rows(self) -> list[dict]:
        return [{"kind": "beam", **b.to_dict()} for b in self.beams] + [{"kind": "greedy", **self.greedy.to_dict()}]


@dataclass
class _Hyp:
    tokens: tuple[int, ...]
    logprob: float
    state: DecodeState | None = None


def normalized_score(logprob: float, length: int, alpha: float) -> float:
    """Length-normalised log-prob: logprob / length ** alpha."""
    return logprob / max(length, 1) ** alpha


def beam_search(backend: Backend, prompt: str, num_beams: int = 4, max_new_tokens: int = 20,
                alpha: float = 1.0, bos: str | bool = "auto") -> BeamResult:
    """Beam search for ``prompt``; also runs greedy for comparison."""
    check_range("num_beams", num_beams, 1, 64)
    check_range("alpha", alpha, 0, 10)
    check_range("max_new_tokens", max_new_tokens, 1, backend.capabilities.context_length)
    ids = start_ids(backend, prompt, bos)
    check_room(backend, ids)
    steps = min(max_new_tokens, backend.capabilities.context_length - len(ids))
    with torch.inference_mode():
        hyps = _search(backend, ids, num_beams, steps)
    ranked = sorted(hyps, key=lambda h: -normalized_score(h.logprob, len(h.tokens), alpha))[:num_beams]
    greedy = generate(backend, prompt, max_new_tokens, SamplerConfig.greedy(), bos=bos, top_alternatives=0)
    greedy_hyp = _Hyp(greedy.token_ids, greedy.total_logprob)
    return BeamResult(prompt, tuple(ids), num_beams, alpha, max_new_tokens,
                      tuple(_beam(backend, h, alpha) for h in ranked), _beam(backend, greedy_hyp, alpha))


def _search(backend: Backend, ids: list[int], width: int, steps: int) -> list[_Hyp]:
    alive, finished = [_Hyp((), 0.0, backend.prefill(ids))], []
    for step in range(steps):
        chosen = []
        for rank, (parent, token, logprob) in enumerate(_candidates(alive, 2 * width)):
            hyp = _Hyp(parent.tokens + (token,), logprob)
            if token == backend.eos_token_id:
                if rank < width:
                    finished.append(hyp)
            elif len(chosen) < width:
                chosen.append((parent, hyp))
        if len(finished) >= width or not chosen or step == steps - 1:
            return finished + [h for _, h in chosen]
        alive = _extend(backend, chosen)
    return finished + alive


def _candidates(alive: list[_Hyp], k: int) -> list[tuple[_Hyp, int, float]]:
    """The k best (parent, token, total log-prob) expansions of all alive beams, best first."""
    out = []
    for hyp in alive:
        logp = mathops.log_softmax(hyp.state.logits.double())  # (V,)
        top = logp.topk(min(k, logp.shape[-1]))
        out.extend((hyp, int(t), hyp.logprob + float(lp)) for t, lp in zip(top.indices, top.values))
    out.sort(key=lambda c: -c[2])
    return out[:k]


def _extend(backend: Backend, chosen: list[tuple[_Hyp, _Hyp]]) -> list[_Hyp]:
    """Give every chosen beam its state; all but a parent's last child fork the parent's cache."""
    last_child = {id(parent): i for i, (parent, _) in enumerate(chosen)}
    for i, (parent, hyp) in enumerate(chosen):
        state = parent.state if last_child[id(parent)] == i else backend.fork(parent.state)
        hyp.state = backend.extend(state, [hyp.tokens[-1]])
    return [hyp for _, hyp in chosen]


def _beam(backend: Backend, hyp: _Hyp, alpha: float) -> Beam:
    finished = bool(hyp.tokens) and hyp.tokens[-1] == backend.eos_token_id
    text_ids = list(hyp.tokens[:-1] if finished else hyp.tokens)
    return Beam(tuple(hyp.tokens), backend.detokenize(text_ids), hyp.logprob,
                normalized_score(hyp.logprob, len(hyp.tokens), alpha), finished)
