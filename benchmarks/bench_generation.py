"""Generation speed on the bundled model, side by side with llama-cpp-python and transformers.

For each thread count and each length N, one run of every engine on the same prompt,
greedy and top-p, EOS suppressed so every run produces exactly N tokens:

* logitscope traced      ``Model.generate`` as users call it (static KV cache, prompt-lookup
                         speculation verified by the float32 model, full trace per step)
* logitscope traced, no speculation   the same with ``speculative=False``
* logitscope untraced    a bare prefill/extend loop on the backend (tokens only)
* transformers generate  ``model.generate`` on the same float32 model
* llama-cpp-python       the bundled GGUF (Q4_1) through llama.cpp, in /work/venv-contenders

Plus a torch-profiler breakdown of one decode step through transformers' cache (before)
and through ``fast_decode`` (after), and the speculation acceptance rate of each traced run.
Ratios are comparable within one run only (the machine is shared): run it under
``flock /tmp/logitscope-bench.lock``.

    flock /tmp/logitscope-bench.lock .venv/bin/python benchmarks/bench_generation.py --threads 1 2 --tokens 100 500
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

import logitscope
from logitscope.core.processors import Sampler, SamplerConfig
from logitscope.loading import bundled_gguf_path_or_none
from logitscope.sampling.session import DecodeSession
from logitscope.sampling.generation import generate

PROMPT = "The history of the printing press begins"
CONTENDERS = Path("/work/venv-contenders/bin/python")
TOP_P = dict(temperature=0.8, top_p=0.95)

LLAMACPP = """
import json, time
from llama_cpp import Llama
llm = Llama(model_path={gguf!r}, n_ctx=2048, n_threads={threads}, n_threads_batch={threads}, verbose=False)
out = {{}}
for name, kw in (("greedy", dict(temperature=0.0)), ("top-p", dict(temperature=0.8, top_p=0.95, top_k=0, min_p=0.0))):
    llm.reset()
    t0 = time.perf_counter()
    r = llm.create_completion({prompt!r}, max_tokens={n}, logit_bias={{llm.token_eos(): -1e9}}, seed=0, **kw)
    out[name] = [r["usage"]["completion_tokens"], time.perf_counter() - t0]
print(json.dumps(out))
"""


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def configs(model) -> dict[str, SamplerConfig]:
    ban = ((model.backend.eos_token_id, float("-inf")),)
    return {"greedy": SamplerConfig(temperature=0.0, bias=ban), "top-p": SamplerConfig(**TOP_P, bias=ban)}


def untraced(model, n: int, cfg: SamplerConfig) -> list[int]:
    """Tokens only: prefill, then one extend per token, choosing with the same sampler chain."""
    backend = model.backend
    ids = backend.tokenize(PROMPT).ids
    sampler = Sampler(cfg, 0)
    with torch.inference_mode():
        state = backend.prefill(ids)
        for _ in range(n):
            token = int(sampler.choose(sampler.process(torch.tensor([state.ids]), state.logits[None]))[0, 0])
            state = backend.extend(state, [token])
    return list(state.ids[len(ids):])


def hf_generate(model, n: int, cfg: SamplerConfig):
    backend = model.backend
    ids = torch.tensor([backend.tokenize(PROMPT).ids])
    sampling = dict(do_sample=False) if cfg.is_greedy else dict(do_sample=True, top_k=0, **TOP_P)
    with torch.inference_mode():
        return backend.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                                      pad_token_id=backend.eos_token_id, **sampling)


class Accepted:
    """Counts drafted and accepted tokens by wrapping ``DecodeSession._verify``."""

    def __init__(self):
        self.drafted = self.accepted = 0
        self._inner = DecodeSession._verify

    def __call__(self, session, draft):
        out = self._inner(session, draft)
        self.drafted += len(draft)
        self.accepted += sum(e.token == d for e, d in zip(out, draft))
        return out


def logitscope_rows(model, n: int) -> dict:
    out = {}
    for name, cfg in configs(model).items():
        counter = Accepted()
        DecodeSession._verify = lambda session, draft: counter(session, draft)
        try:
            t, result = timed(lambda: generate(model.backend, PROMPT, n, cfg, top_alternatives=10))
        finally:
            DecodeSession._verify = counter._inner
        assert len(result.token_ids) == n
        out[f"traced {name}"] = {"s": t, "drafted": counter.drafted, "accepted": counter.accepted}
        out[f"traced, no speculation {name}"] = {"s": timed(lambda: generate(
            model.backend, PROMPT, n, cfg, top_alternatives=10, speculative=False))[0]}
        out[f"untraced {name}"] = {"s": timed(lambda: untraced(model, n, cfg))[0]}
        out[f"transformers {name}"] = {"s": timed(lambda: hf_generate(model, n, cfg))[0]}
    return out


def llamacpp_rows(n: int, threads: int) -> dict:
    gguf = bundled_gguf_path_or_none()
    if gguf is None or not CONTENDERS.exists():
        return {}
    script = LLAMACPP.format(gguf=str(gguf), threads=threads, prompt=PROMPT, n=n)
    proc = subprocess.run([str(CONTENDERS), "-c", script], capture_output=True, text=True,
                          env=os.environ | {"OMP_NUM_THREADS": str(threads)})
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
        return {}
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    return {f"llama-cpp-python {name}": {"s": s, "tokens": tokens} for name, (tokens, s) in got.items()}


def profile_step(model, fast: bool, steps: int = 20) -> list[str]:
    """Torch-profiler table of ``steps`` greedy decode steps (extend + argmax), fast path on or off."""
    from torch.profiler import ProfilerActivity, profile

    backend = model.backend
    saved = backend._static_decoder
    backend._static_decoder = saved if fast else None
    try:
        with torch.inference_mode():
            state = backend.prefill(backend.tokenize(PROMPT).ids)
            for _ in range(3):
                state = backend.extend(state, [int(state.logits.argmax())])
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                start = time.perf_counter()
                for _ in range(steps):
                    state = backend.extend(state, [int(state.logits.argmax())])
                per_step = (time.perf_counter() - start) / steps
    finally:
        backend._static_decoder = saved
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)
    rows = [f"| {e.key} | {e.count // steps} | {e.self_cpu_time_total / steps / 1000:.2f} | "
            f"{100 * e.self_cpu_time_total / total:.1f}% |" for e in events[:8]]
    return [f"{per_step * 1000:.1f} ms per step ({'fast_decode' if fast else 'transformers cache'}, profiled)", "",
            "| op | calls per step | self ms per step | share |", "|---|---|---|---|", *rows]


def table(results: dict, n: int, threads: int) -> list[str]:
    ref = results.get("llama-cpp-python greedy", {}).get("s")
    lines = [f"### {n} new tokens, {threads} thread{'s' if threads > 1 else ''}", "",
             "| engine | tokens/s | vs llama-cpp-python (greedy) | accepted drafts |", "|---|---|---|---|"]
    for name, r in results.items():
        rate = n / r["s"]
        ratio = f"{ref / r['s']:.2f}x" if ref else "n/a"
        accepted = f"{r['accepted']}/{r['drafted']}" if "drafted" in r else ""
        lines.append(f"| {name} | {rate:.1f} | {ratio} | {accepted} |")
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--tokens", type=int, nargs="+", default=[100, 500])
    ap.add_argument("--out", default=str(Path(__file__).with_name("generation-results.md")))
    args = ap.parse_args()
    model = logitscope.load(threads=args.threads[0])
    generate(model.backend, PROMPT, 5, configs(model)["greedy"])  # warm-up
    sections = ["## Profile of one decode step (1 thread)", ""]
    torch.set_num_threads(1)
    for fast in (False, True):
        sections += profile_step(model, fast) + [""]
    for threads in args.threads:
        torch.set_num_threads(threads)
        for n in args.tokens:
            load = os.getloadavg()[0]
            results = {**llamacpp_rows(n, threads), **logitscope_rows(model, n)}
            sections += table(results, n, threads) + [f"load average at start {load:.1f}", ""]
            print("\n".join(sections[-12:]), flush=True)
            Path(args.out).write_text("\n".join(sections))
    Path(args.out).write_text("\n".join(sections))


if __name__ == "__main__":
    main()
