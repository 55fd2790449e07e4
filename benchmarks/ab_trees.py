"""A/B of two source trees on the bundled model: did a change move any speed figure?

    git worktree add /tmp/old <commit>
    flock /tmp/logitscope-bench.lock .venv/bin/python benchmarks/ab_trees.py --old /tmp/old --new . --threads 1 2

Each round runs one measuring child process per tree, alternating old/new, with that tree's
``src`` on PYTHONPATH (3 rounds; each child keeps its best of --repeats). The measures use only
API both layouts have (``logitscope.load``, ``Model.score/generate/tree``, ``backend.tokenize``,
``backend.nll_sums``):

    nll_sums       16 windows of 512 tokens (perplexity's path)            tokens/s
    score          a 512-token text, top-5 alternatives (per-token scores) tokens/s
    greedy, top-p  100 new tokens, traced (T=0 / T=0.8, top-p 0.95)        tokens/s
    tree           depth 3, branch 3 after a short prompt                  trees/s

Prints a markdown table of the best value per tree and new/old.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

WINDOW, WINDOWS, NEW_TOKENS = 512, 16, 100
PROMPT = "The history of the printing press begins"


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure(threads: int, repeats: int) -> dict:
    import torch

    import logitscope
    from logitscope import SamplerConfig

    torch.set_num_threads(threads)
    model = logitscope.load()
    backend = model.backend
    text = (Path(__file__).parents[1] / "README.md").read_text()
    ids = backend.tokenize(text * 4).ids
    seqs = [ids[i:i + WINDOW] for i in range(0, WINDOW * WINDOWS, WINDOW)]
    scored = backend.detokenize(ids[:WINDOW])
    greedy = SamplerConfig(temperature=0.0, bias=((backend.eos_token_id, float("-inf")),))
    top_p = SamplerConfig(temperature=0.8, top_p=0.95, bias=((backend.eos_token_id, float("-inf")),))
    return {
        "nll_sums tok/s": sum(map(len, seqs)) / best_time(lambda: backend.nll_sums(seqs, [1] * len(seqs)), repeats),
        "score tok/s": WINDOW / best_time(lambda: model.score(scored, top_k=5), repeats),
        "greedy tok/s": NEW_TOKENS / best_time(lambda: model.generate(PROMPT, NEW_TOKENS, greedy), repeats),
        "top-p tok/s": NEW_TOKENS / best_time(lambda: model.generate(PROMPT, NEW_TOKENS, top_p, seed=1), repeats),
        "tree/s": 1 / best_time(lambda: model.tree(PROMPT, depth=3, branch=3), repeats),
    }


def run_child(tree: str, threads: int, repeats: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve() / "src"), "LOGITSCOPE_THREADS": str(threads)}
    out = subprocess.run([sys.executable, __file__, "--measure", "--threads", str(threads), "--repeats",
                          str(repeats)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old")
    ap.add_argument("--new", default=".")
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.threads[0], args.repeats)))
        return
    print("| threads | measure | old | new | new/old |\n|---:|---|---:|---:|---:|")
    for threads in args.threads:
        best = {"old": {}, "new": {}}
        for _ in range(args.rounds):
            for side in ("old", "new"):
                for key, value in run_child(getattr(args, side), threads, args.repeats).items():
                    best[side][key] = max(best[side].get(key, 0.0), value)
        for key in best["old"]:
            old, new = best["old"][key], best["new"][key]
            print(f"| {threads} | {key} | {old:.1f} | {new:.1f} | {new / old:.2f} |", flush=True)


if __name__ == "__main__":
    main()
