"""The web app's routes: the page at ``/`` and its JSON API under ``/api/``.

Each route is a thin adapter: validate the body (``protocol.py``: 422 on out-of-range
values), run one library call in the model's worker thread, return the result's
``to_dict()``. Long work (``Run N``) is a worker job stepped one token at a time,
so other requests are served between its steps; it streams progress as JSON lines
and stops at ``POST /api/jobs/{id}/cancel`` or when the page goes away.

    GET  /api/models                     served models
    POST /api/read        /read/html     scores + summary + uncertain spans; the CLI's HTML heatmap
    POST /api/position    /continue      one position's distribution; a greedy continuation from ids
    POST /api/lab/chain   /lab/sample    Model.chain / Model.sample on the prompt's cached logits
    POST /api/step        /step/{id}/step|undo|goto|run       step-by-step sessions (the explored tree)
    POST /api/step/{id}/tree             Model.tree after the session's current node
    POST /api/beam        /rank          greedy vs beam; ranking (+ context lift)
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse

from ..confidence.lift import context_lift
from ..confidence.ranking import rank
from ..core.processors import SamplerConfig
from ..sampling.beam import beam_search
from ..server.app import model_name, model_worker
from ..server.decode import Decoding
from ..server.engine import Job, Stepper
from ..server.errors import RequestError, error_response
from ..core.validation import token_ids
from . import protocol as p
from .lab import LogitsStore, lab_chain, lab_sample
from .reading import WindowedRead, position_distribution, read_view
from .stepping import SessionStore, StepSession

STATIC = Path(__file__).with_name("static")
# The page may talk to its own origin only: no CDN, no inline script, nothing from the network.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class WebState:
    """What the web app keeps between requests (touched only inside the models' workers)."""

    def __init__(self):
        self.logits: dict[str, LogitsStore] = {}
        self.sessions = SessionStore()
        self.jobs: dict[str, Job] = {}

    def store(self, model: str) -> LogitsStore:
        return self.logits.setdefault(model, LogitsStore())


def web_router() -> APIRouter:
    router, state = APIRouter(), WebState()
    _page_routes(router)
    _read_routes(router, state)
    _lab_routes(router, state)
    _step_routes(router, state)
    _compare_routes(router)
    return router


def _page_routes(router: APIRouter) -> None:
    @router.get("/", include_in_schema=False)
    async def page() -> Response:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": CSP})

    @router.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise RequestError(f"no static file {name!r}", status=404)
        return FileResponse(path, headers={"Content-Security-Policy": CSP})

    @router.get("/api/models")
    async def models(request: Request) -> dict:
        workers = request.app.state.engine.workers
        return {"models": [{"name": n, "context_length": w.backend.capabilities.context_length,
                            "vocab_size": w.backend.vocab_size, "kv_cache": w.backend.capabilities.kv_cache,
                            "engine": w.backend.engine, "dtype": w.backend.dtype}
                           for n, w in workers.items()]}


def _read_routes(router: APIRouter, state: WebState) -> None:
    @router.post("/api/read")
    async def read(body: p.ReadRequest, request: Request) -> Response:
        worker, name = model_worker(request, body.model), model_name(request, body.model)

        def job(report=None) -> Job:
            return Job("generate", lambda b: WindowedRead(b, body.text, body.context, body.top_k, report),
                       lambda b, r: {"model": name, **read_view(b, r.result(b), body.max_prob_below, body.entropy_above)})

        if body.stream:
            return StreamingResponse(_job_lines(state, worker, job), media_type="application/x-ndjson")
        return JSONResponse(await worker.run(job()))

    @router.post("/api/read/html")
    async def read_html(body: p.ReadRequest, request: Request) -> HTMLResponse:
        job = Job("generate", lambda b: WindowedRead(b, body.text, body.context, body.top_k),
                  lambda b, r: heatmap_html(r.result(b), body.color_by))
        return HTMLResponse(await model_worker(request, body.model).run(job),
                            headers={"Content-Disposition": 'attachment; filename="logitscope-heatmap.html"'})

    @router.post("/api/position")
    async def position(body: p.PositionRequest, request: Request) -> dict:
        return await model_worker(request, body.model).call(
            lambda b: position_distribution(b, token_ids("ids", body.ids, b.vocab_size), body.top))

    @router.post("/api/continue")
    async def continue_from(body: p.ContinueRequest, request: Request) -> dict:
        job = Job("generate", lambda b: Decoding(token_ids("ids", body.ids, b.vocab_size), body.max_new_tokens,
                                                 SamplerConfig.greedy()),
                  lambda b, d: {"text": d.text, "finish_reason": d.finish_reason})
        return await model_worker(request, body.model).run(job)


def heatmap_html(result, color_by: str) -> str:
    """The self-contained HTML the CLI writes (the one coupling to views/)."""
    from ..views.html import render_html

    return render_html(result, "prob" if color_by == "surprisal" else color_by)  # surprisal orders as prob


def _lab_routes(router: APIRouter, state: WebState) -> None:
    @router.post("/api/lab/chain")
    async def chain(body: p.ChainRequest, request: Request) -> dict:
        store, config = state.store(model_name(request, body.model)), body.config()
        result = await model_worker(request, body.model).call(
            lambda b: lab_chain(b, store, body.prompt, config, body.top))
        return {**result.to_dict(), "logits_cache": {"hits": store.hits, "misses": store.misses}}

    @router.post("/api/lab/sample")
    async def sample(body: p.SampleRequest, request: Request) -> dict:
        store, config = state.store(model_name(request, body.model)), body.config()
        result = await model_worker(request, body.model).call(
            lambda b: lab_sample(b, store, body.prompt, config, body.n, body.seed))
        return result.to_dict()


def _step_routes(router: APIRouter, state: WebState) -> None:
    async def on_session(request: Request, sid: str, action) -> dict:
        session = state.sessions.get(sid)
        worker = model_worker(request, session.model)
        return await worker.call(lambda b: (action(b, session), session.to_dict(b))[1])

    @router.post("/api/step")
    async def start(body: p.StepStart, request: Request) -> dict:
        name, config = model_name(request, body.model), body.config()
        return await model_worker(request, body.model).call(lambda b: state.sessions.add(
            StepSession(b, name, body.prompt, config, body.seed, body.top)).to_dict(b))

    @router.post("/api/step/{sid}/step")
    async def step(sid: str, body: p.StepRequest, request: Request) -> dict:
        return await on_session(request, sid, lambda b, s: s.step(b, body.token_id))

    @router.post("/api/step/{sid}/undo")
    async def undo(sid: str, request: Request) -> dict:
        return await on_session(request, sid, lambda b, s: s.undo())

    @router.post("/api/step/{sid}/goto")
    async def goto(sid: str, body: p.GotoRequest, request: Request) -> dict:
        return await on_session(request, sid, lambda b, s: s.goto(body.node))

    @router.post("/api/step/{sid}/tree")
    async def tree(sid: str, body: p.TreeRequest, request: Request) -> dict:
        session = state.sessions.get(sid)
        return await model_worker(request, session.model).call(lambda b: {  # node: the one it grew from
            "node": session.current, **session.tree(b, body.depth, body.branch, body.min_prob).to_dict()})

    @router.post("/api/step/{sid}/run")
    async def run(sid: str, body: p.RunRequest, request: Request) -> StreamingResponse:
        session = state.sessions.get(sid)
        worker = model_worker(request, session.model)

        def job(report) -> Job:
            return Job("generate", lambda b: RunSteps(session, body.n, report), lambda b, stepper: session.to_dict(b))

        async def partial() -> dict:  # a cancelled or failed run keeps the tokens it drew
            return {"session": await worker.call(session.to_dict)}

        return StreamingResponse(_job_lines(state, worker, job, partial), media_type="application/x-ndjson")

    @router.post("/api/jobs/{job_id}/cancel")
    async def cancel(job_id: str) -> dict:
        job = state.jobs.get(job_id)
        if job is None:
            raise RequestError(f"no running job {job_id!r}", status=404, hint="it may have finished already")
        job.cancelled = True
        return {"job": job_id, "cancelled": True}


class RunSteps(Stepper):
    """``n`` session steps as one worker job, reporting each token; stops early at EOS or a full context."""

    def __init__(self, session: StepSession, n: int, report):
        self.session, self.n, self.report, self.done = session, n, report, 0

    def step(self, backend) -> bool:
        node = self.session.step(backend)
        self.done += 1
        self.report({"progress": self.done, "of": self.n, "token": node.text})
        full = len(self.session.prompt_ids) + len(self.session.path()) >= backend.capabilities.context_length
        return self.done >= self.n or self.session.ended or full


async def _job_lines(state: WebState, worker, make_job, partial=None):
    """JSON lines of a stepped worker job: its id, its progress reports, then one of
    ``{"result": ...}``, ``{"cancelled": true}`` or ``{"error": {...}}`` (plus ``partial()``)."""
    loop, events = asyncio.get_running_loop(), asyncio.Queue()
    job = make_job(lambda e: loop.call_soon_threadsafe(events.put_nowait, e))
    job_id = uuid.uuid4().hex[:12]
    state.jobs[job_id] = job
    try:
        worker.submit(job)
        yield _line({"job": job_id})
        while not (job.future.done() and events.empty()):
            waiter = asyncio.ensure_future(events.get())
            await asyncio.wait({waiter, job.future}, return_when=asyncio.FIRST_COMPLETED)
            if waiter.done():
                yield _line(waiter.result())
            else:
                waiter.cancel()
        yield _line(await _outcome(job, partial))
    finally:
        job.cancelled = True  # the page went away (or we are done): stop stepping
        state.jobs.pop(job_id, None)


async def _outcome(job: Job, partial) -> dict:
    if not job.future.cancelled() and job.future.exception() is None:
        return {"result": job.future.result()}
    extra = await partial() if partial else {}
    if job.future.cancelled():
        return {"cancelled": True, **extra}
    return {"error": json.loads(error_response(job.future.exception()).body)["error"], **extra}


def _line(obj: dict) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode()


def _compare_routes(router: APIRouter) -> None:
    @router.post("/api/beam")
    async def beam(body: p.BeamRequest, request: Request) -> dict:
        result = await model_worker(request, body.model).call(
            lambda b: beam_search(b, body.prompt, body.num_beams, body.max_new_tokens))
        return result.to_dict()

    @router.post("/api/rank")
    async def rank_route(body: p.RankRequest, request: Request) -> dict:
        return await model_worker(request, body.model).call(lambda b: _rank(b, body))


def _rank(backend, body: p.RankRequest) -> dict:
    ranked = rank(backend, body.prompt, body.candidates)
    lifts = [context_lift(backend, body.prompt, c, [body.context]).to_dict() for c in body.candidates] \
        if body.context else None
    return {"rank": ranked.to_dict(), "lift": lifts}
