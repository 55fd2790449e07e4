"""Server throughput on lm-eval-style loglikelihood requests, against in-process scoring.

Each request is what lm-eval's local-completions sends: token ids of ~100 context tokens and a
1-5-token continuation, echo, logprobs=1, max_tokens=1, temperature=0. The server runs in its
own process (``logitscope serve``); clients are asyncio httpx connections in this process.

    flock /tmp/logitscope-bench.lock python benchmarks/bench_server.py --requests 96 --threads 2

Prints, per number of concurrent clients: requests/s, p50/p95 latency, prompt tokens/s, and the
batching efficiency = server tokens/s over the in-process ``nll_sums`` rate on the same sequences
(and over ``score_positions`` with top-1, which is what the server computes for echo).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time

import httpx

import logitscope
from logitscope.server.launch import free_port


def requests_for(backend, n: int, seed_text: str) -> list[list[int]]:
    """n id sequences: ~100 context tokens + 1-5 continuation tokens, cut from ``seed_text``."""
    ids = backend.tokenize(seed_text).ids
    out = []
    for i in range(n):
        start = (i * 37) % max(1, len(ids) - 110)
        out.append(ids[start:start + 100 + 1 + i % 5])
    return out


async def run_clients(url: str, prompts: list[list[int]], clients: int) -> tuple[float, list[float]]:
    queue = list(enumerate(prompts))
    latencies: list[float] = []

    async def client(http):
        while queue:
            _, ids = queue.pop()
            t = time.perf_counter()
            r = await http.post(url, json={"model": "m", "prompt": [ids], "echo": True, "logprobs": 1,
                                           "max_tokens": 1, "temperature": 0})
            r.raise_for_status()
            latencies.append(time.perf_counter() - t)

    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=clients)) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        return time.perf_counter() - started, latencies


def start_server(port: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, "LOGITSCOPE_THREADS": str(threads)}
    code = ("import logitscope, uvicorn; from logitscope.server import create_app; "
            f"uvicorn.run(create_app({{'m': logitscope.load()}}), host='127.0.0.1', port={port}, log_level='warning')")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("server did not start")


def in_process_rates(backend, prompts: list[list[int]]) -> tuple[float, float]:
    """Tokens/s of nll_sums and of score_positions(top_k=1) over the same sequences (+1 placeholder)."""
    seqs = [p + [0] for p in prompts]
    tokens = sum(len(s) for s in seqs)
    t = time.perf_counter()
    backend.nll_sums(seqs, [1] * len(seqs))
    nll = tokens / (time.perf_counter() - t)
    t = time.perf_counter()
    backend.score_positions(seqs, [1] * len(seqs), 1)
    return nll, tokens / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=96)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clients", default="1,4,16")
    args = ap.parse_args()
    os.environ["LOGITSCOPE_THREADS"] = str(args.threads)
    model = logitscope.load()
    text = open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8").read() * 3
    prompts = requests_for(model.backend, args.requests, text)
    tokens = sum(len(p) + 1 for p in prompts)
    port = free_port()
    server = start_server(port, args.threads)
    try:
        url = f"http://127.0.0.1:{port}/v1/completions"
        asyncio.run(run_clients(url, prompts[:4], 2))  # warm-up
        rows = []
        for c in [int(x) for x in args.clients.split(",")]:
            wall, lat = asyncio.run(run_clients(url, prompts, c))
            q = statistics.quantiles(lat, n=20)
            rows.append((c, len(prompts) / wall, statistics.median(lat), q[18], tokens / wall))
    finally:
        server.terminate()
        server.wait(30)
    nll_rate, score_rate = in_process_rates(model.backend, prompts)
    print(f"{args.requests} requests, {tokens} tokens (prompt + placeholder), torch threads {args.threads}")
    print("| clients | requests/s | p50 ms | p95 ms | tokens/s | vs nll_sums | vs score_positions |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for c, rps, p50, p95, tps in rows:
        print(f"| {c} | {rps:.2f} | {p50 * 1000:.0f} | {p95 * 1000:.0f} | {tps:.0f} | {tps / nll_rate:.0%} "
              f"| {tps / score_rate:.0%} |")
    print(f"in-process: nll_sums {nll_rate:.0f} tokens/s, score_positions(top_k=1) {score_rate:.0f} tokens/s")


if __name__ == "__main__":
    main()
