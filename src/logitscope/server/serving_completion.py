"""``POST /v1/completions``: a request becomes scoring or decoding work for the model's worker.

Two paths, chosen from the request alone:

* scoring (``max_tokens`` 0, or 1 with greedy raw-log-prob decoding: lm-eval's
  loglikelihood form): one score job for the whole request. Each prompt is scored
  by ``backend.score_positions`` in the worker's dynamic batch; for ``max_tokens=1``
  a placeholder target is appended, so the same pass also gives the distribution
  after the prompt, whose argmax is the generated token.

      prompt ids   p0  p1  p2  p3  [x]        x: placeholder, never shown
      logprobs     --  s1  s2  s3   argmax of the row after p3 = the new token

* decoding (everything else): one generation job per choice (``decode.Decoding``).

Echoed prompt log-probs follow OpenAI/vLLM: the first prompt token has none (null).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from fastapi import Request

from ..backends.base import Backend, PositionScores
from ..errors import InputError
from .decode import Decoding, GeneratedToken
from .engine import Job, ModelWorker, ScoreTask
from .protocol import (CompletionChoice, CompletionLogprobs, CompletionRequest, CompletionResponse, PromptLogprob,
                       Usage)
from .serving_common import (Limits, as_request_error, finite, check_choices, check_logprobs, check_unsupported,
                             logit_bias_ids, now, pusher, request_id, run_jobs, sse, stop_list, stream_jobs,
                             token_budget)
from .errors import RequestError
from .tokens import PromptIds, id_prompt, text_prompt, token_label


@dataclass
class ChoiceData:
    """What one choice needs for its wire form, gathered in the worker."""

    index: int
    prompt: PromptIds
    prompt_scores: PositionScores | None  # rows score prompt.ids[1:]
    tokens: list[GeneratedToken] = field(default_factory=list)
    text: str = ""
    finish_reason: str | None = "length"
    stop_reason: str | int | None = None


async def create_completion(req: CompletionRequest, worker: ModelWorker, model: str, limits: Limits,
                            request: Request | None = None):
    """The response model, or a StreamingResponse when ``req.stream``."""
    prompts = _prompt_list(req.prompt, limits)
    _check_request(req, limits, len(prompts))
    rid, created = request_id("cmpl"), now()
    events: asyncio.Queue = asyncio.Queue()
    push = pusher(events) if req.stream else None
    jobs = ([_score_job(req, prompts, limits, rid, created, model, push)] if _scoring_only(req)
            else [_decode_job(req, p, limits, i * req.n + j, j, rid, created, model, push)
                  for i, p in enumerate(prompts) for j in range(req.n)])
    if req.stream:
        def tail() -> list[str]:
            if not (req.stream_options and req.stream_options.include_usage):
                return []
            done = [_flatten(j.future.result()) for j in jobs if j.future.done() and not j.future.cancelled()
                    and j.future.exception() is None]
            usage = _usage(req, [r for rs in done for r in rs])
            return [sse(CompletionResponse(id=rid, created=created, model=model, choices=[], usage=usage))]

        return await stream_jobs(worker, jobs, events, tail)
    rendered = [r for result in await run_jobs(request, worker, jobs) for r in _flatten(result)]
    rendered.sort(key=lambda r: r.choice.index)
    return CompletionResponse(id=rid, created=created, model=model, choices=[r.choice for r in rendered],
                              usage=_usage(req, rendered), logprobs_mode=req.logprobs_mode)


@dataclass
class Rendered:
    choice: CompletionChoice
    prompt_tokens: int
    completion_tokens: int


def _flatten(result) -> list[Rendered]:
    return result if isinstance(result, list) else [result]


def _usage(req: CompletionRequest, rendered: list[Rendered]) -> Usage:
    prompt = sum(r.prompt_tokens for r in rendered if r.choice.index % req.n == 0)  # each prompt once
    completion = sum(r.completion_tokens for r in rendered)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


# -- request checks --------------------------------------------------------------------------

def _prompt_list(prompt, limits: Limits) -> list[str | list[int]]:
    if isinstance(prompt, str):
        prompts = [prompt]
    elif prompt and isinstance(prompt[0], int):
        prompts = [prompt]
    else:
        prompts = list(prompt)
    if not prompts:
        raise RequestError("the prompt list is empty", param="prompt", hint="send at least one prompt")
    if len(prompts) > limits.max_prompts:
        raise RequestError(f"{len(prompts)} prompts in one request; the limit is {limits.max_prompts}",
                           param="prompt", code="too_many_prompts", hint="split the request")
    return prompts


def _check_request(req: CompletionRequest, limits: Limits, n_prompts: int) -> None:
    check_logprobs(req.logprobs, limits, "logprobs")
    check_logprobs(req.prompt_logprobs, limits, "prompt_logprobs")
    check_unsupported(req)
    check_choices(req.n if _scoring_only(req) else n_prompts * req.n, limits)  # each decoded choice is a job
    if req.suffix:
        raise RequestError("suffix is not supported", param="suffix", code="unsupported")
    if req.best_of not in (None, req.n):
        raise RequestError("best_of other than n is not supported", param="best_of", code="unsupported")
    stop_list(req.stop)


def _scoring_only(req: CompletionRequest) -> bool:
    """Served by one batched score job: no sampling, at most one greedy token."""
    if req.max_tokens == 0:
        return True
    plain = not req.logit_bias and req.repetition_penalty == 1.0 and req.logprobs_mode == "raw"
    return req.max_tokens == 1 and req.temperature == 0 and plain


def _wants_prompt_scores(req: CompletionRequest) -> bool:
    return (req.echo and req.logprobs is not None) or req.prompt_logprobs is not None


def _prompt_ids(backend: Backend, prompt: str | list[int], req: CompletionRequest) -> PromptIds:
    try:
        return text_prompt(backend, prompt, req.add_special_tokens) if isinstance(prompt, str) \
            else id_prompt(backend, prompt)
    except InputError as exc:
        raise as_request_error(exc, "prompt") from exc


# -- the scoring path ---------------------------------------------------------------------------

def _score_job(req: CompletionRequest, prompts: list, limits: Limits, rid: str, created: int, model: str,
               push) -> Job:
    plan: dict = {}
    top_k = max(req.logprobs or 0, req.prompt_logprobs or 0, 1 if req.max_tokens == 1 else 0)

    def prepare(backend: Backend) -> list[ScoreTask]:
        plan["prompts"] = [_prompt_ids(backend, p, req) for p in prompts]
        plan["tasks"] = [_score_task(backend, p, req, limits, top_k) for p in plan["prompts"]]
        return [t for t in plan["tasks"] if t is not None]

    def finish(backend: Backend, scores: list[PositionScores]) -> list[Rendered]:
        it = iter(scores)
        rows = [next(it) if t is not None else None for t in plan["tasks"]]
        data = [_scored_choice(backend, i * req.n + j, p, s, req)
                for i, (p, s) in enumerate(zip(plan["prompts"], rows)) for j in range(req.n)]
        rendered = [render_choice(backend, d, req) for d in data]
        if push is not None:
            for r in rendered:
                push(sse(CompletionResponse(id=rid, created=created, model=model, choices=[r.choice],
                                            logprobs_mode=req.logprobs_mode)))
        return rendered

    return Job("score", prepare, finish)


def _score_task(backend: Backend, prompt: PromptIds, req: CompletionRequest, limits: Limits,
                top_k: int) -> ScoreTask | None:
    token_budget(backend, len(prompt.ids), req.max_tokens, limits)
    wants = _wants_prompt_scores(req) and len(prompt.ids) > 1
    if req.max_tokens == 1:  # a placeholder target: its row is the distribution after the prompt
        return ScoreTask(prompt.ids + [0], 1 if wants else len(prompt.ids), top_k,
                         ranks=req.prompt_logprobs is not None)
    # legacy echo reads each prompt token's log-prob (and top_k alternatives); prompt_logprobs also reads ranks
    rank_read = req.prompt_logprobs is not None
    return ScoreTask(prompt.ids, 1, top_k, values_only=not rank_read, ranks=rank_read) if wants else None


def _scored_choice(backend: Backend, index: int, prompt: PromptIds, s: PositionScores | None,
                   req: CompletionRequest) -> ChoiceData:
    if req.max_tokens != 1:
        return ChoiceData(index, prompt, s, finish_reason="length")
    n_prompt = len(s) - 1  # rows before the last score the prompt
    top_ids, top_lps = s.top_ids[-1].tolist(), s.top_logprobs[-1].tolist()
    token = GeneratedToken(top_ids[0], top_lps[0], top_ids[:req.logprobs or 0], top_lps[:req.logprobs or 0], 0)
    prompt_rows = _slice(s, 0, n_prompt) if n_prompt else None
    data = ChoiceData(index, prompt, prompt_rows, [token])
    _finish_one_token(backend, data, stop_list(req.stop))
    return data


def _finish_one_token(backend: Backend, data: ChoiceData, stops: list[str]) -> None:
    """OpenAI's finish rules for a single generated token."""
    tid = data.tokens[0].token_id
    data.text = "" if tid == backend.eos_token_id else backend.detokenize([tid])
    hit = min(((data.text.find(s), s) for s in stops if s in data.text), default=None)
    if hit is not None:
        data.text, data.finish_reason, data.stop_reason = data.text[:hit[0]], "stop", hit[1]
    elif tid == backend.eos_token_id:
        data.finish_reason, data.stop_reason = "stop", tid


def _slice(s: PositionScores, a: int, b: int) -> PositionScores:
    return PositionScores(s.logprob[a:b], s.rank[a:b], s.entropy[a:b], s.top_ids[a:b], s.top_logprobs[a:b])


# -- the decoding path ------------------------------------------------------------------------------

def _decode_job(req: CompletionRequest, prompt, limits: Limits, index: int, nth: int, rid: str, created: int,
                model: str, push) -> Job:
    stops = stop_list(req.stop)
    seed = None if req.seed is None else req.seed + nth
    top_k = max(req.logprobs or 0, req.prompt_logprobs or 0)

    def prepare(backend: Backend) -> Decoding:
        ids = _prompt_ids(backend, prompt, req)
        budget = token_budget(backend, len(ids.ids), req.max_tokens, limits)
        if budget == 0:
            raise RequestError("the prompt fills the model's context; nothing can be generated",
                               param="prompt", code="context_length_exceeded", hint="shorten the prompt")
        config = req.sampler(logit_bias_ids(backend, req.logit_bias))
        scores = (backend.score_positions([ids.ids], [1], top_k)[0]
                  if _wants_prompt_scores(req) and len(ids.ids) > 1 else None)
        dec = Decoding(ids.ids, budget, config, seed, stops, req.logprobs or 0, req.logprobs_mode)
        dec.context = ChoiceData(index, ids, scores)
        if push is not None:
            dec.on_token = _streamer(backend, req, rid, created, model, push)
        return dec

    def finish(backend: Backend, dec: Decoding) -> Rendered:
        data = dec.context
        data.tokens, data.text, data.finish_reason, data.stop_reason = (dec.tokens, dec.text, dec.finish_reason,
                                                                        dec.stop_reason)
        return render_choice(backend, data, req)

    return Job("generate", prepare, finish)


def _streamer(backend: Backend, req: CompletionRequest, rid: str, created: int, model: str, push):
    """on_token for streaming: the echo (first chunk only), the new text and its log-probs."""
    def on_token(dec: Decoding, piece: str) -> None:
        data: ChoiceData = dec.context
        first = len(dec.tokens) == 1
        part = ChoiceData(data.index, data.prompt, data.prompt_scores, dec.tokens[-1:], piece, dec.finish_reason,
                          dec.stop_reason)
        choice = render_choice(backend, part, req, first=first, streaming=True).choice
        push(sse(CompletionResponse(id=rid, created=created, model=model, choices=[choice],
                                    logprobs_mode=req.logprobs_mode)))
    return on_token


# -- the wire form ---------------------------------------------------------------------------------

def render_choice(backend: Backend, data: ChoiceData, req: CompletionRequest, first: bool = True,
                  streaming: bool = False) -> Rendered:
    """A choice on the wire; a streamed chunk carries the echo and prompt log-probs only when ``first``."""
    echo = req.echo and first
    logprobs = _legacy_logprobs(backend, data, req, echo, streaming) if req.logprobs is not None else None
    prompt_lps = _prompt_logprobs(backend, data, req) if req.prompt_logprobs is not None and first else None
    choice = CompletionChoice(index=data.index, text=(data.prompt.text if echo else "") + data.text,
                              logprobs=logprobs, finish_reason=data.finish_reason, stop_reason=data.stop_reason,
                              prompt_logprobs=prompt_lps)
    return Rendered(choice, len(data.prompt.ids), len(data.tokens))


def _legacy_logprobs(backend: Backend, data: ChoiceData, req: CompletionRequest, echo: bool,
                     streaming: bool) -> CompletionLogprobs:
    """OpenAI's ``{tokens, token_logprobs, top_logprobs, text_offset}``; top dicts hold the
    ``logprobs`` most likely tokens plus the chosen one (so up to logprobs + 1 entries)."""
    as_ids, k = req.return_tokens_as_token_ids, req.logprobs or 0
    out = CompletionLogprobs(text_offset=[], token_logprobs=[], tokens=[], top_logprobs=[])
    if echo:
        _echo_logprobs(backend, data, out, k, as_ids)
    base = len(data.prompt.text) if req.echo else 0
    for t in data.tokens:
        out.tokens.append(token_label(backend, t.token_id, as_ids))
        out.text_offset.append(base + (t.offset if streaming else min(t.offset, len(data.text))))
        out.token_logprobs.append(finite(t.logprob))
        out.top_logprobs.append(_top_dict(backend, t.top_ids[:k], t.top_logprobs[:k], t.token_id, t.logprob, as_ids))
    return out


def _echo_logprobs(backend: Backend, data: ChoiceData, out: CompletionLogprobs, k: int, as_ids: bool) -> None:
    """The prompt's entries: null for the first token (nothing predicts it), then its scores."""
    s = data.prompt_scores
    lps = s.logprob.tolist() if s is not None else []
    top_ids, top_lps = (s.top_ids[:, :k].tolist(), s.top_logprobs[:, :k].tolist()) if s is not None else ([], [])
    for pos, tid in enumerate(data.prompt.ids):
        out.tokens.append(token_label(backend, tid, as_ids))
        out.text_offset.append(data.prompt.offsets[pos])
        if 1 <= pos <= len(lps):
            r = pos - 1
            out.token_logprobs.append(finite(lps[r]))
            out.top_logprobs.append(_top_dict(backend, top_ids[r], top_lps[r], tid, lps[r], as_ids))
        else:
            out.token_logprobs.append(None)
            out.top_logprobs.append(None)


def _top_dict(backend: Backend, ids: list[int], lps: list[float], chosen: int, chosen_lp: float,
              as_ids: bool) -> dict[str, float]:
    """Most likely first; a later token whose label repeats an earlier one keeps the earlier value."""
    out: dict[str, float] = {}
    for tid, lp in [*zip(ids, lps), (chosen, chosen_lp)]:
        out.setdefault(token_label(backend, tid, as_ids), finite(lp))
    return out


def _prompt_logprobs(backend: Backend, data: ChoiceData, req: CompletionRequest) -> list:
    """vLLM's ``prompt_logprobs``: None for the first token, then {"<id>": {logprob, rank, decoded_token}}
    for the prompt token and the top alternatives."""
    s, k, as_ids = data.prompt_scores, req.prompt_logprobs or 0, req.return_tokens_as_token_ids
    out: list = [None]
    if s is None:
        return out + [None] * (len(data.prompt.ids) - 1)
    lps, ranks = s.logprob.tolist(), s.rank.tolist()
    top_ids, top_lps = s.top_ids[:, :k].tolist(), s.top_logprobs[:, :k].tolist()
    for r, tid in enumerate(data.prompt.ids[1:]):
        entry = {str(tid): PromptLogprob(logprob=finite(lps[r]), rank=ranks[r],
                                         decoded_token=token_label(backend, tid, as_ids))}
        for rank, (alt, lp) in enumerate(zip(top_ids[r], top_lps[r]), start=1):
            entry.setdefault(str(alt), PromptLogprob(logprob=finite(lp), rank=rank,
                                                     decoded_token=token_label(backend, alt, as_ids)))
        out.append(entry)
    return out


