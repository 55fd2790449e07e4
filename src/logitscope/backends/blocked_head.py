"""The LM head walked in vocabulary blocks: scores from hidden rows without a (rows x V) matrix.

Two reductions, one walk (each block's logits land in one reused buffer and are reduced
while still in cache):

    blocked_nll      -log p(target) only (perplexity's hot path): per block log Σ exp,
                     combined by a log-sum-exp over blocks; z[target] is one dot product
    blocked_top_k    -log p(target) and the top-k alternatives (no rank, no entropy: the server's echo)
    blocked_scores   log-prob, rank, entropy and top-k of every target (per-token scores)

For ``blocked_scores`` each block is reduced to a few numbers per row:

    m_b  = max z            S0_b = Σ exp(z - m_b)            S1_b = Σ exp(z - m_b)·(z - m_b)
    above_b = #{z > z_t + ε}      near_b = #{|z - z_t| <= ε}    (z_t: the target's logit)

Blocks combine in float64 with the global max m: S0 = Σ e^{m_b - m} S0_b and
S1 = Σ e^{m_b - m} (S1_b + (m_b - m) S0_b), so log Z = m + log S0 and the
entropy H = log Z - E[z] = log S0 - S1 / S0 — both terms small when the
distribution is peaked, so no cancellation. The target's log-prob uses its logit
as its own block computed it; the rank counts against a dot-product estimate
z_t ± ε: 1 + above when ``near`` holds only the target itself, and rows with a
near-tie are ranked again from their full logits (rare), so ranks equal counting
over the full row.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..core import mathops
from .base import PositionScores

ROWS = 256  # hidden rows per scores pass
NLL_ROWS = 1024  # hidden rows per NLL pass (fewer numbers kept per row): a (NLL_ROWS x BLOCK) block is 16 MB
BLOCK = 4096  # vocabulary rows per block: a (ROWS x BLOCK) float32 block is 4 MB
TIE = 1e-4  # |z - z_t| <= TIE·max(1, |z_t|) counts as a possible tie with the target


def blocked_scores(rows: torch.Tensor, targets: torch.Tensor, top_k: int, weight: torch.Tensor,
                   bias: torch.Tensor | None, cap: Callable[..., torch.Tensor]) -> PositionScores:
    """(N, H) hidden rows, (N,) targets -> PositionScores, as ``PositionScores.from_logits(cap(rows @ W.T + b))``."""
    buffer = torch.empty(min(ROWS, max(len(targets), 1)), min(BLOCK, len(weight)), device=weight.device)
    parts = [_rows_scores(rows[i:i + ROWS], targets[i:i + ROWS].to(weight.device), top_k, weight, bias, cap, buffer)
             for i in range(0, len(targets), ROWS)]
    if not parts:
        return PositionScores.from_logits(torch.zeros(0, len(weight)), targets, top_k)
    return PositionScores.concat(parts)


def blocked_nll(rows: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                cap: Callable[..., torch.Tensor]) -> torch.Tensor:
    """(N, H) hidden rows, (N,) targets -> (N,) float32 NLL = log Z - z[target], on the CPU."""
    buffer = torch.empty(min(NLL_ROWS, len(targets)), min(BLOCK, len(weight)), device=weight.device)
    out = []
    for i in range(0, len(targets), NLL_ROWS):
        x, t = rows[i:i + NLL_ROWS], targets[i:i + NLL_ROWS].to(weight.device)
        block_lse = [_block_lse(x, weight, bias, cap, v, buffer[: len(x), : min(BLOCK, len(weight) - v)])
                     for v in range(0, len(weight), BLOCK)]
        out.append((torch.logsumexp(torch.stack(block_lse, -1), dim=-1) - _dot_logits(x, t, weight, bias, cap)).cpu())
    return torch.cat(out) if out else torch.zeros(0)


def blocked_top_k(rows: torch.Tensor, targets: torch.Tensor, top_k: int, weight: torch.Tensor,
                  bias: torch.Tensor | None, cap: Callable[..., torch.Tensor]) -> PositionScores:
    """Log-probs and top-k alternatives of (N,) targets, without ranks or entropies (rank 0, entropy NaN)."""
    buffer = torch.empty(min(NLL_ROWS, max(len(targets), 1)), min(BLOCK, len(weight)), device=weight.device)
    parts = []
    for i in range(0, len(targets), NLL_ROWS):
        x, t = rows[i:i + NLL_ROWS], targets[i:i + NLL_ROWS].to(weight.device)
        lse, tops = [], []
        for v in range(0, len(weight), BLOCK):
            z = _block(x, weight, bias, cap, v, buffer[: len(x), : min(BLOCK, len(weight) - v)])  # (n, b)
            top, arg = z.max(dim=-1, keepdim=True)  # (n, 1): the log-sum-exp's shift, and top-1 for free
            if top_k:
                best = (top, arg) if top_k == 1 else z.topk(min(top_k, z.shape[1]), dim=-1)
                tops.append((best[0].clone(), best[1] + v))
            lse.append(_row_lse_(z, top))
        log_z = torch.logsumexp(torch.stack(lse, -1), dim=-1).double()  # (n,)
        top_ids, top_lp = _merge_tops(tops, top_k, len(t), log_z)
        logprob = _dot_logits(x, t, weight, bias, cap).double() - log_z
        parts.append(PositionScores(logprob=logprob.cpu(), rank=torch.zeros(len(t), dtype=torch.long),
                                    entropy=torch.full((len(t),), float("nan"), dtype=torch.float64),
                                    top_ids=top_ids.cpu(), top_logprobs=top_lp.cpu()))
    return PositionScores.concat(parts) if parts else PositionScores.values_only(torch.zeros(0))


def _block_lse(x, weight, bias, cap, v: int, out: torch.Tensor) -> torch.Tensor:
    """log Σ exp over the vocabulary block at ``v`` of the logits of rows ``x``, computed in ``out``."""
    return _row_lse_(_block(x, weight, bias, cap, v, out))


def _row_lse_(z: torch.Tensor, top: torch.Tensor | None = None) -> torch.Tensor:
    """log Σ exp of each row of ``z`` (n, b) -> (n,), reducing ``z`` in place (``top``: its row maxima (n, 1))."""
    top = z.amax(dim=-1, keepdim=True) if top is None else top
    return z.sub_(top).exp_().sum(dim=-1).log_().add_(top.squeeze(-1))


def _rows_scores(x, t, top_k, weight, bias, cap, buffer) -> PositionScores:
    n, vocab = len(t), len(weight)
    approx = _dot_logits(x, t, weight, bias, cap)  # (n,) z[t] within float32 rounding of the blocks' value
    eps = TIE * approx.abs().clamp(min=1.0)
    zt = torch.empty_like(approx)
    stats, tops = [], []
    for v in range(0, vocab, BLOCK):
        z = _block(x, weight, bias, cap, v, buffer[:n, : min(BLOCK, vocab - v)])  # (n, b)
        inside = ((t >= v) & (t < v + z.shape[1])).nonzero().flatten()
        zt[inside] = z[inside, t[inside] - v]  # the target's logit as this matmul computed it
        if top_k:
            best = z.topk(min(top_k, z.shape[1]), dim=-1)
            tops.append((best.values.clone(), best.indices + v))
        stats.append(_block_stats(z, approx, eps))
    m_b, s0_b, s1_b, above, near = (torch.stack(c, -1) for c in zip(*stats))  # each (n, blocks)
    m = m_b.amax(-1, keepdim=True)  # (n, 1)
    scale = (m_b - m).exp()
    s0 = (scale * s0_b).sum(-1)
    s1 = (scale * (s1_b + (m_b - m) * s0_b)).sum(-1)
    log_z = m.squeeze(-1) + s0.log()  # (n,) float64
    rank = above.sum(-1) + 1
    tied = (near.sum(-1) != 1).nonzero().flatten()  # another logit within eps of the target's: count exactly
    if len(tied):
        full = x[tied] @ weight.t() if bias is None else torch.addmm(bias, x[tied], weight.t())
        rank[tied] = mathops.rank_of(cap(full), t[tied]).to(rank.dtype)
    top_ids, top_lp = _merge_tops(tops, top_k, n, log_z)
    return PositionScores(logprob=(zt.double() - log_z).cpu(), rank=rank.cpu(),
                          entropy=(s0.log() - s1 / s0).clamp(min=0.0).cpu(),
                          top_ids=top_ids.cpu(), top_logprobs=top_lp.cpu())


def _block(x, weight, bias, cap, v: int, out: torch.Tensor) -> torch.Tensor:
    """The logits of rows ``x`` for the vocabulary block at ``v``, in the float32 buffer ``out``; a bfloat16
    head multiplies in bfloat16 (the model's own logits) and the reductions run on their float32 copy."""
    w, b = weight[v:v + out.shape[1]], None if bias is None else bias[v:v + out.shape[1]]
    if weight.dtype != out.dtype:
        out.copy_(torch.mm(x, w.t()) if b is None else torch.addmm(b, x, w.t()))
        return cap(out, in_place=True)
    z = torch.mm(x, w.t(), out=out) if b is None else torch.addmm(b, x, w.t(), out=out)
    return cap(z, in_place=True)


def _dot_logits(x, t, weight, bias, cap) -> torch.Tensor:
    """z[t] per row as one dot product each (the same value as the matmul's up to rounding), as float32."""
    z = (x * weight[t]).sum(-1) + (0.0 if bias is None else bias[t])
    return cap(z.float())


def _block_stats(z: torch.Tensor, zt: torch.Tensor, eps: torch.Tensor):
    """Per-row reductions of one block (modifies ``z``): max, Σe, Σe·d, count above, count near."""
    above = torch.gt(z, (zt + eps)[:, None]).sum(-1)
    near = torch.ge(z, (zt - eps)[:, None]).sum(-1) - above
    m = z.amax(-1, keepdim=True)
    d = z.sub_(m)  # (n, b) <= 0
    e = torch.exp(d)
    s0 = e.sum(-1)
    s1 = e.mul_(d).sum(-1)
    return m.squeeze(-1).double(), s0.double(), s1.double(), above, near


def _merge_tops(tops, top_k: int, n: int, log_z: torch.Tensor):
    if not top_k:
        return torch.zeros(n, 0, dtype=torch.long), torch.zeros(n, 0, dtype=torch.float64)
    values = torch.cat([v for v, _ in tops], -1)
    ids = torch.cat([i for _, i in tops], -1)
    best = values.topk(min(top_k, values.shape[1]), dim=-1)
    return ids.gather(-1, best.indices), best.values.double() - log_z[:, None]
