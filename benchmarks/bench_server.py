"""Server throughput on lm-eval-style loglikelihood requests: logitscope serve vs llama-cpp-python's
server vs lm-eval's in-process `hf` model, all in one run.

Each request is what lm-eval's local-completions sends for one (context, continuation) pair: ~100
context tokens + a 1-5-token continuation, echo, logprobs=1, max_tokens=1, temperature=0. logitscope
gets token ids (lm-eval's tokenized requests); llama-cpp-python gets the text (it needs
``tokenized_requests=False``). Clients are asyncio httpx connections in this process; each server is
its own process with ``--threads`` threads. For every client count the two servers run back to back
(interleaved), so a change in the machine's load hits both.

    flock /tmp/logitscope-bench.lock .venv/bin/python benchmarks/bench_server.py --threads 1 --out benchmarks/server.md

Reported per client count: requests/s, p50/p95 latency, prompt tokens/s; the batching efficiency =
our server's tokens/s over the in-process ``nll_sums`` rate on the same sequences; lm-eval `hf`
``loglikelihood`` on the same pairs (contenders venv) as requests/s; and the largest |Δ| between the
server's continuation log-likelihoods and the in-process ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import httpx  # noqa: E402

from bench_perplexity import corpus_text  # noqa: E402
from servers import CONTENDERS, llama_cpp_server, logitscope_serve, stop  # noqa: E402

LMEVAL = """
import json, sys, time, torch
torch.set_num_threads({threads})
from lm_eval.models.huggingface import HFLM
from lm_eval.api.instance import Instance
pairs = json.load(open({path!r}))
lm = HFLM(pretrained={model_dir!r}, batch_size={batch}, dtype="float32", device="cpu")
reqs = [Instance(request_type="loglikelihood", doc={{}}, arguments=(c, x), idx=i) for i, (c, x) in enumerate(pairs)]
lm.loglikelihood(reqs[:4], disable_tqdm=True)  # warm-up
t0 = time.perf_counter()
out = lm.loglikelihood(reqs, disable_tqdm=True)
print(json.dumps({{"seconds": time.perf_counter() - t0, "ll": [o[0] for o in out]}}))
"""


def make_requests(backend, n: int) -> list[tuple[list[int], list[int]]]:
    """n (context ids, continuation ids): ~100 + 1-5 tokens cut from a deterministic corpus."""
    ids = backend.tokenize(corpus_text()).ids
    out = []
    for i in range(n):
        start = (i * 397) % (len(ids) - 110)
        ctx_len = 96 + i % 9
        out.append((ids[start:start + ctx_len], ids[start + ctx_len:start + ctx_len + 1 + i % 5]))
    return out


async def run_clients(url: str, bodies: list[dict], clients: int) -> tuple[float, list[float], list[dict]]:
    """Send every body from ``clients`` concurrent connections; (wall seconds, latencies, responses in order)."""
    queue = list(enumerate(bodies))
    latencies: list[float] = []
    answers: list[dict | None] = [None] * len(bodies)

    async def client(http):
        while queue:
            i, body = queue.pop(0)
            t = time.perf_counter()
            r = await http.post(url, json=body)
            r.raise_for_status()
            latencies.append(time.perf_counter() - t)
            answers[i] = r.json()

    async with httpx.AsyncClient(timeout=900, limits=httpx.Limits(max_connections=clients)) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        return time.perf_counter() - started, latencies, answers  # type: ignore[return-value]


def served_model(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10).json()["data"][0]["id"]


def continuation_ll(answer: dict, n_cont: int, lists_generated: bool) -> float:
    """Σ log p of the continuation: the echoed prompt's last n_cont entries. logitscope (like vLLM) lists the
    one generated token after them; llama-cpp-python lists the prompt's tokens only."""
    values = answer["choices"][0]["logprobs"]["token_logprobs"]
    end = len(values) - 1 if lists_generated else len(values)
    return math.fsum(values[end - n_cont:end])


def lmeval_hf(pairs_text: list[tuple[str, str]], threads: int, batch: int, work: Path) -> dict | None:
    if not CONTENDERS.exists():
        return None
    from logitscope.loading import bundled_gguf_path, converted_dir_for

    path = work / "pairs.json"
    path.write_text(json.dumps(pairs_text))
    script = LMEVAL.format(threads=threads, path=str(path), batch=batch,
                           model_dir=str(converted_dir_for(bundled_gguf_path())))
    proc = subprocess.run([str(CONTENDERS), "-c", script], capture_output=True, text=True,
                          env=os.environ | {"OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"})
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(name, url, bodies, clients, conts, expected) -> dict:
    wall, lat, answers = asyncio.run(run_clients(url, bodies, clients))
    q = statistics.quantiles(lat, n=20)
    ours = name == "logitscope serve"
    err = max(abs(continuation_ll(a, n, ours) - e) for a, n, e in zip(answers, conts, expected))
    row = {"server": name, "clients": clients, "rps": len(bodies) / wall, "p50": statistics.median(lat),
           "p95": q[18], "wall": wall, "max_err": err}
    print(f"{name} x{clients}: {row['rps']:.2f} req/s p50 {row['p50'] * 1e3:.0f} ms p95 {row['p95'] * 1e3:.0f} ms "
          f"max|Δll| {err:.2e}", file=sys.stderr, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=96)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--lmeval-batch", type=int, default=16)
    ap.add_argument("--llama-requests", type=int, default=16,
                    help="the first N requests for llama-cpp-python (~15 s each here: it sorts the vocabulary "
                         "in Python for every echoed token)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    os.environ["LOGITSCOPE_THREADS"] = str(args.threads)
    import torch

    import logitscope
    from logitscope.loading import bundled_gguf_path
    from logitscope.server.launch import free_port

    torch.set_num_threads(args.threads)
    model = logitscope.load()
    backend = model.backend
    pairs = make_requests(backend, args.requests)
    seqs = [c + x for c, x in pairs]
    conts = [len(x) for _, x in pairs]
    tokens = sum(len(s) for s in seqs)
    expected = [-v for v in backend.nll_sums(seqs, [len(c) for c, _ in pairs])]
    t = time.perf_counter()
    backend.nll_sums(seqs, [1] * len(seqs))  # every position scored, as echo does: the same token count
    nll_rate = tokens / (time.perf_counter() - t)
    ours_bodies = [{"prompt": s, "echo": True, "logprobs": 1, "max_tokens": 1, "temperature": 0}
                   for s in seqs]
    texts = [(backend.detokenize(c), backend.detokenize(x)) for c, x in pairs]
    llama_bodies = [{**b, "prompt": c + x} for b, (c, x) in zip(ours_bodies, texts)]
    port, lport = free_port(), free_port()
    ours = logitscope_serve(port, args.threads, "--max-queue", "1024")
    llama = llama_cpp_server(lport, args.threads, str(bundled_gguf_path()))
    rows = []
    try:
        url, lurl = f"http://127.0.0.1:{port}/v1/completions", f"http://127.0.0.1:{lport}/v1/completions"
        ours_bodies = [{**b, "model": served_model(port)} for b in ours_bodies]
        llama_bodies = [{**b, "model": served_model(lport)} for b in llama_bodies] if llama else []
        asyncio.run(run_clients(url, ours_bodies[:4], 2))  # warm-up
        if llama:
            asyncio.run(run_clients(lurl, llama_bodies[:4], 1))
        for c in [int(x) for x in args.clients.split(",")]:
            rows.append(measure("logitscope serve", url, ours_bodies, c, conts, expected))
            if llama:
                m = args.llama_requests
                rows.append(measure("llama-cpp-python server", lurl, llama_bodies[:m], c, conts[:m], expected[:m]))
    finally:
        stop(ours)
        stop(llama)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / "bench_server"
    work.mkdir(exist_ok=True)
    lm = lmeval_hf(texts, args.threads, args.lmeval_batch, work)
    report = render(args, rows, tokens, nll_rate, lm, expected)
    print(report)
    if args.out:
        Path(args.out).write_text(report)


def render(args, rows, tokens, nll_rate, lm, expected) -> str:
    n = args.requests
    lines = ["# Server throughput: lm-eval-style loglikelihood requests", "",
             f"{n} requests (~100 context tokens + 1-5 continuation tokens; {tokens} tokens in all), echo, "
             f"logprobs=1, max_tokens=1, temperature 0. Bundled SmolLM2-135M: logitscope in float32, "
             f"llama-cpp-python on the Q4_1 GGUF (AVX2 build; it answers the first {args.llama_requests} "
             f"requests only, see below). {args.threads} thread(s) per server; clients "
             "in the benchmark process. One run of:", "",
             "    flock /tmp/logitscope-bench.lock .venv/bin/python benchmarks/bench_server.py "
             + " ".join(sys.argv[1:]), "",
             "| server | clients | requests/s | p50 ms | p95 ms | tokens/s | vs in-process nll_sums | "
             "max \\|Δ ll\\| vs in-process float32 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        tps = tokens * r["rps"] / n  # tokens per request differ little between the two request sets
        lines.append(f"| {r['server']} | {r['clients']} | {r['rps']:.2f} | {r['p50'] * 1e3:.0f} | "
                     f"{r['p95'] * 1e3:.0f} | {tps:.0f} | {tps / nll_rate:.0%} | {r['max_err']:.1e} |")
    lines += ["", f"In-process `nll_sums` on the same sequences, every position scored: {nll_rate:.0f} tokens/s "
              f"({n / (tokens / nll_rate):.2f} requests/s)."]
    if lm:
        err = max(abs(a - b) for a, b in zip(lm["ll"], expected))
        lines.append(f"lm-eval `hf` in-process `loglikelihood` (batch {args.lmeval_batch}, same pairs as text): "
                     f"{n / lm['seconds']:.2f} requests/s, max |Δ ll| vs logitscope {err:.1e}.")
    lines.append("")
    ours = {r["clients"]: r["rps"] for r in rows if r["server"] == "logitscope serve"}
    theirs = {r["clients"]: r["rps"] for r in rows if r["server"] != "logitscope serve"}
    for c in ours:
        parts = [f"{c} client(s): {ours[c]:.2f} req/s"]
        if c in theirs:
            parts.append(f"{ours[c] / theirs[c]:.2f}× llama-cpp-python")
        if lm:
            parts.append(f"{ours[c] / (n / lm['seconds']):.2f}× lm-eval hf in-process")
        lines.append("- " + ", ".join(parts))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
