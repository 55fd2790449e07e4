"""Benchmark: a full quantization sweep, and the real int8 path against float32.

    .venv/bin/python benchmarks/bench_quantization.py --tokens 10000 --threads 1 --out benchmarks/quantization.md

Text: the GPL-3, Apache-2.0 and MPL-2.0 licence texts shipped with Debian
(/usr/share/common-licenses), cut to exactly --tokens scored tokens.
Measures (1) wall time and peak RSS of ``quantization_impact`` with 5 bit
widths + the int8 path, and (2) the time of one full-vocabulary log-prob pass
over the same tokens for float32 and for PyTorch dynamic int8 (best of --repeats).
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from pathlib import Path

import torch

import logitscope
from logitscope.evaluation import quantization as q
from logitscope.core.boundary import encode

LICENSES = [Path("/usr/share/common-licenses") / name for name in ("GPL-3", "Apache-2.0", "MPL-2.0")]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def corpus(backend, tokens: int) -> str:
    """The licence texts, cut after ``tokens`` tokens (the first token is not scored)."""
    text = "\n\n".join(p.read_text() for p in LICENSES)
    tok = backend.tokenize(text)
    if len(tok.ids) <= tokens:
        raise SystemExit(f"only {len(tok.ids)} tokens available")
    return text[: tok.offsets[tokens][1]]


def pass_seconds(backend, ids, score_from, window, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.inference_mode():
            for _ in q.iter_logprobs(backend, ids, score_from, window):
                pass
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=10_000)
    ap.add_argument("--speed-tokens", type=int, default=2048, help="tokens for the float32 vs int8 pass timing")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bits", type=int, nargs="+", default=[16, 8, 4, 3, 2])
    ap.add_argument("--scheme", default="per-channel")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = logitscope.load()
    text = corpus(model.backend, args.tokens)
    model.score("Warm-up: touch every weight once.")  # weights may be memory-mapped until first use
    rss_loaded = peak_rss_mb()
    start = time.perf_counter()
    report = model.quantization_impact(text, bits=args.bits, scheme=args.scheme, int8=True)
    sweep = time.perf_counter() - start
    rss_sweep = peak_rss_mb()
    enc = encode(model.backend, corpus(model.backend, args.speed_tokens))
    f32 = pass_seconds(model.backend, enc.ids, enc.score_from, 1024, args.repeats)
    int8_backend = q.int8_dynamic_backend(model.backend, "per-tensor")
    i8 = pass_seconds(int8_backend, enc.ids, enc.score_from, 1024, args.repeats)
    lines = table(report, args, sweep, rss_loaded, rss_sweep, f32, i8, len(enc.ids) - enc.score_from)
    print("\n".join(lines))
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


def table(report, args, sweep, rss_loaded, rss_sweep, f32, i8, speed_tokens) -> list[str]:
    out = [
        "## Quantization sweep (SmolLM2-135M-Instruct, CPU)",
        "",
        f"`.venv/bin/python benchmarks/bench_quantization.py --tokens {args.tokens} --threads {args.threads} "
        f"--bits {' '.join(map(str, args.bits))} --scheme {args.scheme}`  ",
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} thread(s), "
        "shared 2-core machine (other jobs running).",
        "",
        "| what | value |", "|---|---|",
        f"| scored tokens | {report.num_tokens} |",
        f"| variants | {', '.join(v.label for v in report.variants)} |",
        f"| sweep wall time (base pass + {len(args.bits)} widths + int8) | {sweep:.1f} s |",
        f"| peak RSS after loading the model | {rss_loaded:.0f} MB |",
        f"| peak RSS after the sweep | {rss_sweep:.0f} MB (+{rss_sweep - rss_loaded:.0f} MB) |",
        f"| compact base distributions (top-{report.top_k} + rest) | {report.base_store_bytes / 1e6:.1f} MB "
        f"(full float32 rows would be {report.num_tokens * 49152 * 4 / 1e9:.1f} GB) |",
        f"| float32 log-prob pass, {speed_tokens} tokens | {f32:.2f} s ({speed_tokens / f32:.0f} tok/s) |",
        f"| dynamic int8 log-prob pass, {speed_tokens} tokens | {i8:.2f} s ({speed_tokens / i8:.0f} tok/s) |",
        f"| int8 speed relative to float32 | {f32 / i8:.2f}x |",
        "", "| variant | MB | PPL | KL mean | KL median | KL p99 | same top | Δp mean | Δp RMS | s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    out.append(f"| float32 | {report.base_bytes / 1e6:.0f} | {report.base_perplexity:.3f} | 0 | 0 | 0 | 100% | 0 | 0 | |")
    for v in report.variants:
        out.append(f"| {v.label} | {v.size_bytes / 1e6:.0f} | {v.perplexity:.4g} | {v.kl_mean:.4g} | {v.kl_median:.4g} "
                   f"| {v.kl_p99:.4g} | {100 * v.same_top:.1f}% | {100 * v.delta_p_mean:+.2f}% "
                   f"| {100 * v.delta_p_rms:.2f}% | {v.seconds:.1f} |")
    return out


if __name__ == "__main__":
    main()
