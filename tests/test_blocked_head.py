"""Blocked per-position scores equal the full-logits reference (PositionScores.from_logits)."""

import pytest
import torch

from logitscope.backends import blocked_head
from logitscope.backends.base import PositionScores
from tolerances import FLOAT32_TOKEN


def no_cap(z, in_place=False):
    return z


def soft_cap(z, in_place=False):
    return z.div_(3.0).tanh_().mul_(3.0) if in_place else torch.tanh(z / 3.0) * 3.0


def case(seed, n=37, hidden=16, vocab=1000, bias=True, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, hidden, generator=g)
    w = torch.randn(vocab, hidden, generator=g) * scale / hidden ** 0.5
    b = torch.randn(vocab, generator=g) if bias else None
    t = torch.randint(0, vocab, (n,), generator=g)
    return x, w, b, t


def reference(x, w, b, t, top_k, cap):
    logits = x @ w.t() if b is None else torch.addmm(b, x, w.t())
    return PositionScores.from_logits(cap(logits), t, top_k)


def assert_same(got, ref, full_logp=None):
    assert FLOAT32_TOKEN.allclose(got.logprob, ref.logprob)
    assert FLOAT32_TOKEN.allclose(got.entropy, ref.entropy)
    assert torch.equal(got.rank, ref.rank)
    assert FLOAT32_TOKEN.allclose(got.top_logprobs, ref.top_logprobs)
    if full_logp is None:
        assert torch.equal(got.top_ids, ref.top_ids)
    else:  # values that round to a tie may come out in either order: each id must carry its own value
        assert FLOAT32_TOKEN.allclose(full_logp.gather(-1, got.top_ids).double(), got.top_logprobs)


@pytest.mark.parametrize("block", [64, 333, 4096])
@pytest.mark.parametrize("rows", [5, 256])
@pytest.mark.parametrize("top_k", [0, 1, 7, 100])
@pytest.mark.parametrize("bias,cap", [(True, no_cap), (False, no_cap), (False, soft_cap)])
def test_blocks_equal_full_logits(monkeypatch, block, rows, top_k, bias, cap):
    monkeypatch.setattr(blocked_head, "BLOCK", block)
    monkeypatch.setattr(blocked_head, "ROWS", rows)
    x, w, b, t = case(block + rows + top_k, bias=bias)
    logits = cap(x @ w.t() if b is None else torch.addmm(b, x, w.t()))
    assert_same(blocked_head.blocked_scores(x, t, top_k, w, b, cap), reference(x, w, b, t, top_k, cap),
                torch.log_softmax(logits, -1))


@pytest.mark.parametrize("block", [64, 4096])
@pytest.mark.parametrize("rows", [5, 1024])
@pytest.mark.parametrize("top_k", [0, 1, 7])
@pytest.mark.parametrize("bias,cap", [(True, no_cap), (False, soft_cap)])
def test_lean_scores_and_nll_equal_full_logits(monkeypatch, block, rows, top_k, bias, cap):
    """The echo's reduction (log-probs and top-k, no rank or entropy) and the NLL-only one."""
    monkeypatch.setattr(blocked_head, "BLOCK", block)
    monkeypatch.setattr(blocked_head, "NLL_ROWS", rows)
    x, w, b, t = case(block + rows + top_k, bias=bias)
    ref = reference(x, w, b, t, top_k, cap)
    lean = blocked_head.blocked_top_k(x, t, top_k, w, b, cap)
    assert FLOAT32_TOKEN.allclose(lean.logprob, ref.logprob)
    assert torch.equal(lean.rank, torch.zeros_like(ref.rank)) and lean.entropy.isnan().all()  # "not computed"
    assert FLOAT32_TOKEN.allclose(lean.top_logprobs, ref.top_logprobs)
    full_logp = torch.log_softmax(cap(x @ w.t() if b is None else torch.addmm(b, x, w.t())), -1)
    assert FLOAT32_TOKEN.allclose(full_logp.gather(-1, lean.top_ids).double(), lean.top_logprobs)  # ties: any order
    assert FLOAT32_TOKEN.allclose(-blocked_head.blocked_nll(x, t, w, b, cap).double(), ref.logprob)


@pytest.mark.parity
def test_peaked_distributions_keep_tiny_entropies(monkeypatch):
    monkeypatch.setattr(blocked_head, "BLOCK", 100)
    x, w, b, t = case(1, scale=400.0)  # logits spread over hundreds: near one-hot rows
    got, ref = blocked_head.blocked_scores(x, t, 3, w, b, no_cap), reference(x, w, b, t, 3, no_cap)
    assert (ref.entropy < 1e-3).any()
    assert torch.allclose(got.entropy, ref.entropy, atol=1e-6)
    assert_same(got, ref)


@pytest.mark.parity
def test_exact_ties_with_the_target_are_ranked_like_the_full_row(monkeypatch):
    monkeypatch.setattr(blocked_head, "BLOCK", 50)
    x, w, b, t = case(2, bias=False)
    w[500:520] = w[t[0]]  # twenty tokens whose logits equal the first target's, in other blocks
    w[3] = w[t[1]] * (1 + 1e-6)  # a near-tie just above the second target
    got, ref = blocked_head.blocked_scores(x, t, 5, w, None, no_cap), reference(x, w, None, t, 5, no_cap)
    assert torch.equal(got.rank, ref.rank)
    assert FLOAT32_TOKEN.allclose(got.logprob, ref.logprob)


def test_no_targets_give_empty_scores():
    x, w, b, t = case(3, n=0)
    got = blocked_head.blocked_scores(x, t, 4, w, b, no_cap)
    assert len(got) == 0 and got.top_ids.shape == (0, 4)
