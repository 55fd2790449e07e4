"""Long web requests as worker jobs the page can cancel, streamed as JSON lines.

A stepped job (a ``Stepper``: reading window by window, Run N, a continuation) stops at its
next step once cancelled. A one-call analysis (the tree, beam search, ranking) runs on
``backends.interruptible.Interruptible``: every model call first checks the job's flag, so
Cancel stops it at its next forward pass instead of letting it run on in the worker.

    {"job": "86fee440f16c"}                          the id for POST /api/jobs/{id}/cancel
    {"progress": 3, "of": 13}                        (model calls so far, where known)
    {"result": {...}} | {"cancelled": true} | {"error": {...}}

When the server stops (Ctrl-C, SIGTERM) every job is cancelled (``ModelWorker.cancel_all``) and
the streams end at once with ``{"cancelled": true, "stopping": true}``, without waiting for the
step in progress, so the shutdown is not held up by a long job.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

from ..backends.base import Backend
from ..backends.interruptible import Interrupted, Interruptible
from ..server.engine import Job
from ..server.errors import error_response

STOP_POLL = 0.2  # seconds between checks whether the server is stopping


def interruptible_call(fn: Callable[[Backend], object], expected: int | None = None) -> Callable:
    """A job maker for ``job_lines``: ``fn`` run once on an ``Interruptible`` backend."""
    def make(report) -> Job:
        job = Job("call", lambda b: fn(Interruptible(b, lambda: job.cancelled, report, expected)))
        return job

    return make


async def job_lines(jobs: dict[str, Job], worker, make_job, partial=None):
    """JSON lines of a worker job: its id, its progress reports, then one of
    ``{"result": ...}``, ``{"cancelled": true}`` or ``{"error": {...}}`` (plus ``partial()``).
    ``jobs`` holds the running jobs by id (what the cancel route looks up)."""
    loop, events = asyncio.get_running_loop(), asyncio.Queue()
    job = make_job(lambda e: loop.call_soon_threadsafe(events.put_nowait, e))
    job_id = uuid.uuid4().hex[:12]
    jobs[job_id] = job
    waiter = None
    try:
        worker.submit(job)
        yield line({"job": job_id})
        while not (job.future.done() and events.empty()):
            waiter = asyncio.ensure_future(events.get())
            await asyncio.wait({waiter, job.future}, timeout=STOP_POLL, return_when=asyncio.FIRST_COMPLETED)
            if waiter.done():
                yield line(waiter.result())
                continue
            waiter.cancel()
            if worker.winding_down and not job.future.done():
                yield line({"cancelled": True, "stopping": True})
                return
        yield line(await outcome(job, partial))
    finally:
        if waiter is not None and not waiter.done():
            waiter.cancel()  # never leave a pending task behind (a server shutting down mid-stream)
        job.cancelled = True  # the page went away (or we are done): stop stepping
        jobs.pop(job_id, None)


async def outcome(job: Job, partial) -> dict:
    error = None if job.future.cancelled() else job.future.exception()
    if error is None and not job.future.cancelled():
        return {"result": job.future.result()}
    extra = await partial() if partial else {}
    if job.future.cancelled() or isinstance(error, Interrupted):
        return {"cancelled": True, **extra}
    return {"error": json.loads(error_response(error).body)["error"], **extra}


def line(obj: dict) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode()
