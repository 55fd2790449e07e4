"""Wall time of a warm `logitscope next` (converted cache present), phase by phase, optionally against a baseline.

Each run is a fresh process, so every number includes the Python start-up. Phases:

    import torch          the floor: every path that runs a model pays it
    import logitscope.cli what `logitscope --help` costs
    warm next             `logitscope next "To be or not to" -k 3 --json`, end to end
    first start           the same with an empty cache (GGUF dequantized and saved), once

``--baseline SRC`` runs the same commands with PYTHONPATH=SRC (e.g. an older
checkout's ``src``), interleaved with the current code run for run, so both see
the same machine load. CPU time (user + sys of the child) is reported next to
wall time: on a shared machine it is the steadier of the two.

    flock /tmp/logitscope-bench.lock .venv/bin/python benchmarks/bench_startup.py \
        [--repeats 5] [--baseline /tmp/old/src] [--threads 1] [--first-start] [--out benchmarks/startup.md]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
NEXT = ["-m", "logitscope", "next", "To be or not to", "-k", "3", "--json"]
PHASES = {
    "import torch": ["-c", "import torch"],
    "import logitscope.cli": ["-c", "import logitscope.cli"],
    "warm next": NEXT,
}


def timed(args: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of one fresh ``python args`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def environment(src: str, cache: str | None, threads: int | None) -> dict:
    env = {**os.environ, "PYTHONPATH": src}
    if cache:
        env["LOGITSCOPE_CACHE"] = cache
    if threads:
        env["LOGITSCOPE_THREADS"] = str(threads)
    return env


def measure(trees: dict[str, str], repeats: int, threads: int | None) -> dict:
    """{(tree, phase): [(wall, cpu), ...]}, trees interleaved run by run."""
    times: dict = {}
    for _ in range(repeats):
        for phase, args in PHASES.items():
            for label, src in trees.items():
                times.setdefault((label, phase), []).append(timed(args, environment(src, None, threads)))
    return times


PHASE_SCRIPT = """
import sys, time
def tick(label, t=[time.perf_counter(), time.process_time()]):
    w, c = time.perf_counter(), time.process_time()
    print(f"{label}\t{w - t[0]:.3f}\t{c - t[1]:.3f}"); t[:] = [time.perf_counter(), time.process_time()]
import torch; tick("import torch")
import logitscope.cli.core_cmds; tick("import the CLI's next command")
import logitscope; m = logitscope.load(); tick("load the model (imports it needs included)")
m.next_token("To be or not to", top_k=3); tick("first next_token")
m.next_token("To be or not to", top_k=3); tick("second next_token")
print("transformers modules imported\t" + str(sum(k.startswith("transformers") for k in sys.modules)) + "\t")
"""


def phases(src: str, threads: int | None) -> list[tuple[str, str, str]]:
    """(phase, wall, CPU) inside one process, for the tree at ``src``."""
    out = subprocess.run([sys.executable, "-c", PHASE_SCRIPT], env=environment(src, None, threads), check=True,
                         capture_output=True, text=True).stdout
    return [tuple(line.split("\t")) for line in out.strip().splitlines()]


def phase_table(trees: dict[str, str], threads: int | None) -> str:
    runs = {label: phases(src, threads) for label, src in trees.items()}
    lines = ["| phase (one process) | " + " | ".join(f"{t}: wall | {t}: CPU" for t in trees) + " |",
             "|---|" + "---|---|" * len(trees)]
    for i, (name, *_) in enumerate(next(iter(runs.values()))):
        unit = "" if name.startswith("transformers") else " s"  # the last row is a count
        cells = [f"{v}{unit}" if v else "" for t in trees for v in runs[t][i][1:]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def first_start(threads: int | None) -> float:
    with tempfile.TemporaryDirectory() as cache:
        return timed(NEXT, environment(SRC, cache, threads))[0]


def table(times: dict, trees: list[str], repeats: int) -> str:
    head = "| phase | " + " | ".join(f"{t}: wall (median) | {t}: CPU" for t in trees) + " |"
    lines = [head, "|---|" + "---|---|" * len(trees)]
    for phase in PHASES:
        cells = []
        for t in trees:
            runs = times[(t, phase)]
            cells += [f"{statistics.median(w for w, _ in runs):.2f} s", f"{statistics.median(c for _, c in runs):.2f} s"]
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\nMedians of {repeats} fresh processes per cell."


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline", help="a src/ directory to compare with, run interleaved")
    ap.add_argument("--threads", type=int, help="LOGITSCOPE_THREADS for every run (default: torch's choice)")
    ap.add_argument("--first-start", action="store_true", help="also time one start with an empty cache")
    ap.add_argument("--out", help="write the report here (default: print only)")
    args = ap.parse_args()
    trees = {"current": SRC, **({"baseline": args.baseline} if args.baseline else {})}
    load_before = os.getloadavg()
    times = measure(trees, args.repeats, args.threads)
    inside = phase_table(trees, args.threads)
    extra = f"\n\nFirst start (empty cache, GGUF dequantized + saved): {first_start(args.threads):.1f} s" \
        if args.first_start else ""
    text = (f"Command: `logitscope {' '.join(NEXT[2:])}`, bundled SmolLM2-135M-Instruct, {os.cpu_count()} CPU cores, "
            f"threads: {args.threads or 'torch default'}; load average before/after: "
            f"{load_before[0]:.1f} / {os.getloadavg()[0]:.1f}.\n\n{table(times, list(trees), args.repeats)}\n\n"
            f"Inside one process:\n\n{inside}{extra}\n")
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
