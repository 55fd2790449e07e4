"""Every failure becomes ``{"error": {"message", "type", "param", "code"}}`` with its status.

``error_response`` is the one place that decides the HTTP status and the envelope
for every exception a request can raise: logitscope's errors, request validation,
routing (404/405), auth (401), body size (413), a full queue (503 + Retry-After)
and anything unexpected (500, logged, no internals leaked).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import CapabilityError, InputError, LogitscopeError
from .engine import ServerBusy
from .protocol import ErrorInfo, ErrorResponse

log = logging.getLogger("logitscope.server")

_HTTP_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
               405: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error",
               503: "service_unavailable_error"}


class RequestError(InputError):
    """A request the server refuses, naming the offending parameter (OpenAI's ``param``)."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None, status: int = 400,
                 hint: str | None = None):
        super().__init__(message, hint)
        self.param, self.code, self.status = param, code, status


def envelope(status: int, message: str, type_: str, param: str | None = None, code: str | None = None,
             headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorResponse(error=ErrorInfo(message=message, type=type_, param=param, code=code))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def error_response(exc: BaseException) -> JSONResponse:
    """The envelope and status for any exception raised while serving a request."""
    if isinstance(exc, ServerBusy):
        return envelope(503, str(exc), "service_unavailable_error", code="queue_full",
                        headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, RequestError):
        return envelope(exc.status, str(exc), "invalid_request_error" if exc.status < 500 else "server_error",
                        exc.param, exc.code)
    if isinstance(exc, CapabilityError):
        return envelope(400, str(exc), "invalid_request_error", code="unsupported")
    if isinstance(exc, (InputError, LogitscopeError)):
        return envelope(400, str(exc), "invalid_request_error")
    if isinstance(exc, RequestValidationError):
        return _validation_response(exc)
    if isinstance(exc, StarletteHTTPException):
        kind = _HTTP_TYPES.get(exc.status_code, "invalid_request_error")
        return envelope(exc.status_code, str(exc.detail), kind, headers=getattr(exc, "headers", None))
    log.error("unexpected error while serving a request", exc_info=exc)
    return envelope(500, f"internal error ({type(exc).__name__}); the server is still running", "server_error")


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return envelope(400, "the request body is not valid JSON", "invalid_request_error", code="invalid_json")
    errors = [e for e in errors if e.get("type") == "value_error"] or errors  # our own checks say it best
    first = errors[0] if errors else {}
    loc = _loc(first)
    param = loc[0] if loc else None  # the request field, as OpenAI names it
    message = "; ".join(_describe(e) for e in errors[:5]) or "invalid request"
    return envelope(422, message, "invalid_request_error", param, code=first.get("type"))


def _loc(error: dict) -> list[str]:
    """The field path, without "body" and without pydantic's union-member tags (``function-before[...]``, ``int``)."""
    tags = {"int", "str", "float", "bool", "list", "dict", "none", "tuple"}
    return [str(p) for p in error.get("loc", ()) if p != "body" and "[" not in str(p) and str(p) not in tags]


def _describe(error: dict) -> str:
    loc = ".".join(_loc(error))
    msg = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def install_error_handlers(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc)

    for kind in (LogitscopeError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(kind, handle)
