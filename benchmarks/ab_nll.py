"""A/B helper: tokens/s of ``backend.nll_sums`` on the bundled model, for comparing two commits.

Run it once per tree, alternating, with that tree's sources on PYTHONPATH (benchmarks/perplexity.md):

    python benchmarks/ab_nll.py THREADS [TEXT_FILE]

16 windows of 512 tokens of TEXT_FILE (default: this repository's README.md, repeated),
best of 3 after a warm-up; prints tokens/s. Uses only API that both old and new layouts have
(``logitscope.load``, ``backend.tokenize(...).ids``, ``backend.nll_sums``).
"""

import sys
import time
from pathlib import Path

import torch

import logitscope

WINDOW, WINDOWS = 512, 16

torch.set_num_threads(int(sys.argv[1]))
text = Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).parents[1] / "README.md").read_text()
backend = logitscope.load().backend
ids = backend.tokenize(text * 4).ids
seqs = [ids[i:i + WINDOW] for i in range(0, WINDOW * WINDOWS, WINDOW)]
backend.nll_sums(seqs[:2], [1, 1])
best = float("inf")
for _ in range(3):
    start = time.perf_counter()
    backend.nll_sums(seqs, [1] * len(seqs))
    best = min(best, time.perf_counter() - start)
print(f"{sum(map(len, seqs)) / best:.0f}")
