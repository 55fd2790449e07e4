"""bfloat16 against float32 on the torch engine: throughput side by side, and what bfloat16 costs in numbers.

    flock /tmp/logitscope-bench.lock .venv/bin/python benchmarks/bench_dtype.py --threads 1 2 --tokens 4096

Throughput (one process, the two models alternating, best of --repeats): ``nll_sums`` (perplexity's
path) and ``score_positions`` with top-5 (per-token scores) over windows of --window tokens of this
repository's docs. Numeric cost: ``Model.compare`` (evaluation/compare.py) of bfloat16 against
float32 on the same tokens: max |Δ log p|, Δ perplexity, KL(fp32 ‖ bf16), same top token, the
token's rank changed, top-10 alternatives shared. Prints a markdown table (and writes it with --out).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import logitscope
from ab_trees import best_time
from logitscope.loading import bf16_hardware

ROOT = Path(__file__).resolve().parents[1]


def corpus(tokens: int, model) -> list[int]:
    text = "\n\n".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))
    ids = model.backend.tokenize(text).ids
    return (ids * (tokens // len(ids) + 1))[:tokens]


def throughput(models: dict, ids: list[int], window: int, repeats: int) -> dict:
    seqs = [ids[i:i + window] for i in range(0, len(ids) - window + 1, window)]
    n = sum(len(s) - 1 for s in seqs)
    out = {}
    for _ in range(2):  # alternate the models, twice, keep each one's best
        for name, m in models.items():
            nll = n / best_time(lambda: m.backend.nll_sums(seqs, [1] * len(seqs)), repeats)
            with torch.inference_mode():
                scores = n / best_time(lambda: m.backend.score_positions(seqs, [1] * len(seqs), 5), repeats)
            old = out.get(name, (0.0, 0.0))
            out[name] = (max(old[0], nll), max(old[1], scores))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    models = {"float32": logitscope.load(), "bfloat16": logitscope.load(dtype="bfloat16")}
    ids = corpus(args.tokens, models["float32"])
    text = models["float32"].backend.detokenize(ids)
    lines = [f"CPU: {_cpu()}; bfloat16 instructions (AVX512-BF16/AMX): {bf16_hardware()}; torch {torch.__version__} "
             f"({torch.backends.cpu.get_cpu_capability()} kernels); {args.tokens} tokens, windows of {args.window}.", "",
             "| threads | dtype | nll_sums tok/s | score_positions (top-5) tok/s | vs float32 (nll / scores) |",
             "|---:|---|---:|---:|---:|"]
    for threads in args.threads:
        torch.set_num_threads(threads)
        rates = throughput(models, ids, args.window, args.repeats)
        base = rates["float32"]
        for name, (nll, scores) in rates.items():
            lines.append(f"| {threads} | {name} | {nll:.0f} | {scores:.0f} | {nll / base[0]:.2f}x / {scores / base[1]:.2f}x |")
    cmp = models["float32"].compare(models["bfloat16"], text, window=args.window)
    lines += ["", "| numeric cost of bfloat16 (vs float32, same tokens) | value |", "|---|---:|",
              f"| tokens | {cmp.num_tokens} |", f"| max \\|Δ log p\\| | {cmp.delta_max:.4f} nats |",
              f"| mean Δ log p | {cmp.delta_mean:+.5f} nats |",
              f"| perplexity fp32 → bf16 | {cmp.perplexity_a:.4f} → {cmp.perplexity_b:.4f} "
              f"({100 * (cmp.perplexity_b / cmp.perplexity_a - 1):+.2f}%) |",
              f"| KL(fp32 ‖ bf16) mean / p99 / max | {cmp.kl_mean:.2g} / {cmp.kl_p99:.2g} / {cmp.kl_max:.2g} nats |",
              f"| same top token | {100 * cmp.same_top:.2f}% |", f"| token's rank changed | {100 * cmp.rank_changed:.2f}% |",
              f"| rank changed, tokens ranked in the top 10 by fp32 | {100 * _top10_changed(cmp):.2f}% |",
              f"| top-10 alternatives shared | {100 * cmp.top_overlap:.2f}% |"]
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")


def _top10_changed(cmp) -> float:
    top = [t for t in cmp.tokens if t.rank_a <= 10]
    return sum(t.rank_a != t.rank_b for t in top) / max(len(top), 1)


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
