"""Starting the server: the bind rule, the start-up banner, uvicorn."""

from __future__ import annotations

import ipaddress
import socket

from .. import settings
from ..errors import InputError
from ..core.validation import api_key

API_KEY_ENV = "LOGITSCOPE_API_KEY"  # named in messages; read by settings.api_key()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_key: str | None) -> None:
    """Only loopback addresses may be served without an API key."""
    if not is_loopback(host) and not api_key:
        raise InputError(f"refusing to serve on {host} without an API key",
                         hint=f"pass --api-key or set {API_KEY_ENV}, or bind 127.0.0.1")


def banner(host: str, port: int, names: list[str], api_key: str | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    key = f",auth_token={'$' + API_KEY_ENV}" if api_key else ""
    return "\n".join([
        f"logitscope serving {', '.join(names)} at {base}/v1",
        "lm-evaluation-harness:",
        f"  lm_eval --model local-completions --model_args model={names[0]},base_url={base}/v1/completions,"
        f"num_concurrent=8,tokenized_requests=True,tokenizer_backend=remote{key} --tasks <task>",
    ])


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def serve(app, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning", on_exit=None) -> None:
    """Run uvicorn until Ctrl-C or SIGTERM. ``on_exit()`` runs first when the signal arrives: the web
    app cancels its models' running jobs there, so open streams end and the shutdown is prompt."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            if on_exit is not None and not self.should_exit:
                on_exit()
            super().handle_exit(sig, frame)

    Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)).run()


def api_key_from_env(given: str | None) -> str | None:
    """--api-key, else $LOGITSCOPE_API_KEY (blank: unset), else None; a blank or padded key is refused."""
    if given is not None:
        return api_key("--api-key", given)
    return settings.api_key()


def check_port_free(host: str, port: int) -> None:
    """InputError when ``port`` on ``host`` cannot be bound (in use, or not allowed), before any banner."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            s.bind((host, port))
    except OSError as exc:
        why = (exc.strerror or str(exc)).lower()
        raise InputError(f"cannot serve on {host}:{port} ({why})",
                         hint="pick another --port (0 picks a free one), or stop what is using it") from None
