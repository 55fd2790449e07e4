"""Generation speed on the bundled model: KV cache vs recomputation, tracing overhead
vs transformers' own generate, and tree expansion with vs without prefix reuse.

All runs are greedy with EOS suppressed, so every run produces exactly N tokens
(ours: a -inf logit bias on EOS; transformers: min_new_tokens=N). Timings are
interleaved and the median of --repeats is reported.

    .venv/bin/python benchmarks/bench_generation.py [--repeats 3] [--threads 1] [--out benchmarks/generation.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

import logitscope
from logitscope.core.processors import SamplerConfig

PROMPT = "The history of the printing press begins"
LONG_PROMPT = " ".join(["The printing press changed how knowledge spread across Europe."] * 12)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_times(fns: dict, repeats: int) -> dict:
    """Interleave the candidates so that load changes hit them alike."""
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(timed(fn))
            print(f"  {name}: {times[name][-1]:.2f} s", file=sys.stderr, flush=True)
    return {name: statistics.median(t) for name, t in times.items()}


def cache_rows(model, cfg, repeats: int) -> list[str]:
    rows = []
    for n in (50, 100, 200):
        t = median_times({
            "kv": lambda: model.generate(PROMPT, n, cfg, top_alternatives=10),
            "none": lambda: model.generate(PROMPT, n, cfg, top_alternatives=10, use_cache=False),
        }, repeats)
        rows.append(f"| {n} | {n / t['kv']:.1f} | {n / t['none']:.1f} | {t['none'] / t['kv']:.2f}x |")
    return rows


def overhead_row(model, cfg, n: int, repeats: int) -> tuple[str, float]:
    backend = model.backend
    ids = torch.tensor([backend.tokenize(PROMPT).ids])

    def hf_generate():
        with torch.inference_mode():
            backend.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n,
                                   min_new_tokens=n, pad_token_id=backend.eos_token_id)

    t = median_times({"hf": hf_generate, "ours": lambda: model.generate(PROMPT, n, cfg, top_alternatives=10)},
                     repeats)
    overhead = t["ours"] / t["hf"] - 1
    return (f"| {n} | {t['hf']:.2f} s ({n / t['hf']:.1f} tok/s) | {t['ours']:.2f} s ({n / t['ours']:.1f} tok/s) "
            f"| {overhead * 100:+.1f}% |"), overhead


def tree_rows(model, repeats: int) -> list[str]:
    rows = []
    for label, prompt in (("short", PROMPT), ("long", LONG_PROMPT)):
        n_ids = len(model.backend.tokenize(prompt).ids)
        t = median_times({
            "reuse": lambda: model.tree(prompt, depth=3, branch=3),
            "naive": lambda: model.tree(prompt, depth=3, branch=3, reuse_cache=False),
        }, repeats)
        rows.append(f"| {label} ({n_ids} tokens) | {t['reuse']:.2f} s | {t['naive']:.2f} s "
                    f"| {t['naive'] / t['reuse']:.2f}x |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).with_name("generation.md")))
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is steadier on a busy machine)")
    args = ap.parse_args()
    model = logitscope.load(threads=args.threads)
    cfg = SamplerConfig(temperature=0.0, bias=((model.backend.eos_token_id, float("-inf")),))
    model.generate(PROMPT, 5, cfg)  # warm-up
    load_before = os.getloadavg()[0]
    cache = cache_rows(model, cfg, args.repeats)
    overhead, _ = overhead_row(model, cfg, 100, args.repeats)
    tree = tree_rows(model, args.repeats)
    text = "\n".join([
        "# Generation speed", "",
        f"Bundled SmolLM2-135M-Instruct, float32, {os.cpu_count()} CPU cores, torch threads "
        f"{torch.get_num_threads()}, median of {args.repeats} interleaved runs; load average at start "
        f"{load_before:.1f} (the machine is shared, so absolute numbers move with load). Prompt: {PROMPT!r}.",
        "", "## KV cache vs recomputing the whole prefix every step (traced, greedy, EOS suppressed)", "",
        "| new tokens | tokens/s with KV cache | tokens/s without | speedup |", "|---|---|---|---|", *cache,
        "", "## Tracing overhead vs transformers `generate` (greedy, 100 new tokens)", "",
        "Ours records per step the chosen token's raw and processed probability, rank, entropy, survivors and the "
        "top-10 alternatives.", "",
        "| new tokens | transformers generate | logitscope generate (traced) | overhead |", "|---|---|---|---|",
        overhead, "", "## Tree of possibilities, depth 3, branch 3 (13 decode steps, 39 nodes)", "",
        "| prompt | prefix reuse (fork KV cache) | naive recomputation | speedup |", "|---|---|---|---|", *tree,
        "", "Reproduce: `.venv/bin/python benchmarks/bench_generation.py --repeats "
        f"{args.repeats}{f' --threads {args.threads}' if args.threads else ''}`", ""])
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
