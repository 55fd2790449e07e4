"""Start and stop the HTTP servers the benchmarks talk to (logitscope serve, llama-cpp-python's server).

Each server runs in its own process on 127.0.0.1 and is ready when ``wait_ready`` gets a 200.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

CONTENDERS = Path("/work/venv-contenders/bin/python")


def wait_ready(proc: subprocess.Popen, url: str, timeout: float = 300) -> subprocess.Popen:
    """Poll ``url`` until it answers 200; kill the process and raise if it dies or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def logitscope_serve(port: int, threads: int, *extra: str) -> subprocess.Popen:
    """`logitscope serve` on the bundled model with ``threads`` torch threads."""
    env = {**os.environ, "LOGITSCOPE_THREADS": str(threads)}
    proc = subprocess.Popen([sys.executable, "-m", "logitscope", "serve", "--port", str(port), *extra], env=env,
                            stdout=subprocess.DEVNULL)
    return wait_ready(proc, f"http://127.0.0.1:{port}/health")


def llama_cpp_server(port: int, threads: int, gguf: str, n_ctx: int = 2048) -> subprocess.Popen | None:
    """llama-cpp-python's OpenAI server on ``gguf`` (None when the contenders venv lacks it).

    ``logits_all`` is what its completions need for echo + logprobs.
    """
    if not CONTENDERS.exists():
        return None
    probe = subprocess.run([str(CONTENDERS), "-c", "import llama_cpp.server"], capture_output=True)
    if probe.returncode != 0:
        return None
    proc = subprocess.Popen([str(CONTENDERS), "-m", "llama_cpp.server", "--model", gguf, "--host", "127.0.0.1",
                             "--port", str(port), "--n_threads", str(threads), "--n_threads_batch", str(threads),
                             "--n_ctx", str(n_ctx), "--logits_all", "True"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return wait_ready(proc, f"http://127.0.0.1:{port}/v1/models")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
