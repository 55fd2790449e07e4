"""The web app's routes: the page at ``/`` and its JSON API under ``/api/``.

Each route is a thin adapter: validate the body (``protocol.py``: 422 on out-of-range
values), run one library call in the model's worker thread, return the result's
``to_dict()``. Work that can take long (reading, Run N, a continuation, the tree, beam
search, ranking) is a worker job that streams JSON lines (``jobs.py``: its id, progress,
then the result) and stops at ``POST /api/jobs/{id}/cancel`` or when the page goes away;
other requests are served between its steps.

    GET  /api/models     /colours        served models; the heatmap's colour scales (views/colours.py)
    POST /api/read        /read/html     scores + summary + uncertain spans; the CLI's HTML heatmap
    POST /api/position    /continue      one position's distribution (+ the token read); a greedy continuation
    POST /api/lab/chain   /lab/sample    Model.chain / Model.sample on the prompt's cached logits
    POST /api/step        /step/{id}/step|undo|goto|run       step-by-step sessions (the explored tree)
    POST /api/step/{id}/tree             Model.tree after the session's current node
    POST /api/beam        /rank          greedy vs beam; ranking (+ context lift)

Offsets: every ``start``/``end`` in an answer counts Unicode code points of the scored
string (Python ``str`` indices, as in the library's results), not UTF-16 code units or
bytes. In JavaScript, cut ``Array.from(text)`` (code points) by them, not ``text.slice``:
"🍕" is one code point but two UTF-16 units. Several byte-level tokens of one character
share its span (static/read.js shows the character once, in the first one's box).
"""

from __future__ import annotations

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
from ..server.errors import RequestError
from ..core.validation import token_ids
from ..views.colours import page_scales
from . import protocol as p
from .jobs import interruptible_call, job_lines
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

    def stream(self, worker, make_job, partial=None) -> StreamingResponse:
        """A cancellable worker job as a response of JSON lines (``jobs.job_lines``)."""
        return StreamingResponse(job_lines(self.jobs, worker, make_job, partial), media_type="application/x-ndjson")

    async def answer(self, worker, make_job, stream: bool) -> Response:
        """The job's result as one JSON answer, or streamed (``stream``) so the page can show it and cancel it."""
        return self.stream(worker, make_job) if stream else JSONResponse(await worker.run(make_job(None)))


def web_router() -> APIRouter:
    router, state = APIRouter(), WebState()
    _page_routes(router)
    _read_routes(router, state)
    _lab_routes(router, state)
    _step_routes(router, state)
    _compare_routes(router, state)
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

    @router.get("/api/colours")
    async def colours() -> dict:
        return page_scales()


def _read_routes(router: APIRouter, state: WebState) -> None:
    @router.post("/api/read")
    async def read(body: p.ReadRequest, request: Request) -> Response:
        worker, name = model_worker(request, body.model), model_name(request, body.model)

        def job(report=None) -> Job:
            return Job("generate", lambda b: WindowedRead(b, body.text, body.context, body.top_k, report),
                       lambda b, r: {"model": name, **read_view(b, r.result(b), body.max_prob_below, body.entropy_above)})

        return await state.answer(worker, job, body.stream)

    @router.post("/api/read/html")
    async def read_html(body: p.ReadRequest, request: Request) -> HTMLResponse:
        job = Job("generate", lambda b: WindowedRead(b, body.text, body.context, body.top_k),
                  lambda b, r: heatmap_html(r.result(b), body.color_by, body.palette))
        return HTMLResponse(await model_worker(request, body.model).run(job),
                            headers={"Content-Disposition": 'attachment; filename="logitscope-heatmap.html"'})

    @router.post("/api/position")
    async def position(body: p.PositionRequest, request: Request) -> dict:
        return await model_worker(request, body.model).call(
            lambda b: position_distribution(b, token_ids("ids", body.ids, b.vocab_size), body.top,
                                            body.token_id))

    @router.post("/api/continue")
    async def continue_from(body: p.ContinueRequest, request: Request) -> Response:
        def job(report) -> Job:
            return Job("generate", lambda b: Decoding(token_ids("ids", body.ids, b.vocab_size), body.max_new_tokens,
                                                      SamplerConfig.greedy()),
                       lambda b, d: {"text": d.text, "finish_reason": d.finish_reason})

        return await state.answer(model_worker(request, body.model), job, body.stream)


def heatmap_html(result, color_by: str, palette: str = "viridis") -> str:
    """The self-contained HTML the CLI writes (the one coupling to views/)."""
    from ..views.html import render_html

    mode = "prob" if color_by == "surprisal" else color_by  # surprisal orders as prob
    return render_html(result, mode, palette_name=palette)


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
    async def tree(sid: str, body: p.TreeRequest, request: Request) -> Response:
        session = state.sessions.get(sid)
        node = session.current  # the node it grows from
        expansions = sum(body.branch ** d for d in range(body.depth))  # the prefill and one step per inner node
        return await state.answer(model_worker(request, session.model), interruptible_call(
            lambda b: {"node": node, **session.tree(b, body.depth, body.branch, body.min_prob).to_dict()}, expansions),
            body.stream)

    @router.post("/api/step/{sid}/run")
    async def run(sid: str, body: p.RunRequest, request: Request) -> StreamingResponse:
        session = state.sessions.get(sid)
        worker = model_worker(request, session.model)

        def job(report) -> Job:
            return Job("generate", lambda b: RunSteps(session, body.n, report), lambda b, stepper: session.to_dict(b))

        async def partial() -> dict:  # a cancelled or failed run keeps the tokens it drew
            return {"session": await worker.call(session.to_dict)}

        return state.stream(worker, job, partial)

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


def _compare_routes(router: APIRouter, state: WebState) -> None:
    @router.post("/api/beam")
    async def beam(body: p.BeamRequest, request: Request) -> Response:
        return await state.answer(model_worker(request, body.model), interruptible_call(
            lambda b: beam_search(b, body.prompt, body.num_beams, body.max_new_tokens).to_dict()), body.stream)

    @router.post("/api/rank")
    async def rank_route(body: p.RankRequest, request: Request) -> Response:
        return await state.answer(model_worker(request, body.model), interruptible_call(lambda b: _rank(b, body)),
                                  body.stream)


def _rank(backend, body: p.RankRequest) -> dict:
    ranked = rank(backend, body.prompt, body.candidates)
    lifts = [context_lift(backend, body.prompt, c, [body.context]).to_dict() for c in body.candidates] \
        if body.context else None
    return {"rank": ranked.to_dict(), "lift": lifts}
