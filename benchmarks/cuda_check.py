"""One-off speed reading for the CUDA check (docs/devices.md): nll_sums over 16 windows of
512 tokens on a random SmolLM2-135M-shaped model, CPU (fast path, all threads) vs CUDA."""

import sys
import time

import torch

sys.path.insert(0, "tests")
import logitscope  # noqa: E402
from test_cuda import smollm2_shaped  # noqa: E402
from tiny_models import tiny_tokenizer  # noqa: E402


def rate(model) -> float:
    gen = torch.Generator().manual_seed(0)
    seqs = torch.randint(2, 49152, (16, 512), generator=gen).tolist()
    model.backend.nll_sums(seqs[:2], [1, 1])
    best = float("inf")
    for _ in range(3):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        model.backend.nll_sums(seqs, [1] * len(seqs))
        best = min(best, time.perf_counter() - start)
    return 16 * 511 / best


module = smollm2_shaped()
cpu = logitscope.from_transformers(module, tiny_tokenizer())
print(f"cpu ({torch.get_num_threads()} threads): {rate(cpu):,.0f} tokens/s")
gpu = logitscope.from_transformers(module.to("cuda"), tiny_tokenizer())
print(f"{torch.cuda.get_device_name()}: {rate(gpu):,.0f} tokens/s")
