"""``POST /v1/chat/completions``: the model's own chat template, then decoding jobs.

Log-probs follow OpenAI's chat shape: ``{"content": [{token, logprob, bytes,
top_logprobs: [...]}]}`` with ``bytes`` the token's raw UTF-8 bytes (a piece of a
multi-byte character is its bytes, not U+FFFD). EOS ends the message and is not content.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import Request

from ..backends.base import Backend
from ..errors import InputError
from .decode import Decoding, GeneratedToken
from .engine import Job, ModelWorker
from .protocol import (AssistantMessage, ChatChoice, ChatChunkChoice, ChatCompletionChunk, ChatCompletionRequest,
                       ChatCompletionResponse, ChoiceLogprobs, DeltaMessage, TokenLogprob, TopLogprob, Usage)
from .serving_common import (Limits, as_request_error, finite, check_choices, check_logprobs, check_unsupported,
                             logit_bias_ids, now, pusher, request_id, run_jobs, sse, stop_list, stream_jobs,
                             token_budget)
from .tokens import chat_prompt, token_bytes


@dataclass
class ChatRendered:
    choice: ChatChoice
    prompt_tokens: int
    completion_tokens: int


async def create_chat_completion(req: ChatCompletionRequest, worker: ModelWorker, model: str, limits: Limits,
                                 request: Request | None = None):
    check_logprobs(req.top_logprobs, limits, "top_logprobs")
    check_unsupported(req)
    check_choices(req.n, limits)
    stop_list(req.stop)
    rid, created = request_id("chatcmpl"), now()
    events: asyncio.Queue = asyncio.Queue()
    push = pusher(events) if req.stream else None
    jobs = [_chat_job(req, limits, j, rid, created, model, push) for j in range(req.n)]
    if req.stream:
        roles = [sse(_chunk(rid, created, model, j, DeltaMessage(role="assistant", content=""))) for j in range(req.n)]

        def tail() -> list[str]:
            if not (req.stream_options and req.stream_options.include_usage):
                return []
            done = [j.future.result() for j in jobs if j.future.done() and not j.future.cancelled()
                    and j.future.exception() is None]
            return [sse(ChatCompletionChunk(id=rid, created=created, model=model, choices=[],
                                            usage=_usage(done)))]

        return await stream_jobs(worker, jobs, events, tail, roles)
    rendered = await run_jobs(request, worker, jobs)
    return ChatCompletionResponse(id=rid, created=created, model=model, choices=[r.choice for r in rendered],
                                  usage=_usage(rendered), logprobs_mode=req.logprobs_mode)


def _usage(rendered: list[ChatRendered]) -> Usage:
    prompt = rendered[0].prompt_tokens if rendered else 0
    completion = sum(r.completion_tokens for r in rendered)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def _chat_job(req: ChatCompletionRequest, limits: Limits, index: int, rid: str, created: int, model: str,
              push) -> Job:
    stops = stop_list(req.stop)
    seed = None if req.seed is None else req.seed + index
    k = (req.top_logprobs or 0) if req.logprobs else 0
    max_tokens = req.max_completion_tokens or req.max_tokens

    def prepare(backend: Backend) -> Decoding:
        messages = [_message(m) for m in req.messages]
        try:
            prompt = chat_prompt(backend, messages, req.add_generation_prompt)
        except InputError as exc:
            raise as_request_error(exc, "messages") from exc
        budget = token_budget(backend, len(prompt.ids), max_tokens, limits,
                              param="max_tokens" if max_tokens else "messages")
        config = req.sampler(logit_bias_ids(backend, req.logit_bias))
        dec = Decoding(prompt.ids, max(budget, 1), config, seed, stops, k, req.logprobs_mode)
        if push is not None:
            dec.on_token = _streamer(backend, req, index, rid, created, model, push)
        return dec

    def finish(backend: Backend, dec: Decoding) -> ChatRendered:
        logprobs = ChoiceLogprobs(content=_content(backend, dec.tokens, k)) if req.logprobs else None
        choice = ChatChoice(index=index, message=AssistantMessage(content=dec.text), logprobs=logprobs,
                            finish_reason=dec.finish_reason, stop_reason=dec.stop_reason)
        return ChatRendered(choice, len(dec.ids), len(dec.tokens))

    return Job("generate", prepare, finish)


def _message(m) -> dict:
    content = m.content if isinstance(m.content, str) or m.content is None else "".join(p.text for p in m.content)
    return {"role": m.role, "content": content or ""}


def _streamer(backend: Backend, req: ChatCompletionRequest, index: int, rid: str, created: int, model: str, push):
    k = (req.top_logprobs or 0) if req.logprobs else 0

    def on_token(dec: Decoding, piece: str) -> None:
        content = _content(backend, dec.tokens[-1:], k)
        if piece or content:
            logprobs = ChoiceLogprobs(content=content) if req.logprobs else None
            push(sse(_chunk(rid, created, model, index, DeltaMessage(content=piece), logprobs)))
        if dec.finish_reason is not None:
            push(sse(_chunk(rid, created, model, index, DeltaMessage(), finish_reason=dec.finish_reason)))
    return on_token


def _chunk(rid: str, created: int, model: str, index: int, delta: DeltaMessage, logprobs=None,
           finish_reason: str | None = None) -> ChatCompletionChunk:
    return ChatCompletionChunk(id=rid, created=created, model=model, choices=[
        ChatChunkChoice(index=index, delta=delta, logprobs=logprobs, finish_reason=finish_reason)])


def _content(backend: Backend, tokens: list[GeneratedToken], k: int) -> list[TokenLogprob]:
    """One entry per generated token of the message (EOS left out)."""
    return [TokenLogprob(token=backend.token_text(t.token_id), logprob=finite(t.logprob),
                         bytes=token_bytes(backend, t.token_id),
                         top_logprobs=[TopLogprob(token=backend.token_text(i), logprob=finite(lp),
                                                  bytes=token_bytes(backend, i))
                                       for i, lp in zip(t.top_ids[:k], t.top_logprobs[:k])])
            for t in tokens if t.token_id != backend.eos_token_id]
