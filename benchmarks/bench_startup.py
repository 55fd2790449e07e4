"""First-start and warm-start wall time of `logitscope next` on the bundled model.

First start: an empty cache directory, so the GGUF is dequantized and saved.
Warm start: the converted float32 weights are read from the cache.

    .venv/bin/python benchmarks/bench_startup.py [--repeats 5] [--out benchmarks/startup.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CMD = [str(Path(sys.executable).parent / "logitscope"), "next", "To be or not to", "-k", "3", "--json"]


def timed_run(env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(CMD, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def import_only(env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import logitscope.cli"], env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).with_name("startup.md")))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "LOGITSCOPE_CACHE": cache}
        first = timed_run(env)  # converts the GGUF into the empty cache
        warm = [timed_run(env) for _ in range(args.repeats)]
        imp = [import_only(env) for _ in range(args.repeats)]
    rows = [
        ("first start (empty cache: GGUF dequantized + saved)", f"{first:.1f} s"),
        (f"warm start, median of {args.repeats}", f"{statistics.median(warm):.1f} s"),
        (f"warm start, min of {args.repeats}", f"{min(warm):.1f} s"),
        ("of which `import logitscope.cli` (median)", f"{statistics.median(imp):.1f} s"),
        ("first / warm ratio", f"{first / statistics.median(warm):.1f}x"),
    ]
    table = "\n".join(["| measurement | wall time |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows])
    text = (f"# Start-up time of `logitscope next`\n\nCommand: `{' '.join(['logitscope'] + CMD[1:])}`, "
            f"bundled SmolLM2-135M-Instruct, {os.cpu_count()} CPU cores.\n\n{table}\n\n"
            f"Reproduce: `.venv/bin/python benchmarks/bench_startup.py --repeats {args.repeats}`\n")
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
