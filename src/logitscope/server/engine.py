"""One worker thread per model: a bounded queue, dynamic batching, cancellation.

Backends are not thread-safe, so every call into a backend (tokenization
included) runs in its model's worker thread. Request handlers submit jobs and
await them from the event loop:

    handler ──submit──▶ inbox (bounded: ServerBusy when full)
                           │  worker loop, one iteration:
                           ├─ admit new jobs: calls run now; score jobs are prepared
                           │  (tokenized, validated); generation jobs start decoding
                           ├─ one batched ``score_positions`` over as many pending score
                           │  jobs as fit in ``max_batch_tokens`` (the largest top_k wins;
                           │  each job sees only its own)
                           └─ one decoding step of every active generation (round robin)
    handler ◀──future / stream events── worker (call_soon_threadsafe)

Concurrent scoring requests that arrive while a batch runs are scored together
in the next batch, so N clients share forward passes. Generations interleave
step by step with each other and with scoring batches; each step is its own
forward pass (the backend contract has no batched incremental decode).

A job whose client went away is marked ``cancelled``: it is dropped before it is
prepared, left out of the next batch, or stopped at its next decoding step.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..backends.base import Backend, PositionScores
from ..errors import LogitscopeError

log = logging.getLogger("logitscope.server")


class ServerBusy(LogitscopeError):
    """The model's queue is full (HTTP 503 with Retry-After)."""

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message, hint=f"retry after {retry_after} s or send fewer concurrent requests")
        self.retry_after = retry_after


@dataclass(frozen=True)
class ScoreTask:
    """One sequence to score: targets seq[start:], with ``top_k`` alternatives per position."""

    seq: list[int]
    start: int
    top_k: int = 0
    values_only: bool = False  # only log p of each target is read (no rank, entropy or alternatives)
    ranks: bool = True  # ranks (and entropies) are read; False: log-probs and alternatives only


class Stepper:
    """What a generation job runs: ``step`` until it returns True (done)."""

    def step(self, backend: Backend) -> bool:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(eq=False)
class Job:
    kind: str  # "call" | "score" | "generate"
    prepare: Callable[[Backend], Any]  # call: the result; score: list[ScoreTask]; generate: a Stepper
    finish: Callable[[Backend, Any], Any] | None = None  # (backend, scores or stepper) -> result
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future | None = None
    cancelled: bool = False
    prepared: Any = field(default=None, repr=False)

    def cost(self) -> int:
        return sum(len(t.seq) for t in self.prepared) if self.kind == "score" else 0


@dataclass
class EngineStats:
    batches: int = 0
    batched_jobs: int = 0
    scored_sequences: int = 0
    scored_tokens: int = 0
    largest_batch: int = 0  # jobs in one score_positions call
    generation_steps: int = 0
    cancelled: int = 0
    failed: int = 0


class ModelWorker:
    """Runs every job for one backend in one thread."""

    def __init__(self, backend: Backend, max_queue: int = 256, max_batch_tokens: int = 8192):
        self.backend = backend
        self.max_queue = max_queue
        self.max_batch_tokens = max_batch_tokens
        self.stats = EngineStats()
        self._inbox: collections.deque[Job] = collections.deque()
        self._cv = threading.Condition()
        self._outstanding = 0
        self._scores: list[Job] = []
        self._gens: list[Job] = []
        self._admitting: list[Job] = []  # the jobs of the current iteration, while they are admitted
        self._stopping = False
        self.winding_down = False  # cancel_all ran: the server is stopping
        self._thread: threading.Thread | None = None
        self.start()

    def start(self) -> None:
        """Start the worker thread (again, after ``close``); a no-op while it runs."""
        with self._cv:
            if self._thread is not None and self._thread.is_alive() and not self._stopping:
                return
        if self._thread is not None:
            self._thread.join()
        self._stopping = self.winding_down = False
        self._thread = threading.Thread(target=self._run, name=f"logitscope-worker-{self.backend.name}",
                                        daemon=True)
        self._thread.start()

    # -- event-loop side -------------------------------------------------------------------
    @property
    def outstanding(self) -> int:
        return self._outstanding

    def submit(self, job: Job) -> Job:
        """Queue ``job`` (raises ServerBusy when the queue is full); await ``job.future``."""
        job.loop = asyncio.get_running_loop()
        job.future = job.loop.create_future()
        with self._cv:
            if self._stopping:
                raise ServerBusy("the server is shutting down", retry_after=5)
            if self._outstanding >= self.max_queue:
                raise ServerBusy(f"the queue of model {self.backend.name!r} is full "
                                 f"({self.max_queue} requests waiting or running)")
            self._outstanding += 1
            self._inbox.append(job)
            self._cv.notify()
        return job

    async def run(self, job: Job):
        """Submit and wait; if the waiting task is cancelled, so is the job."""
        self.submit(job)
        try:
            return await job.future
        except asyncio.CancelledError:
            job.cancelled = True
            raise

    async def call(self, fn: Callable[[Backend], Any]):
        """Run ``fn(backend)`` in the worker thread (tokenization, small lookups)."""
        return await self.run(Job("call", fn))

    def cancel_all(self) -> None:
        """Mark every queued and running job cancelled (the server is stopping): generations stop at
        their next step and their streams end, so a graceful shutdown need not wait for them."""
        with self._cv:
            self.winding_down = True
            for job in [*self._inbox, *self._admitting, *self._scores, *self._gens]:
                job.cancelled = True

    def close(self, timeout: float = 10.0) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- worker side ------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            jobs = self._take()
            if jobs is None:
                break
            self._admitting = jobs
            for job in jobs:
                self._admit(job)
            self._admitting = []
            self._score_batch()
            self._step_generations()
        with self._cv:
            left = [*self._scores, *self._gens, *self._inbox]
            self._scores, self._gens = [], []
            self._inbox.clear()
        for job in left:
            self._settle(job, error=ServerBusy("the server is shutting down", retry_after=5))

    def _take(self) -> list[Job] | None:
        """New jobs; blocks only when nothing is in progress. None means stop."""
        with self._cv:
            while not self._inbox and not self._stopping and not (self._scores or self._gens):
                self._cv.wait()
            if self._stopping:
                return None
            jobs = list(self._inbox)
            self._inbox.clear()
            return jobs

    def _admit(self, job: Job) -> None:
        if job.cancelled:
            self.stats.cancelled += 1
            return self._settle(job, cancelled=True)
        try:
            job.prepared = job.prepare(self.backend)
        except Exception as exc:  # the job's own fault (bad input) or a bug: fail this job only
            return self._settle(job, error=exc)
        if job.kind == "call":
            self._settle(job, result=job.prepared)
        elif job.kind == "score":
            self._scores.append(job)
        else:
            self._gens.append(job)

    def _score_batch(self) -> None:
        """One score_positions call over the oldest pending jobs that fit the token budget."""
        batch, used = [], 0
        for job in list(self._scores):
            if job.cancelled:
                self._scores.remove(job)
                self.stats.cancelled += 1
                self._settle(job, cancelled=True)
            elif not batch or used + job.cost() <= self.max_batch_tokens:
                batch.append(job)
                used += job.cost()
        if not batch:
            return
        for job in batch:
            self._scores.remove(job)
        try:
            results = self._score_jobs(batch)
        except Exception as exc:  # one bad job must not fail the others: score each alone
            if len(batch) == 1:
                return self._settle(batch[0], error=exc)
            for job in batch:
                self._finish_alone(job)
            return
        for job, scores in zip(batch, results):
            self._finish(job, scores)

    def _score_jobs(self, batch: list[Job]) -> list[list[PositionScores]]:
        tasks = [t for job in batch for t in job.prepared]
        scores = _score_tasks(self.backend, tasks)
        self.stats.batches += 1
        self.stats.batched_jobs += len(batch)
        self.stats.scored_sequences += len(tasks)
        self.stats.scored_tokens += sum(len(t.seq) for t in tasks)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        out, i = [], 0
        for job in batch:
            n = len(job.prepared)
            out.append([_keep_top(s, t.top_k) for s, t in zip(scores[i:i + n], job.prepared)])
            i += n
        return out

    def _finish_alone(self, job: Job) -> None:
        try:
            scores = self._score_jobs([job])[0]
        except Exception as exc:
            return self._settle(job, error=exc)
        self._finish(job, scores)

    def _finish(self, job: Job, raw: Any) -> None:
        try:
            result = job.finish(self.backend, raw) if job.finish else raw
        except Exception as exc:
            return self._settle(job, error=exc)
        self._settle(job, result=result)

    def _step_generations(self) -> None:
        for job in list(self._gens):
            if job.cancelled:
                self._gens.remove(job)
                self.stats.cancelled += 1
                self._settle(job, cancelled=True)
                continue
            try:
                done = job.prepared.step(self.backend)
                self.stats.generation_steps += 1
            except Exception as exc:
                self._gens.remove(job)
                self._settle(job, error=exc)
                continue
            if done:
                self._gens.remove(job)
                self._finish(job, job.prepared)

    def _settle(self, job: Job, result: Any = None, error: BaseException | None = None,
                cancelled: bool = False) -> None:
        """Hand the outcome to the event loop (the future may already be cancelled)."""
        with self._cv:
            self._outstanding -= 1
        if error is not None:
            self.stats.failed += 1
            if not isinstance(error, LogitscopeError):
                log.exception("job failed", exc_info=error)

        def settle() -> None:
            if job.future.done():
                return
            if cancelled:
                job.future.cancel()
            elif error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)

        try:
            job.loop.call_soon_threadsafe(settle)
        except RuntimeError:  # the event loop is closed: nobody is waiting any more
            pass


def _score_tasks(backend: Backend, tasks: list[ScoreTask]) -> list[PositionScores]:
    """Scores of every task, in order, each group in one backend call: values-only tasks through
    ``token_logprobs`` (the blocked NLL path), tasks that read no ranks through ``scores_without_ranks``,
    the others through ``score_positions`` (each call with its group's largest top_k)."""
    kinds = ["values" if t.values_only and not t.top_k else "lean" if not t.ranks else "full" for t in tasks]
    out: list[PositionScores | None] = [None] * len(tasks)
    for kind in ("values", "lean", "full"):
        group = [i for i, k in enumerate(kinds) if k == kind]
        if group:
            for i, s in zip(group, _score_group(backend, kind, [tasks[i] for i in group])):
                out[i] = s
    return out  # type: ignore[return-value]


def _score_group(backend: Backend, kind: str, tasks: list[ScoreTask]) -> list[PositionScores]:
    seqs, starts = [t.seq for t in tasks], [t.start for t in tasks]
    if kind == "values":
        return [PositionScores.values_only(lp) for lp in backend.token_logprobs(seqs, starts)]
    top_k = max(t.top_k for t in tasks)
    score = backend.scores_without_ranks if kind == "lean" else backend.score_positions
    return score(seqs, starts, top_k)


def _keep_top(s: PositionScores, k: int) -> PositionScores:
    """The same scores with only the first ``k`` alternatives per position."""
    if s.top_ids.shape[-1] == k:
        return s
    return PositionScores(s.logprob, s.rank, s.entropy, s.top_ids[:, :k], s.top_logprobs[:, :k])


class Engine:
    """The workers of all served models, by name."""

    def __init__(self, backends: dict[str, Backend], max_queue: int = 256, max_batch_tokens: int = 8192):
        self.workers = {name: ModelWorker(b, max_queue, max_batch_tokens) for name, b in backends.items()}
        self.created = int(time.time())

    def names(self) -> list[str]:
        return list(self.workers)

    def start(self) -> None:
        for worker in self.workers.values():
            worker.start()

    def cancel_all(self) -> None:
        for worker in self.workers.values():
            worker.cancel_all()

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()
