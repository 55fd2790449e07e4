"""The llama.cpp engine (backends/llamacpp.py) beside llama-cpp-python on the same GGUF and threads.

* parity      next-token top-5 log-probs after "To be or not to": ours vs llama-cpp-python's own
              ``Llama.eval`` + ``scores``.
* gap         ours (the GGUF's quantized kernels) vs the torch engine (the same GGUF dequantized
              to float32, the exact reference) on a few thousand tokens: per position, the max
              |Δ log p| over the reference's top 10, the target's |Δ log p|, KL(fp32 ‖ llama.cpp),
              the same-argmax rate; perplexity of both (strided and llama.cpp conventions).
* generation  traced greedy tokens/s (``generate``: entropy, rank and top-10 alternatives per
              step) vs llama-cpp-python's own untraced ``Llama.generate`` (greedy sampler in C,
              no processors) and ``create_completion``; up to N tokens or EOS, the same tokens
              (checked), tokens/s = tokens / seconds. Also traced with prompt-lookup speculation, which the engine
              does not declare (it changes llama.cpp's numbers). Best of ``--repeats`` alternating runs.
* perplexity  tokens/s and peak RSS of a fresh process scoring the same file: ours
              (``Model.perplexity``, llama.cpp convention) vs llama-cpp-python's eval loop
              (``logits_all``, the llama.cpp perplexity rule, as in bench_perplexity.py).

The machine is shared: run it under the lock, nothing else heavy running.

    flock /tmp/logitscope-bench.lock .venv/bin/python benchmarks/bench_llamacpp.py --threads 2 --tokens 100 500
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_perplexity import LLAMACPP, corpus_text  # noqa: E402  (the contender's loop; text from this machine)

import logitscope  # noqa: E402
from logitscope.backends.llamacpp import load_llamacpp  # noqa: E402
from logitscope.core import mathops  # noqa: E402
from logitscope.core.processors import SamplerConfig  # noqa: E402
from logitscope.loading import bundled_gguf_path  # noqa: E402
from logitscope.sampling.generation import generate  # noqa: E402

PROMPT = "The history of the printing press begins"


def best(repeats: int, *fns) -> tuple[list[float], list[float]]:
    """Best wall time and best CPU time (this process) of each function over ``repeats`` rounds, run
    alternately. On a shared machine the CPU time is the steadier measure of the work itself."""
    wall, cpu = [math.inf] * len(fns), [math.inf] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[i] = min(wall[i], time.perf_counter() - start)
            cpu[i] = min(cpu[i], time.process_time() - start_cpu)
    return wall, cpu


# -- parity and the quantization gap ---------------------------------------------------------------
def parity(ours, llm) -> dict:
    got = logitscope.from_backend(ours).next_token("To be or not to", top_k=5)
    llm.reset()
    llm.eval(list(got.input_ids))
    ref = mathops.log_softmax(torch.from_numpy(llm.scores[len(got.input_ids) - 1].copy()).double()).topk(5)
    mine = torch.tensor([c.logprob for c in got.top], dtype=torch.float64)
    return {"same_ids": [c.token_id for c in got.top] == ref.indices.tolist(),
            "max_abs_diff": float((mine - ref.values).abs().max()),
            "top5": [(c.text, round(c.logprob, 6)) for c in got.top]}


def gap(ours, reference, text: str, chunk: int = 256) -> dict:
    """Per-position comparison of the two engines over one window of ``text`` (prefix token first)."""
    ids = ([reference.bos_token_id] + reference.tokenize(text).ids)[:ours.capabilities.context_length]
    hidden = reference.hidden_states(torch.tensor([ids]))[0]  # (T, H) float32
    top_gap, target_gap, kls, same = [], [], [], 0
    ours.context.clear()
    for first, rows in ours.context.feed(ids[:-1], 0):  # every row, n_batch per decode
        for a in range(0, len(rows), chunk):
            q = mathops.log_softmax(torch.from_numpy(rows[a:a + chunk]).double())  # (n, V) llama.cpp
            p = mathops.log_softmax(reference.project(hidden[first + a:first + a + len(q)]).double())  # (n, V)
            targets = torch.tensor(ids[first + a + 1:first + a + 1 + len(q)])
            top = p.topk(10, dim=-1).indices
            top_gap.append((p.gather(-1, top) - q.gather(-1, top)).abs().amax(-1))
            target_gap.append((p.gather(-1, targets[:, None]) - q.gather(-1, targets[:, None])).abs()[:, 0])
            kls.append(mathops.kl_divergence(p, q))
            same += int((p.argmax(-1) == q.argmax(-1)).sum())
    top_gap, target_gap, kls = torch.cat(top_gap), torch.cat(target_gap), torch.cat(kls)
    return {"positions": len(kls), "max_top10_abs_dlogp": float(top_gap.max()),
            "mean_target_abs_dlogp": float(target_gap.mean()), "max_target_abs_dlogp": float(target_gap.max()),
            "mean_kl": float(kls.mean()), "max_kl": float(kls.max()), "same_argmax": same / len(kls)}


def perplexities(models: dict, text: str) -> dict:
    out = {}
    for name, model in models.items():
        for convention in ("strided", "llamacpp"):
            r = model.perplexity(texts=[text], convention=convention, window=512)
            out[f"{name} {convention}"] = {"ppl": r.total.perplexity, "scored": r.total.num_scored}
    return out


# -- generation -------------------------------------------------------------------------------------
def generation(ours, llm, n: int, repeats: int) -> dict:
    """Greedy, up to n tokens or EOS in both (the same tokens: checked); rates are tokens / seconds."""
    greedy = SamplerConfig.greedy()
    drafting = copy.copy(ours)  # the same context, with speculation allowed (off by default: see the backend)
    drafting.capabilities = dataclasses.replace(ours.capabilities, verify_rows=True)
    prompt_ids = ours.tokenize(PROMPT).ids
    made = {}

    def traced(backend, key):
        def run():
            made[key] = list(generate(backend, PROMPT, n, greedy, top_alternatives=10).token_ids)
        return run

    def theirs_generate():
        tokens = []
        for token in llm.generate(prompt_ids, temp=0.0, reset=True):
            tokens.append(token)
            if len(tokens) == n or token == ours.eos_token_id:
                break
        made["llama"] = tokens

    def theirs_completion():
        llm.reset()
        r = llm.create_completion(PROMPT, max_tokens=n, temperature=0.0)
        made["completion"] = r["usage"]["completion_tokens"]

    times, cpu = best(repeats, theirs_generate, theirs_completion, traced(ours, "traced"), traced(drafting, "spec"))
    n = len(made["llama"])
    return {"tokens": n, "llama_generate": n / times[0], "llama_completion": made["completion"] / times[1],
            "traced": len(made["traced"]) / times[2], "traced_spec": len(made["spec"]) / times[3],
            "cpu_ratio": cpu[0] / cpu[2], "same_tokens": made["traced"] == made["llama"],
            "spec_same_tokens": made["spec"] == made["traced"]}


# -- perplexity throughput and memory, each in a fresh process -------------------------------------------
# llama-cpp-python's eval loop as bench_perplexity.py runs it (the llama.cpp perplexity rule), plus its peak
THEIRS = LLAMACPP + """
print(json.dumps({{"peak_mb": peak_mb()}}))
"""

OURS = """
import json, time
import logitscope
model = logitscope.load("bundled", engine="llamacpp", threads={threads})
text = open({path!r}).read()
t0 = time.perf_counter()
r = model.perplexity(texts=[text], convention="llamacpp", window={window})
dt = time.perf_counter() - t0
print(json.dumps({{"ppl": r.total.perplexity, "scored": r.total.num_scored, "seconds": dt,
                  "peak_mb": peak_mb()}}))
"""

# VmHWM, not ru_maxrss: a child's ru_maxrss keeps the parent's peak from before exec
PEAK = """
def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""


def child(script: str, threads: int) -> dict:
    """Run ``script`` in a fresh interpreter; the JSON lines it prints, merged."""
    proc = subprocess.run([sys.executable, "-c", PEAK + script], capture_output=True, text=True,
                          env=os.environ | {"OMP_NUM_THREADS": str(threads)})
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    out = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            out.update(json.loads(line))
    return out


def perplexity_speed(path: Path, threads: int, window: int, repeats: int) -> dict:
    fmt = dict(path=str(path), gguf=str(bundled_gguf_path()), threads=threads, window=window)
    runs = {"llama-cpp-python eval loop": [], "logitscope llamacpp engine": []}
    for _ in range(repeats):
        theirs = child(THEIRS.format(**fmt), threads)
        theirs.update(ppl=math.exp(theirs["nll"] / theirs["tokens_scored"]), scored=theirs["tokens_scored"])
        runs["llama-cpp-python eval loop"].append(theirs)
        runs["logitscope llamacpp engine"].append(child(OURS.format(**fmt), threads))
    return {name: min(r, key=lambda x: x["seconds"]) for name, r in runs.items()}


# -- a larger model: memory and speed of every kind of analysis, each context size in a fresh process ----------
SCALE = """
import inspect, json, time
import logitscope, textwrap
from logitscope.backends.llamacpp import load_llamacpp
from logitscope.core.processors import SamplerConfig
from logitscope.loading import resolve_model_path
from logitscope.sampling.generation import generate
import torch
torch.set_num_threads({threads})
def rss():
    return {{k: int(v.split()[0]) / 1024 for k, v in (l.split(":", 1) for l in open("/proc/self/status"))
            if k in ("VmRSS", "VmHWM")}}
out = {{"before_load": rss()}}
t0 = time.perf_counter()
backend = load_llamacpp(resolve_model_path({name!r}), threads={threads}, n_ctx={n_ctx})
out["load_s"], out["after_load"] = time.perf_counter() - t0, rss()
model = logitscope.from_backend(backend)
import json as j, collections, argparse, pathlib, textwrap
code = "\\n\\n".join(inspect.getsource(m) for m in (j.decoder, j.encoder, collections, argparse, pathlib, textwrap))
ids = backend.tokenize(code).ids[:{ppl_tokens}]
code = backend.detokenize(ids)
t0 = time.perf_counter(); r = model.score(backend.detokenize(ids[:500]), bos=True); out["score_500_s"] = time.perf_counter() - t0
t0 = time.perf_counter(); p = model.perplexity(texts=[code], convention="llamacpp", window=512)
out["ppl_s"], out["ppl"], out["ppl_scored"] = time.perf_counter() - t0, p.total.perplexity, p.total.num_scored
t0 = time.perf_counter(); g = generate(backend, "def quicksort(arr):", 64, SamplerConfig.greedy(), top_alternatives=10)
out["trace_s"], out["trace_tokens"] = time.perf_counter() - t0, len(g.token_ids)
out["trace_text"] = g.text[:120]
nt = model.next_token("def fibonacci(n):", top_k=5)
out["next"] = [(c.text, round(c.logprob, 3)) for c in nt.top]
out["peak"] = rss()
out["dtype"], out["n_ctx"], out["n_batch"], out["params"] = backend.dtype, backend.context.n_ctx, backend.context.n_batch, int(backend.context.lib.llama_model_n_params(backend.context.model))
print(json.dumps(out))
"""

SCALE_THEIRS = """
import json, time
from llama_cpp import Llama
from logitscope.loading import resolve_model_path
llm = Llama(str(resolve_model_path({name!r})), n_ctx={n_ctx}, n_threads={threads}, n_threads_batch={threads}, verbose=False)
tokens = llm.tokenize(b"def quicksort(arr):", add_bos=False)
t0 = time.perf_counter(); made = []
for t in llm.generate(tokens, temp=0.0, reset=True):
    made.append(t)
    if len(made) == 64 or t == llm.token_eos():
        break
print(json.dumps({{"generate_s": time.perf_counter() - t0, "tokens": len(made), "peak_mb": peak_mb()}}))
"""


def scale(name: str, threads: int, contexts: list[int], ppl_tokens: int) -> str:
    import os as _os
    from logitscope.loading import resolve_model_path

    size = _os.path.getsize(resolve_model_path(name)) / 2**20
    lines = [f"{name}: GGUF {size:.0f} MB, {threads} thread(s).", "",
             "| n_ctx | load s | RSS after load (MB) | score 500 tok (tok/s) | perplexity tok/s (scored) | "
             "traced greedy tok/s | llama-cpp-python generate tok/s | peak RSS (MB) | peak / GGUF | "
             "llama-cpp-python peak (MB) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for n_ctx in contexts:
        fmt = dict(name=name, threads=threads, n_ctx=n_ctx, ppl_tokens=ppl_tokens)
        r = child(SCALE.format(**fmt), threads)
        theirs = child(SCALE_THEIRS.format(**fmt), threads)
        lines.append(f"| {r['n_ctx']} | {r['load_s']:.1f} | {r['after_load']['VmRSS']:.0f} | {500 / r['score_500_s']:.0f} | "
                     f"{r['ppl_scored'] / r['ppl_s']:.0f} | {r['trace_tokens'] / r['trace_s']:.1f} | "
                     f"{theirs['tokens'] / theirs['generate_s']:.1f} | {r['peak']['VmHWM']:.0f} | "
                     f"{r['peak']['VmHWM'] / size:.2f}× | {theirs['peak_mb']:.0f} |")
        print(lines[-1], flush=True)
    lines += ["", f"{r['params'] / 1e9:.2f}B parameters, {r['dtype']}, n_batch {r['n_batch']}; perplexity "
              f"{r['ppl']:.3f} over {r['ppl_scored']} scored tokens of Python stdlib source (llama.cpp convention, "
              f"window 512); next token after 'def fibonacci(n):' {r['next']}; greedy trace: {r['trace_text']!r}", ""]
    return "\n".join(lines)


# -- report ------------------------------------------------------------------------------------------
def report(args, facts: dict) -> str:
    lines = [f"Machine: {facts['cpu']}; llama-cpp-python {facts['version']} ({facts['build']}); "
             f"load average at start {facts['load']:.1f}.", "",
             "    " + " ".join(["flock /tmp/logitscope-bench.lock .venv/bin/python benchmarks/bench_llamacpp.py",
                                *sys.argv[1:]]), ""]
    if "parity" in facts:
        lines += accuracy_lines(facts)
    return "\n".join(lines + speed_lines(args, facts))


def accuracy_lines(facts: dict) -> list[str]:
    p, g = facts["parity"], facts["gap"]
    lines = [f"Parity, next token after 'To be or not to': same top-5 ids {p['same_ids']}, "
             f"max |Δ log p| {p['max_abs_diff']:.2e} vs llama-cpp-python's own logits.", "",
             f"Gap to the float32 reference over {g['positions']} positions: max |Δ log p| over the reference's top 10 "
             f"{g['max_top10_abs_dlogp']:.3f}; target |Δ log p| mean {g['mean_target_abs_dlogp']:.4f}, "
             f"max {g['max_target_abs_dlogp']:.3f}; KL(fp32 ‖ llama.cpp) mean {g['mean_kl']:.5f}, "
             f"max {g['max_kl']:.4f}; same argmax {100 * g['same_argmax']:.1f}%.", "",
             "| engine | convention (window 512) | perplexity | scored |", "|---|---|---|---|"]
    for name, r in facts["ppl"].items():
        engine, convention = name.rsplit(" ", 1)
        lines.append(f"| {engine} | {convention} | {r['ppl']:.4f} | {r['scored']} |")
    return lines + [""]


def speed_lines(args, facts: dict) -> list[str]:
    lines = []
    for threads, runs in facts["generation"].items():
        lines += [f"Generation, {threads} thread(s), greedy, prompt {PROMPT!r}:", "",
                  "| new tokens | llama-cpp-python generate (tok/s) | create_completion | logitscope traced | traced / generate "
                  "| same, in CPU time | same tokens as generate | traced with speculation (not the default) "
                  "| its tokens unchanged |", "|---|---|---|---|---|---|---|---|---|"]
        for r in runs:
            lines.append(f"| {r['tokens']} | {r['llama_generate']:.1f} | {r['llama_completion']:.1f} | "
                         f"{r['traced']:.1f} | {r['traced'] / r['llama_generate']:.2f}× | {r['cpu_ratio']:.2f}× | "
                         f"{r['same_tokens']} | "
                         f"{r['traced_spec']:.1f} | {r['spec_same_tokens']} |")
        lines += [""]
    for threads, runs in facts["perplexity"].items():
        lines += [f"Perplexity of {facts['ppl_tokens']} tokens, llama.cpp convention, window {args.window}, "
                  f"{threads} thread(s), fresh process each, best of {args.repeats}:", "",
                  "| run | perplexity | scored | tok/s (scored) | peak RSS (MB) |", "|---|---|---|---|---|"]
        for name, r in runs.items():
            lines.append(f"| {name} | {r['ppl']:.4f} | {r['scored']} | {r['scored'] / r['seconds']:.0f} | "
                         f"{r['peak_mb']:.0f} |")
        lines += [""]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[2])
    ap.add_argument("--tokens", type=int, nargs="+", default=[100, 500])
    ap.add_argument("--ppl-tokens", type=int, default=8192)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--parts", nargs="+", default=["accuracy", "generation", "perplexity"],
                    choices=["accuracy", "generation", "perplexity"])
    ap.add_argument("--out", default="/tmp/bench_llamacpp.md")
    ap.add_argument("--scale", help="a named or local GGUF model: memory and speed per --n-ctx, nothing else")
    ap.add_argument("--n-ctx", type=int, nargs="+", default=[2048, 8192])
    args = ap.parse_args()
    if args.scale:
        report_text = scale(args.scale, args.threads[0], args.n_ctx, args.ppl_tokens)
    else:
        report_text = report(args, measure(args))
    print(report_text)
    Path(args.out).write_text(report_text)


def measure(args) -> dict:
    import llama_cpp

    gguf = str(bundled_gguf_path())
    facts = {"cpu": _cpu(), "version": llama_cpp.__version__, "load": os.getloadavg()[0],
             "build": "AVX-512" if b"AVX512 = 1" in llama_cpp.llama_print_system_info() else "AVX2",
             "generation": {}, "perplexity": {}}
    ours = load_llamacpp(gguf, threads=args.threads[0])
    ids = ours.tokenize(corpus_text()).ids[:args.ppl_tokens]
    text = ours.detokenize(ids)
    path = Path("/tmp/bench_llamacpp.txt")
    path.write_text(text)
    facts["ppl_tokens"] = len(ids)
    if "accuracy" in args.parts:
        llm = llama_cpp.Llama(gguf, n_ctx=4096, n_threads=args.threads[0], n_threads_batch=args.threads[0],
                              logits_all=True, verbose=False)
        facts["parity"] = parity(ours, llm)
        reference = logitscope.load("bundled", threads=args.threads[0])
        with torch.inference_mode():
            facts["gap"] = gap(ours, reference.backend, ours.detokenize(ids[:3000]))
        facts["ppl"] = perplexities({"torch float32": reference, "llamacpp Q4_1": logitscope.from_backend(ours)}, text)
    for threads in args.threads:
        torch.set_num_threads(threads)
        if "generation" in args.parts:
            ours = load_llamacpp(gguf, threads=threads)
            llm = llama_cpp.Llama(gguf, n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
            facts["generation"][threads] = [generation(ours, llm, n, args.repeats) for n in args.tokens]
        if "perplexity" in args.parts:
            facts["perplexity"][threads] = perplexity_speed(path, threads, args.window, args.repeats)
    return facts


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip() + f", {os.cpu_count()} cores"
    return "unknown CPU"


if __name__ == "__main__":
    main()
