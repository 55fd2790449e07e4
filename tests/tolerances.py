"""The noise budget: how far two correct computations of the same number may differ, per kind
of comparison. Every numeric test compares through one of these (docs/errors.md#tolerances).

Float32 results depend on the order of additions, and the order depends on the batch shape
(a GEMM of 2 rows and one of 20 take different kernel paths), on the padding, on how the LM
head is blocked, on the forward's implementation and on the CPU's kernel set (AVX2 or
AVX-512/AMX: ``ATEN_CPU_CAPABILITY``). Measured on the bundled SmolLM2-135M with
``benchmarks/noise_budget.py``, the largest difference of a per-token log-prob is 3.1e-5 nats
(AVX-512 vs AVX2 on one text; alone vs batched 1.9e-5; scoring head vs NLL head 2.1e-5; fast
forward vs transformers' 1.4e-5; KV-cache decode vs a full forward 1.1e-5). A real bug
(an off-by-one target, a missing BOS, a wrong window) moves a log-prob by 1e-2 or more.

    assert got == FLOAT32_TOKEN.approx(want)
    FLOAT32_VALUES.assert_close(fast_logits, reference_logits)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch


@dataclass(frozen=True)
class Budget:
    """An absolute and a relative tolerance, and the comparison they are for."""

    abs: float
    rel: float
    kind: str

    def approx(self, expected):
        """``pytest.approx`` within this budget (numbers, or sequences of them)."""
        return pytest.approx(expected, abs=self.abs, rel=self.rel)

    def assert_close(self, actual: torch.Tensor, expected: torch.Tensor) -> None:
        """``torch.testing.assert_close`` within this budget (dtypes may differ: float32 vs float64)."""
        torch.testing.assert_close(actual, expected, atol=self.abs, rtol=self.rel, check_dtype=False)

    def allclose(self, actual: torch.Tensor, expected: torch.Tensor) -> bool:
        return torch.allclose(actual.double(), expected.double(), atol=self.abs, rtol=self.rel)


FLOAT64 = Budget(1e-9, 0.0, "float64 arithmetic in another order: the toy models, the sampler chain, the "
                            "calibration and chi-square maths, values through JSON and the wire")
FLOAT32_ROUNDING = Budget(1e-6, 1e-6, "a float64 value that went through float32 once: a server that sends "
                                      "float32 probabilities (llama.cpp), a float32 tensor of exact values")
FLOAT32_TOKEN = Budget(1e-4, 1e-5, "a per-token log-prob, entropy or top-k log-prob of a float32 model, computed "
                                  "by two paths: alone or batched (padding), scoring or NLL head, fast or "
                                  "transformers forward, KV cache or full pass, server or in-process, AVX2 or "
                                  "AVX-512 kernels (3x the largest seen, 3.1e-5)")
FLOAT32_VALUES = Budget(1e-5, 1e-5, "raw values of order 1 by two float32 computations: logits of the tiny "
                                    "random test models by two forwards (fast vs transformers, cached vs "
                                    "full), quantized weights")
FLOAT32_HIDDEN = Budget(2e-4, 1e-4, "final hidden states of a float32 forward (|h| up to ~100) by two paths")
FLOAT32_RELATIVE = Budget(0.0, 1e-4, "a perplexity or a mean of float32 log-probs by two paths: exp(mean NLL) "
                                     "moves by the per-token budget, relatively")
CPU_VS_CUDA = Budget(1e-4, 1e-5, "the same float32 model on the CPU and on a CUDA device (~1e-6 relative on "
                                 "logits of size ~10)")


def float32_sum(n: int) -> Budget:
    """A sum of ``n`` float32 per-token log-probs by two paths: independent roundings grow like sqrt(n)."""
    return Budget(FLOAT32_TOKEN.abs * math.sqrt(max(n, 1)), 0.0, f"a sum of {n} float32 log-probs")


def printed(decimals: int) -> Budget:
    """A value compared with its printed form (a notebook's output, a golden constant) to ``decimals`` decimals."""
    return Budget(10.0 ** -decimals, 0.0, f"a value printed to {decimals} decimals")
