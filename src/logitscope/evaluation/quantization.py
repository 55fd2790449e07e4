"""What does a cheaper model lose? Weight quantization measured against the full model.

Variants, each run on the same token ids as the float32 base:

* simulated uniform quantization of every nn.Linear / nn.Embedding / GPT-2 Conv1D weight
  (or, with ``which="all"``, of every parameter, as seed 003 does) to b bits
  (1..32), rounded in float64 and stored back as float32. ``affine`` (default) is
  the min-max grid: 2^b - 1 equal steps between the min and the max; ``symmetric`` uses
  a grid symmetric around 0, ±(2^(b-1) - 1) steps of max|w| / (2^(b-1) - 1) (at
  1 bit: ±max|w|). ``per-tensor`` takes min/max over the whole matrix,
  ``per-channel`` over each output row (what practical int4/int8 formats do).
  The weights are replaced by rounded copies and the originals put back afterwards: one extra
  copy at a time, the originals never written.
* ``int8``: a real quantized execution path, PyTorch's dynamic int8 nn.Linear
  (weights int8 per tensor, activations quantized on the fly), on a deep copy; GPT-2's
  Conv1D layers become the equivalent nn.Linear first, so they are quantized too.

Statistics per variant follow llama.cpp's ``perplexity --kl-divergence``:
perplexity, KL(base || variant) per token (mean, median, 99th percentile, max),
"same top" (argmax agrees), Δp = p_variant(correct) - p_base(correct) (mean, RMS).

Compact base. The base distribution of every token is kept as its top-k ids and
log-probs (k x 8 bytes per token) plus the exact log-prob of the correct token.
KL is computed over k + 1 outcomes: the k base-top tokens and "everything else"
(the remaining mass 1 - Σ top-k). This is a true KL of coarse-grained
distributions, so it is >= 0, <= the full-vocabulary KL, and equal to it when the
remaining mass is ~0 (the default k = 256 is tested against the exact value).
"""

from __future__ import annotations

import contextlib
import copy
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..backends.base import require
from ..core import mathops
from ..core.boundary import encode, plan_windows
from ..errors import InputError, check_range
from ..progress import progress as progress_bar
from ..results import ResultMixin

SCHEMES = ("per-tensor", "per-channel")
ROWS_PER_STEP = 4096  # weight rows rounded in float64 at once (bounds the temporary memory)
PROJECT_ROWS = 256  # positions projected to the full vocabulary at once


# -- pure weight math -------------------------------------------------------------------------
def check_bits(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise InputError(f"bits={bits!r} is not an integer", hint="bits must be an integer in [1, 32]")
    return check_range("bits", bits, 1, 32)


def check_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise InputError(f"unknown scheme {scheme!r}", hint=f"use one of {', '.join(SCHEMES)}")
    return scheme


def quantize_tensor(w: torch.Tensor, bits: int, scheme: str = "per-tensor", symmetric: bool = False) -> torch.Tensor:
    """Round ``w`` to a uniform ``bits``-bit grid; returns a new tensor of w's dtype and shape."""
    check_bits(bits)
    check_scheme(scheme)
    flat = w.detach().reshape(w.shape[0], -1) if w.dim() > 1 else w.detach().reshape(1, -1)  # (R, C)
    if scheme == "per-tensor":
        lo, hi = flat.min().reshape(1, 1), flat.max().reshape(1, 1)  # (1, 1)
    else:
        lo, hi = flat.amin(dim=1, keepdim=True), flat.amax(dim=1, keepdim=True)  # (R, 1): one grid per row
    out = torch.empty_like(flat)
    for i in range(0, flat.shape[0], ROWS_PER_STEP):
        rows = slice(i, i + ROWS_PER_STEP)
        lo_i, hi_i = (lo, hi) if scheme == "per-tensor" else (lo[rows], hi[rows])
        out[rows] = _round_rows(flat[rows].double(), lo_i.double(), hi_i.double(), bits, symmetric).to(w.dtype)
    return out.reshape(w.shape)


def _round_rows(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, bits: int, symmetric: bool) -> torch.Tensor:
    """float64 rows (r, C) with their grid bounds (r|1, 1) -> the nearest grid values."""
    if symmetric:
        amax = torch.maximum(lo.abs(), hi.abs())  # (r, 1)
        if bits == 1:
            return torch.where(x >= 0, amax, -amax)  # two levels: ±max|w|
        qmax = 2 ** (bits - 1) - 1
        scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))  # all-zero row: any scale works
        return (x / scale).round().clamp(-qmax, qmax) * scale
    levels = 2 ** bits - 1
    scale = torch.where(hi > lo, (hi - lo) / levels, torch.ones_like(hi))  # constant row: stays itself
    return ((x - lo) / scale).round().clamp(0, levels) * scale + lo


WHICH = ("matrices", "all")


def _is_conv1d(module: nn.Module) -> bool:
    """GPT-2's Conv1D (transformers.pytorch_utils): a linear layer storing its weight as (in, out)."""
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf")


def quantizable_weights(model: nn.Module, which: str = "matrices") -> list[nn.Parameter]:
    """The parameters a sweep rounds, each once (a tied LM head is the embedding).

    ``matrices``: the weight of every nn.Linear, nn.Embedding and GPT-2 Conv1D.
    ``all``: every parameter, biases and norm scales included (seed 003's sweep).
    """
    if which not in WHICH:
        raise InputError(f"unknown parameter selection {which!r}", hint=f"use one of {', '.join(WHICH)}")
    if which == "all":
        return _unique_params(model)
    seen, out = set(), []
    for module in model.modules():
        w = getattr(module, "weight", None)
        matrix = isinstance(module, (nn.Linear, nn.Embedding)) or _is_conv1d(module)
        if matrix and isinstance(w, nn.Parameter) and id(w) not in seen:
            seen.add(id(w))
            out.append(w)
    return out


def _input_major_ids(model: nn.Module) -> set[int]:
    """ids of weights stored (in, out), whose output channels are columns (Conv1D)."""
    return {id(m.weight) for m in model.modules() if _is_conv1d(m)}


def _quantize_param(w: torch.Tensor, transposed: bool, bits: int, scheme: str, symmetric: bool) -> torch.Tensor:
    """Round one parameter; a (in, out) weight is rounded as (out, in) so per-channel means per output."""
    if transposed:
        return quantize_tensor(w.t(), bits, scheme, symmetric).t()
    return quantize_tensor(w, bits, scheme, symmetric)


@contextlib.contextmanager
def simulated_quantization(model: nn.Module, bits: int, scheme: str = "per-tensor", symmetric: bool = False,
                           which: str = "matrices"):
    """The weights replaced by rounded copies for the duration of the block, then the originals put back.

    The originals are never written: a checkpoint the light start memory-maps stays shared with
    the page cache, where writing into it would copy every page it touched (copy-on-write) on top
    of the one extra copy a sweep needs (benchmarks/quantization.md)."""
    weights = quantizable_weights(model, which)
    transposed = _input_major_ids(model)
    originals = [w.data for w in weights]
    try:
        with torch.no_grad():
            for w in weights:
                w.data = _quantize_param(w.data, id(w) in transposed, bits, scheme, symmetric).contiguous()
        yield model
    finally:
        for w, original in zip(weights, originals):
            w.data = original


# -- model sizes ---------------------------------------------------------------------------
def _unique_params(model: nn.Module) -> list[torch.Tensor]:
    return list({id(p): p for p in model.parameters()}.values())


def model_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters as stored (tied weights counted once)."""
    return sum(p.numel() * p.element_size() for p in _unique_params(model))


def simulated_bytes(model: nn.Module, bits: int, scheme: str = "per-tensor", symmetric: bool = False,
                    which: str = "matrices") -> int:
    """Bytes if the quantizable weights (``which``) were stored at ``bits`` bits, plus float32
    scale (and, for affine, offset) per tensor or per row; other parameters as stored."""
    qw = quantizable_weights(model, which)
    ids, transposed = {id(w) for w in qw}, _input_major_ids(model)
    per_group = 4 if symmetric else 8
    groups = sum(1 if scheme == "per-tensor" or w.dim() < 2 else w.shape[1 if id(w) in transposed else 0] for w in qw)
    packed = sum((w.numel() * bits + 7) // 8 for w in qw)
    rest = sum(p.numel() * p.element_size() for p in _unique_params(model) if id(p) not in ids)
    return packed + groups * per_group + rest


def dynamic_int8_bytes(qmodel: nn.Module) -> int:
    """Bytes of a quantize_dynamic model: int8 weights, 8 bytes of scale + zero point per
    tensor (or per row), float bias, and every other parameter as stored."""
    total = model_bytes(qmodel)
    for m in qmodel.modules():
        if type(m).__module__.startswith("torch.ao.nn.quantized.dynamic"):
            w, b = m.weight(), m.bias()
            groups = w.shape[0] if w.qscheme() in (torch.per_channel_symmetric, torch.per_channel_affine) else 1
            total += w.numel() + 8 * groups + (0 if b is None else b.numel() * b.element_size())
    return total


def int8_dynamic_backend(backend, scheme: str = "per-tensor"):
    """A copy of an HF backend whose nn.Linear layers (tied LM head included) and GPT-2
    Conv1D layers run as PyTorch dynamic int8 kernels: symmetric int8 weights per tensor
    or per output row. The backend's own model is left unchanged."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao deprecation notices
        from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

        qconfig = per_channel_dynamic_qconfig if check_scheme(scheme) == "per-channel" else default_dynamic_qconfig
        qmodel = _conv1d_as_linear(_cpu_copy(backend.torch_module))
        qmodel = quantize_dynamic(qmodel, {nn.Linear: qconfig}, dtype=torch.qint8, inplace=True)
    return backend.with_module(qmodel)


def _cpu_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` on the CPU, where PyTorch's dynamic int8 kernels run (a CUDA model's
    int8 variant runs there too); a CPU model's matrices are shared, not copied."""
    if all(p.device.type == "cpu" for p in model.parameters()):
        return _copy_sharing_linear_weights(model)
    return copy.deepcopy(model).cpu()


def _copy_sharing_linear_weights(model: nn.Module) -> nn.Module:
    """Deep copy whose nn.Linear and Conv1D weights/biases are the original tensors (not
    copied): the int8 conversion only reads them, so the float model is never held twice."""
    shared = {id(t): t for m in model.modules() if isinstance(m, nn.Linear) or _is_conv1d(m)
              for t in (m.weight, m.bias) if t is not None}
    return copy.deepcopy(model, memo=dict(shared))


def _conv1d_as_linear(model: nn.Module) -> nn.Module:
    """Replace every GPT-2 Conv1D of ``model`` (in place) by the equivalent nn.Linear, so
    quantize_dynamic, which only knows nn.Linear, converts it too. Conv1D computes
    x @ W + b with W (in, out); nn.Linear computes x @ W'.T + b, so W' = W.T (a view)."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if _is_conv1d(child):
                in_features, out_features = child.weight.shape  # (in, out)
                linear = nn.Linear(in_features, out_features, bias=child.bias is not None, device="meta")
                linear.weight = nn.Parameter(child.weight.detach().t(), requires_grad=False)  # (out, in) view
                if child.bias is not None:
                    linear.bias = nn.Parameter(child.bias.detach(), requires_grad=False)
                setattr(parent, name, linear)
    return model


# -- per-token distributions ----------------------------------------------------------------
def iter_logprobs(backend, ids: list[int], score_from: int, window: int):
    """Yield (log-probs (n, V) float32, targets (n,)) for targets ids[score_from:], in order.

    Disjoint windows of ``window`` ids (each overlapping its neighbour by one token);
    every target is predicted by the row before it (see boundary.py).
    """
    for w in plan_windows(len(ids), score_from, window, stride=window):
        hidden = backend.hidden_states(torch.tensor([ids[w.begin:w.end]]))[0]  # (T, H)
        rows = hidden[w.first_target - 1 - w.begin: w.end - 1 - w.begin]  # (n, H): row t-1 predicts t
        targets = torch.tensor(ids[w.first_target:w.end], dtype=torch.long)
        for i in range(0, len(targets), PROJECT_ROWS):
            yield mathops.log_softmax(backend.project(rows[i:i + PROJECT_ROWS])).cpu(), targets[i:i + PROJECT_ROWS]


@dataclass
class BaseDistributions:
    """The base model's per-token distributions, kept compactly (no full vocabulary rows)."""

    target_logprob: np.ndarray  # (N,) float64: log p_base(correct token)
    top_ids: torch.Tensor  # (N, k) int64, most likely first
    top_logprobs: torch.Tensor  # (N, k) float32

    @property
    def nbytes(self) -> int:
        return self.target_logprob.nbytes + self.top_ids.numel() * 4 + self.top_logprobs.numel() * 4


@torch.inference_mode()
def capture_base(backend, ids: list[int], score_from: int, window: int, top_k: int) -> BaseDistributions:
    targets, tops, top_lps = [], [], []
    for lp, tgt in iter_logprobs(backend, ids, score_from, window):
        top = lp.topk(min(top_k, lp.shape[-1]), dim=-1)  # (n, k)
        targets.append(lp.gather(-1, tgt[:, None])[:, 0].double())
        tops.append(top.indices)
        top_lps.append(top.values)
    return BaseDistributions(torch.cat(targets).numpy(), torch.cat(tops), torch.cat(top_lps))


@dataclass
class TokenComparison:
    kl: np.ndarray  # (N,) KL(base || variant), nats
    logprob: np.ndarray  # (N,) log p_variant(correct)
    same_top: np.ndarray  # (N,) bool: argmax agrees with the base's
    delta_p: np.ndarray  # (N,) p_variant(correct) - p_base(correct)


@torch.inference_mode()
def compare_to_base(backend, ids: list[int], score_from: int, window: int, base: BaseDistributions) -> TokenComparison:
    kls, lps, tops, start = [], [], [], 0
    for lp, tgt in iter_logprobs(backend, ids, score_from, window):
        n = len(tgt)
        kls.append(mathops.kl_top_k(base.top_logprobs[start:start + n], lp.gather(-1, base.top_ids[start:start + n])))
        lps.append(lp.gather(-1, tgt[:, None])[:, 0].double())
        tops.append(lp.argmax(dim=-1) == base.top_ids[start:start + n, 0])
        start += n
    logprob = torch.cat(lps).numpy()
    return TokenComparison(torch.cat(kls).numpy(), logprob, torch.cat(tops).numpy(),
                           np.exp(logprob) - np.exp(base.target_logprob))


# -- statistics and report -------------------------------------------------------------------
@dataclass(frozen=True)
class VariantStats(ResultMixin):
    """One variant against the base, with llama.cpp's KL-divergence statistics."""

    label: str  # "8-bit" (simulated, scheme in the report) or "int8 torch" (dynamic int8 kernels)
    bits: int | None  # None for the real int8 path (8 bits, but a different method)
    size_bytes: int
    perplexity: float
    kl_mean: float
    kl_median: float
    kl_p99: float
    kl_max: float
    same_top: float  # fraction of tokens whose argmax agrees with the base
    delta_p_mean: float
    delta_p_rms: float
    seconds: float  # wall time of this variant's pass (plus quantizing)
    token_kl: tuple[float, ...] = field(default=(), repr=False, compare=False)


def variant_stats(label: str, bits: int | None, size: int, cmp: TokenComparison, seconds: float) -> VariantStats:
    kl = cmp.kl
    return VariantStats(label, bits, size, float(np.exp(-cmp.logprob.mean())), float(kl.mean()),
                        float(np.median(kl)), float(np.percentile(kl, 99)),  # llama.cpp: linear interpolation
                        float(kl.max()), float(cmp.same_top.mean()), float(cmp.delta_p.mean()),
                        float(np.sqrt((cmp.delta_p ** 2).mean())), seconds, tuple(kl.tolist()))


@dataclass(frozen=True)
class QuantizationReport(ResultMixin):
    model: str
    scheme: str
    symmetric: bool
    num_tokens: int  # scored tokens
    top_k: int  # base distribution kept as top-k + remaining mass
    base_bytes: int
    base_perplexity: float
    base_store_bytes: int  # memory of the compact base distributions
    variants: tuple[VariantStats, ...]
    token_ids: tuple[int, ...] = field(default=(), repr=False, compare=False)  # the scored tokens
    token_texts: tuple[str, ...] = field(default=(), repr=False, compare=False)
    which: str = "matrices"  # the parameters the simulated variants rounded: "matrices" or "all"

    def _rows(self) -> list[dict]:
        return [v.to_dict() for v in self.variants]

    @property
    def focus_variant(self) -> VariantStats | None:
        """The variant worth looking at token by token: the most damaged one whose mean KL
        is still below 1 nat (else the most damaged of all; None without variants)."""
        usable = [v for v in self.variants if v.kl_mean < 1.0] or list(self.variants)
        return max(usable, key=lambda v: v.kl_mean) if usable else None


def quantization_impact(backend, text: str, bits=(16, 8, 4, 3, 2), scheme: str = "per-tensor",
                        symmetric: bool = False, int8: bool = True, top_k: int = 256, window: int = 1024,
                        bos: str | bool = "auto", progress: bool = False, which: str = "matrices") -> QuantizationReport:
    """Run every variant on ``text`` and compare it token by token with the float32 model;
    the simulated variants round ``which`` parameters ("matrices" or "all")."""
    bits = [check_bits(b) for b in bits]
    check_scheme(scheme)
    check_range("top_k", top_k, 1, None)
    require(backend, "weights", "quantization")
    quantizable_weights(backend.torch_module, which)  # rejects an unknown selection before any work
    window = check_range("window", window, 2, backend.capabilities.context_length)
    enc = encode(backend, text, None, bos)  # rejects an empty text
    base = capture_base(backend, enc.ids, enc.score_from, window, top_k)
    variants = [_run(backend, enc, window, base, b, scheme, symmetric, which)
                for b in progress_bar(bits, progress, "bit widths")]
    if int8:
        variants.append(_run_int8(backend, enc, window, base, scheme))
    scored = enc.ids[enc.score_from:]
    return QuantizationReport(backend.name, scheme, symmetric, len(scored), top_k, model_bytes(backend.torch_module),
                              float(np.exp(-base.target_logprob.mean())), base.nbytes, tuple(variants),
                              tuple(scored), tuple(backend.token_text(i) for i in scored), which)


def _run(backend, enc, window, base, bits, scheme, symmetric, which) -> VariantStats:
    start = time.perf_counter()
    with simulated_quantization(backend.torch_module, bits, scheme, symmetric, which):
        cmp = compare_to_base(backend, enc.ids, enc.score_from, window, base)
    size = simulated_bytes(backend.torch_module, bits, scheme, symmetric, which)
    return variant_stats(f"{bits}-bit", bits, size, cmp, time.perf_counter() - start)


def _run_int8(backend, enc, window, base, scheme) -> VariantStats:
    start = time.perf_counter()
    qbackend = int8_dynamic_backend(backend, scheme)
    cmp = compare_to_base(qbackend, enc.ids, enc.score_from, window, base)
    size = dynamic_int8_bytes(qbackend.torch_module)
    del qbackend  # free the copy before anything else runs
    return variant_stats("int8 torch", None, size, cmp, time.perf_counter() - start)
