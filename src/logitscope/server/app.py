"""The FastAPI app: routes, auth, body limit, and the worker behind each model.

    app = create_app({"smol": logitscope.load()}, api_key=None)
    uvicorn.run(app, host="127.0.0.1", port=8000)

Other modules add routes to the same app (the web UI does):

    app.include_router(router)              # or create_app(..., routers=[router])
    worker = model_worker(request, name)    # a route's way to the model's worker
    result = await worker.call(lambda backend: analysis(backend, ...))   # runs in the worker thread

Every backend call must go through the worker (``worker.call`` or a job): backends
are not thread-safe. Errors raised in a route (LogitscopeError included) become the
``{"error": {...}}`` envelope via ``errors.error_response``.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from ..backends.base import Backend
from .engine import Engine, ModelWorker
from .errors import RequestError, envelope, install_error_handlers
from .protocol import (ChatCompletionRequest, CompletionRequest, DetokenizeRequest, TokenizeRequest)
from .serving_chat import create_chat_completion
from .serving_common import Limits
from .serving_completion import create_completion
from .serving_tokens import detokenize, list_models, tokenize, tokenizer_info

DEFAULT_MAX_BODY = 32 * 2**20  # bytes


@dataclass
class ServerSettings:
    api_key: str | None = None
    limits: Limits = Limits()
    max_body_bytes: int = DEFAULT_MAX_BODY
    open_paths: set[str] = field(default_factory=lambda: {"/health"})  # no key needed; routes may add theirs


def create_app(models, *, api_key: str | None = None, max_logprobs: int = 20, max_queue: int = 256,
               max_batch_tokens: int = 8192, max_prompts: int = 1024, max_tokens: int | None = None,
               max_body_bytes: int = DEFAULT_MAX_BODY, routers: Sequence[APIRouter] = ()) -> FastAPI:
    """An OpenAI-compatible app serving ``models`` ({name: Model or Backend}, or a list of them)."""
    backends = _backends(models)
    settings = ServerSettings(api_key, Limits(max_logprobs, max_prompts, max_tokens), max_body_bytes)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.engine.start()  # again after a previous shutdown (tests reuse apps)
        yield
        app.state.engine.close()

    app = FastAPI(title="logitscope", lifespan=lifespan)
    app.state.engine = Engine(backends, max_queue, max_batch_tokens)
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(openai_router())
    for router in routers:
        app.include_router(router)
    app.add_middleware(AuthMiddleware, settings=settings)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)  # outermost: runs first
    return app


def _backends(models) -> dict[str, Backend]:
    if isinstance(models, Mapping):
        items = list(models.items())
    else:
        models = [models] if not isinstance(models, Sequence) else models
        items = [(_backend(m).name, m) for m in models]
    if not items:
        raise RequestError("no model to serve", hint="pass at least one model")
    return {str(name): _backend(m) for name, m in items}


def _backend(m) -> Backend:
    return m if isinstance(m, Backend) else m.backend


def model_worker(request: Request, name: str | None) -> ModelWorker:
    """The worker of model ``name`` (the first model when None or empty); 404 if unknown."""
    workers = request.app.state.engine.workers
    if not name:
        return next(iter(workers.values()))
    if name not in workers:
        raise RequestError(f"the model {name!r} does not exist", param="model", code="model_not_found",
                           status=404, hint=f"served models: {', '.join(workers)}")
    return workers[name]


def model_name(request: Request, name: str | None) -> str:
    return name or next(iter(request.app.state.engine.workers))


def as_json(payload) -> Response:
    return payload if isinstance(payload, Response) else Response(payload.model_dump_json(),
                                                                  media_type="application/json")


def openai_router() -> APIRouter:
    router = APIRouter()

    @router.get("/health")
    async def health(request: Request) -> dict:
        workers = request.app.state.engine.workers
        return {"status": "ok", "models": list(workers), "queued": {n: w.outstanding for n, w in workers.items()}}

    @router.get("/v1/models")
    async def models(request: Request) -> Response:
        return as_json(list_models(request.app.state.engine))

    @router.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Response:
        worker, limits = model_worker(request, body.model), request.app.state.settings.limits
        return as_json(await create_completion(body, worker, model_name(request, body.model), limits, request))

    @router.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        worker, limits = model_worker(request, body.model), request.app.state.settings.limits
        return as_json(await create_chat_completion(body, worker, model_name(request, body.model), limits, request))

    @router.post("/tokenize")
    async def tokenize_route(body: TokenizeRequest, request: Request) -> Response:
        return as_json(await tokenize(body, model_worker(request, body.model)))

    @router.post("/detokenize")
    async def detokenize_route(body: DetokenizeRequest, request: Request) -> Response:
        return as_json(await detokenize(body, model_worker(request, body.model)))

    @router.get("/tokenizer_info")
    async def tokenizer_info_route(request: Request, model: str | None = None) -> Response:
        return as_json(await tokenizer_info(model_worker(request, model)))

    return router


# -- middleware (pure ASGI, so streaming and disconnects pass through untouched) ------------------

class AuthMiddleware:
    """``Authorization: Bearer <key>`` on every path but ``open_paths``, compared in constant time."""

    def __init__(self, app, settings: ServerSettings):
        self.app, self.settings = app, settings
        self.expected = f"Bearer {settings.api_key}".encode() if settings.api_key else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.expected is None or scope["path"] in self.settings.open_paths:
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"authorization", b"")
        if hmac.compare_digest(given, self.expected):
            return await self.app(scope, receive, send)
        response = envelope(401, "missing or wrong API key", "authentication_error", code="invalid_api_key",
                            headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413 (by Content-Length, or while reading)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._too_large(scope, receive, send)
        body, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left while sending
            body.append(message.get("body", b""))
            more = message.get("more_body", False)
            if sum(map(len, body)) > self.max_bytes:
                return await self._too_large(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope, receive, send):
        response = envelope(413, f"the request body is larger than {self.max_bytes} bytes",
                            "invalid_request_error", code="request_too_large")
        await response(scope, receive, send)
