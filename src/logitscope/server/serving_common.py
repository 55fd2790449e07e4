"""What every serving module needs: waiting on worker jobs while watching the client,
server-sent events, limits and the checks shared by completions and chat."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from ..backends.base import Backend
from ..errors import InputError
from .engine import Job, ModelWorker
from .errors import RequestError, error_response

DONE = "data: [DONE]\n\n"
NO_LOGPROB = -9999.0  # what OpenAI and vLLM send for log(0): JSON has no -Infinity


@dataclass(frozen=True)
class Limits:
    max_logprobs: int = 20  # top alternatives per position (logprobs, prompt_logprobs, top_logprobs)
    max_prompts: int = 1024  # prompts per /v1/completions request
    max_tokens: int | None = None  # generated tokens per choice (None: the model's context)
    max_choices: int = 64  # prompts x n per request


class ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


def request_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


def submit_all(worker: ModelWorker, jobs: list[Job]) -> None:
    """Queue every job, or none: a full queue (ServerBusy) cancels those already queued."""
    try:
        for job in jobs:
            worker.submit(job)
    except Exception:
        cancel(jobs)
        raise


async def run_jobs(request: Request | None, worker: ModelWorker, jobs: list[Job]) -> list:
    """Submit ``jobs`` and wait for all of them; cancel them all if the client disconnects."""
    submit_all(worker, jobs)
    everything = asyncio.gather(*(job.future for job in jobs))
    watcher = asyncio.ensure_future(_disconnected(request)) if request is not None else None
    try:
        if watcher is not None:
            await asyncio.wait({everything, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not everything.done():
                raise ClientGone()
        return await everything
    except (ClientGone, asyncio.CancelledError):
        cancel(jobs)
        everything.cancel()
        raise
    finally:
        if watcher is not None:
            watcher.cancel()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def cancel(jobs: list[Job]) -> None:
    for job in jobs:
        job.cancelled = True


def sse(payload: BaseModel | dict) -> str:
    body = payload.model_dump_json() if isinstance(payload, BaseModel) else json.dumps(payload)
    return f"data: {body}\n\n"


async def stream_jobs(worker: ModelWorker, jobs: list[Job], events: asyncio.Queue,
                      tail: Callable[[], list[str]] = list, head: list[str] = ()) -> StreamingResponse:
    """Submit ``jobs`` and stream what they put on ``events``. The first event is awaited
    before the response starts, so a request that fails at once (a full queue, a prompt too
    long for the context) still gets its HTTP status and error envelope."""
    submit_all(worker, jobs)
    for job in jobs:
        job.future.add_done_callback(events.put_nowait)
    try:
        first = await events.get()
    except asyncio.CancelledError:
        cancel(jobs)
        raise
    if isinstance(first, asyncio.Future) and not first.cancelled() and first.exception() is not None:
        cancel(jobs)
        raise first.exception()
    return StreamingResponse(_sse_events(jobs, events, tail, list(head), first), media_type="text/event-stream")


async def _sse_events(jobs: list[Job], events: asyncio.Queue, tail: Callable[[], list[str]], head: list[str],
                      first) -> AsyncIterator[str]:
    """SSE text: ``head``, the chunks the jobs put on ``events`` (from the worker), an error
    event for a job that fails, then ``tail()`` (e.g. a usage chunk) and ``data: [DONE]``."""
    remaining = len(jobs)
    try:
        for line in head:
            yield line
        while remaining:
            item, first = (first, None) if first is not None else (await events.get(), None)
            if isinstance(item, asyncio.Future):
                remaining -= 1
                if not item.cancelled() and item.exception() is not None:
                    yield f"data: {error_response(item.exception()).body.decode()}\n\n"
                continue
            yield item
        for line in tail():
            yield line
        yield DONE
    finally:
        cancel(jobs)  # a no-op for finished jobs; stops the rest when the client went away


def pusher(events: asyncio.Queue) -> Callable[[str], None]:
    """A thread-safe ``put`` onto ``events`` for code running in the worker thread."""
    loop = asyncio.get_running_loop()
    return lambda item: loop.call_soon_threadsafe(events.put_nowait, item)


# -- checks shared by completions and chat ------------------------------------------------

def finite(logprob: float) -> float:
    return logprob if logprob > NO_LOGPROB else NO_LOGPROB


def check_logprobs(value: int | None, limits: Limits, param: str) -> None:
    if value is not None and value > limits.max_logprobs:
        raise RequestError(f"{param}={value} exceeds this server's limit of {limits.max_logprobs}",
                           param=param, code="logprobs_too_large",
                           hint=f"ask for at most {limits.max_logprobs} (logitscope serve --max-logprobs)")


def check_unsupported(req) -> None:
    if req.presence_penalty or req.frequency_penalty:
        param = "presence_penalty" if req.presence_penalty else "frequency_penalty"
        raise RequestError(f"{param} is not supported", param=param, code="unsupported",
                           hint="use repetition_penalty instead")


def check_choices(count: int, limits: Limits) -> None:
    if count > limits.max_choices:
        raise RequestError(f"the request asks for {count} choices; the limit is {limits.max_choices}",
                           param="n", code="too_many_choices", hint="send fewer prompts or a smaller n")


def token_budget(backend: Backend, prompt_len: int, max_tokens: int | None, limits: Limits,
                 param: str = "max_tokens") -> int:
    """The number of tokens to generate; 400 context_length_exceeded when it cannot fit."""
    context = backend.capabilities.context_length
    room = context - prompt_len
    if room < 0 or (max_tokens is not None and max_tokens > room):
        asked = f" + {max_tokens} requested" if max_tokens else ""
        raise RequestError(f"this model's maximum context length is {context} tokens; the prompt has "
                           f"{prompt_len} tokens{asked}", param=param if room >= 0 else "prompt",
                           code="context_length_exceeded", hint="shorten the prompt or lower max_tokens")
    if limits.max_tokens is not None and max_tokens is not None and max_tokens > limits.max_tokens:
        raise RequestError(f"max_tokens={max_tokens} exceeds this server's limit of {limits.max_tokens}",
                           param=param, code="max_tokens_too_large", hint=f"ask for at most {limits.max_tokens}")
    budget = room if max_tokens is None else max_tokens
    return budget if limits.max_tokens is None else min(budget, limits.max_tokens)


def logit_bias_ids(backend: Backend, bias: dict[str, float] | None) -> dict[int, float] | None:
    """OpenAI's ``{"<token id>": bias}`` checked against the vocabulary."""
    if not bias:
        return None
    out = {}
    for key, value in bias.items():
        try:
            tid = int(key)
        except ValueError:
            raise RequestError(f"logit_bias key {key!r} is not a token id", param="logit_bias",
                               hint='keys are token ids as strings, e.g. {"1234": -100}') from None
        if not 0 <= tid < backend.vocab_size:
            raise RequestError(f"logit_bias names token id {tid}, outside the vocabulary", param="logit_bias",
                               hint=f"token ids must be in [0, {backend.vocab_size - 1}]")
        out[tid] = value
    return out


def stop_list(stop: str | list[str] | None) -> list[str]:
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if any(not s for s in stops):
        raise RequestError("a stop string is empty", param="stop", hint="give non-empty stop strings")
    if len(stops) > 16:
        raise RequestError(f"{len(stops)} stop strings; the limit is 16", param="stop")
    return stops


def as_request_error(exc: InputError, param: str) -> RequestError:
    return exc if isinstance(exc, RequestError) else RequestError(exc.message, param=param, hint=exc.hint)
