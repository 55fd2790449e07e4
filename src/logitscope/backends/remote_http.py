"""The HTTP side of the remote backend: one pooled httpx client, bounded retries, a
bounded number of requests in flight. Every failure becomes one ``RemoteError`` line.

    retried (with exponential backoff, honouring Retry-After): 429, 502, 503, 504,
    connection refused/reset; not retried: other 4xx (``Refused``: the request is
    wrong for this server, which capability probing relies on), 500, timeouts.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from .. import settings as environment
from ..core.validation import remote_settings
from .remote_protocol import RemoteError, error_message

RETRY_STATUS = {429, 502, 503, 504}
VALIDATION = re.compile(r"\b\d+ validation errors?\b")  # pydantic's summary line
POOL_NAME = "logitscope-remote"


@dataclass(frozen=True)
class RemoteSettings:
    """How to talk to a server: CLI --api-key, --concurrency, --timeout, or ``load(url, remote={...})``;
    unset values come from $LOGITSCOPE_API_KEY, $LOGITSCOPE_CONCURRENCY, $LOGITSCOPE_TIMEOUT (``settings``)."""

    api_key: str | None = None
    concurrency: int = 8
    timeout: float = 600.0
    retries: int = 4
    request_tokens: int = 4096  # tokens per request (several prompts packed into one)
    max_prompts: int = 64  # prompts per request
    max_logprobs: int = 20  # never ask for more alternatives than this
    backoff: float = 0.25  # first wait (seconds) before a retry; doubles each retry, capped at 8 s

    def __post_init__(self):  # the CLI's options and load(url, remote={...}) alike; the environment via settings
        checked = remote_settings(api_key=self.api_key, concurrency=self.concurrency, timeout=self.timeout)
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @staticmethod
    def resolve(**given) -> "RemoteSettings":
        """The given values (None = unset), else the environment's, else the defaults."""
        env = {"api_key": environment.api_key(), "concurrency": environment.concurrency(),
               "timeout": environment.timeout()}
        values = {k: v for k, v in (env | {k: v for k, v in given.items() if v is not None}).items() if v is not None}
        return RemoteSettings(**values)


class Refused(RemoteError):
    """The server answered 4xx: this request is not accepted (status and message kept)."""

    def __init__(self, status: int, message: str, path: str):
        super().__init__(f"the server refused {path} (HTTP {status}): {message}",
                         hint="see `logitscope info -m URL` for what this server supports")
        self.status, self.detail = status, message


class Http:
    """JSON over HTTP to one server root (``http://host:port``) with retries."""

    def __init__(self, root: str, settings: RemoteSettings):
        import httpx

        self.root, self.settings = root.rstrip("/"), settings
        headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        self._httpx = httpx
        self.client = httpx.Client(base_url=self.root, headers=headers,
                                   timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0)),
                                   limits=httpx.Limits(max_connections=settings.concurrency + 2,
                                                       max_keepalive_connections=settings.concurrency + 2))
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def post(self, path: str, body: dict) -> dict:
        return self.request("POST", path, body)

    def get(self, path: str) -> dict:
        return self.request("GET", path)

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        """The decoded JSON answer; Refused on 4xx; RemoteError on anything else that fails."""
        for attempt in range(self.settings.retries + 1):
            last = attempt == self.settings.retries
            try:
                response = self.client.request(method, path, json=body)
            except self._httpx.TimeoutException:
                raise RemoteError(f"{self.root}{path} did not answer within {self.settings.timeout:g} s",
                                  hint="raise --timeout, lower --concurrency, or check that the server is alive"
                                  ) from None
            except (self._httpx.ConnectError, self._httpx.RemoteProtocolError, self._httpx.ReadError) as exc:
                if last:
                    raise RemoteError(f"cannot reach {self.root}: {_reason(exc)}",
                                      hint="check the URL and that the server is running") from None
                self._sleep(attempt, None)
                continue
            if response.status_code in RETRY_STATUS and not last:
                self._sleep(attempt, response.headers.get("retry-after"))
                continue
            return self._decode(response, path)
        raise AssertionError("unreachable")  # pragma: no cover

    def _decode(self, response, path: str) -> dict:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            body = None
        status = response.status_code
        message = error_message(status, body if body is not None else response.text)
        if (400 <= status < 500 and status not in RETRY_STATUS) or (status == 500 and VALIDATION.search(message)):
            # llama-cpp-python answers a request its schema rejects with 500 "N validation errors"
            raise Refused(status, message, path)
        if status >= 400:
            raise RemoteError(f"{self.root}{path} failed with HTTP {status}: {message}",
                              hint="the server is failing or overloaded; check its log, lower --concurrency")
        if not isinstance(body, dict):
            raise RemoteError(f"{self.root}{path} answered with something other than a JSON object",
                              hint="check that the URL points at an OpenAI-compatible server")
        return body

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        wait_s = min(self.settings.backoff * 2 ** attempt, 8.0)
        if retry_after and retry_after.replace(".", "", 1).isdigit():
            wait_s = min(max(wait_s, float(retry_after)), 30.0)
        time.sleep(wait_s)

    # -- many requests in flight ------------------------------------------------------------------
    def map(self, fn: Callable, items: Iterable) -> list:
        """``[fn(x) for x in items]`` with up to ``concurrency`` calls in flight, in order;
        the first failure cancels what has not started and is raised."""
        items = list(items)
        nested = threading.current_thread().name.startswith(POOL_NAME)  # waiting on our own pool would deadlock
        if len(items) <= 1 or self.settings.concurrency == 1 or nested:
            return [fn(x) for x in items]
        pool = self._executor()
        futures: list[Future] = [pool.submit(fn, x) for x in items]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f.done() and f.exception() is not None), None)
        if failed is not None:
            for f in pending:
                f.cancel()
            raise failed.exception()
        return [f.result() for f in futures]

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix=POOL_NAME)
            return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if "refused" in text.lower() or "Errno 111" in text:
        return "connection refused"
    return text.splitlines()[0][:200] if text else type(exc).__name__
