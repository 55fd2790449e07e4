"""Measure the float32 noise behind tests/tolerances.py on the bundled model (docs/errors.md#tolerances).

    python benchmarks/noise_budget.py --out default.json
    ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 python benchmarks/noise_budget.py --out avx2.json
    python benchmarks/noise_budget.py --compare default.json avx2.json

Per kind of comparison, the largest |difference| of a per-token log-prob (nats) between two
correct computations of the same number: the same text alone and in a padded batch, the
blocked scoring head and the blocked NLL head, the fast forward and transformers' own, the
KV-cache decode and a full forward; ``--compare`` adds the same numbers under two CPU kernel sets.
"""

from __future__ import annotations

import argparse
import json
import os

import torch

TEXTS = ["The capital of France is Paris.",
         "Water boils at 100 degrees Celsius at sea level, while ice melts at 0.",
         "Once upon a time there was a little cat who lived in a big house by the sea and liked fish.",
         "Hello world", "To be or not to be, that is the question.",
         "def add(a, b):\n    return a + b\n\nprint(add(2, 3))  # 5",
         "The quick brown fox jumps over the lazy dog. " * 12]


def worst(pairs) -> float:
    return max(float((a.double() - b.double()).abs().max()) for a, b in pairs)


def measure(model) -> dict:
    b = model.backend
    seqs = [b.tokenize(t).ids for t in TEXTS]
    starts = [1] * len(seqs)
    alone = [b.score_positions([s], [1])[0].logprob for s in seqs]
    batched = [p.logprob for p in b.score_positions(seqs, starts)]
    nll_head = b.token_logprobs(seqs, starts)
    ref = [torch.log_softmax(b.model(torch.tensor([s])).logits[0].double(), -1)[:-1]  # transformers' forward
           .gather(-1, torch.tensor(s[1:])[:, None])[:, 0] for s in seqs]
    state = b.prefill(seqs[2][:5])
    decoded = []
    for t in seqs[2][5:]:
        decoded.append(torch.log_softmax(state.logits.double(), -1)[t])
        state = b.extend(state, [t])
    return {"isa": torch.backends.cpu.get_cpu_capability(),
            "batch": worst(zip(alone, batched)),
            "head": worst(zip(batched, nll_head)),
            "implementation": worst(zip(batched, ref)),
            "kv_cache": worst([(torch.stack(decoded), alone[2][4:])]),
            "sum": max(abs(float(a.sum() - c.sum())) for a, c in zip(alone, nll_head)),
            "values": [x.tolist() for x in alone]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out")
    parser.add_argument("--compare", nargs=2)
    args = parser.parse_args()
    if args.compare:
        a, c = (json.load(open(p)) for p in args.compare)
        isa = max(abs(x - y) for u, v in zip(a["values"], c["values"]) for x, y in zip(u, v))
        return print(f"{a['isa']} vs {c['isa']}: max |d| per-token log-prob {isa:.2e}")
    import logitscope

    torch.set_num_threads(int(os.environ.get("LOGITSCOPE_THREADS", "1")))
    with torch.inference_mode():
        found = measure(logitscope.load("bundled"))
    for kind in ("batch", "head", "implementation", "kv_cache", "sum"):
        print(f"{found['isa']:>7} {kind:<15} max |d| {found[kind]:.2e}")
    if args.out:
        json.dump(found, open(args.out, "w"))


if __name__ == "__main__":
    main()
