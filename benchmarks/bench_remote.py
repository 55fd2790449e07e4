"""Perplexity through `logitscope serve` (remote backend) vs the same run in-process.

    flock /tmp/logitscope-bench.lock env PYTHONPATH=src .venv/bin/python benchmarks/bench_remote.py \
        --tokens 20000 --window 1024 --out benchmarks/remote.md

The server is a separate process (`logitscope serve`, the bundled model) on 127.0.0.1;
the client runs `Model.perplexity` over `-m http://127.0.0.1:PORT/v1` at each concurrency.
Both sides use LOGITSCOPE_THREADS torch threads. Reported: tokens/s, the ratio to the
in-process run measured in the same invocation, and the relative perplexity difference.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
THREADS = int(os.environ.setdefault("LOGITSCOPE_THREADS", "1"))

from bench_perplexity import corpus_text  # noqa: E402
from servers import logitscope_serve, stop  # noqa: E402


def timed_perplexity(model, text: str, window: int, convention: str) -> tuple[float, float, int]:
    t = time.perf_counter()
    r = model.perplexity(texts=[text], window=window, convention=convention)
    return time.perf_counter() - t, r.total.perplexity, r.total.num_scored


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=100_000)
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--convention", default="strided", choices=["strided", "disjoint", "llamacpp"])
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--port", type=int, default=18731)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import logitscope
    from logitscope.backends.remote import connect

    local = logitscope.load()
    ids = local.backend.tokenize(corpus_text()).ids
    while len(ids) < args.tokens:
        ids = ids + ids
    text = local.backend.detokenize(ids[:args.tokens])
    rows = []
    secs, ppl, n = timed_perplexity(local, text, args.window, args.convention)
    rows.append(("in-process", secs, ppl, n))
    print(f"in-process: {n / secs:.0f} tok/s ppl {ppl:.6f}", file=sys.stderr, flush=True)
    server = logitscope_serve(args.port, THREADS, "--max-batch-tokens", "8192", "--max-queue", "1024")
    try:
        for c in args.concurrency:
            remote = logitscope.from_backend(connect(f"http://127.0.0.1:{args.port}/v1", concurrency=c))
            secs_r, ppl_r, n_r = timed_perplexity(remote, text, args.window, args.convention)
            rows.append((f"remote, concurrency {c}", secs_r, ppl_r, n_r))
            print(f"concurrency {c}: {n_r / secs_r:.0f} tok/s ppl {ppl_r:.6f}", file=sys.stderr, flush=True)
            remote.backend.close()
    finally:
        stop(server)
    report = render(rows, args)
    print(report)
    if args.out:
        Path(args.out).write_text(report)


def render(rows, args) -> str:
    base_secs, base_ppl, _ = rows[0][1], rows[0][2], rows[0][3]
    lines = ["| run | seconds | tokens/s | vs in-process | perplexity | rel. Δ perplexity |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, secs, ppl, n in rows:
        lines.append(f"| {name} | {secs:.1f} | {n / secs:.0f} | {base_secs / secs:.2f}× | {ppl:.6f} | "
                     f"{abs(ppl - base_ppl) / base_ppl:.1e} |")
    how = f"strided window {args.window} (stride {args.window // 2})" if args.convention == "strided" else \
        f"{args.convention} windows of {args.window}"
    return "\n".join([f"{rows[0][3]} scored tokens, {how}, "
                      f"bundled SmolLM2-135M float32, LOGITSCOPE_THREADS={THREADS} on both sides.", "", *lines, ""])


if __name__ == "__main__":
    main()
