"""The transformers backend's whole contract on tiny random Llama, Qwen2 and GPT-2 models,
against a naive ``log_softmax(model(ids).logits)`` reference (fast: no bundled model)."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch

import logitscope
from logitscope import CapabilityError, InputError
from logitscope.backends.hf import HFBackend
from logitscope.backends.topk import TopKBackend
from logitscope.core import mathops

from tiny_models import FAMILIES, naive_logprobs, tiny_model, tiny_tokenizer
from tolerances import FLOAT32_TOKEN, FLOAT64

pytestmark = pytest.mark.parity  # float32 paths against the naive forward: run again on AVX2 kernels

TEXTS = ["The cat sat on the mat.", "To be or not to be", "Once upon a time there was a small model. " * 3]


@pytest.fixture(params=[*FAMILIES, "llama-no-fast-path"], scope="module")
def backend(request):
    family = request.param.split("-")[0]
    mp = pytest.MonkeyPatch()
    if request.param.endswith("no-fast-path"):
        mp.setenv("LOGITSCOPE_FAST_PATHS", "0")
    b = HFBackend(tiny_model(family), tiny_tokenizer(), name=f"tiny-{request.param}")
    mp.undo()
    assert (b._fast_forward is not None) == (request.param in ("llama", "qwen2"))  # the fast path applies where it should
    return b


def ids_of(b: HFBackend, text: str, bos: bool = True) -> list[int]:
    return ([b.bos_token_id] if bos else []) + b.tokenize(text).ids


def test_score_positions_equal_the_naive_reference_in_a_right_padded_batch(backend):
    seqs = [ids_of(backend, t) for t in TEXTS]
    starts = [1, 3, 5]
    for seq, start, got in zip(seqs, starts, backend.score_positions(seqs, starts, top_k=4)):
        ref = naive_logprobs(backend.model, seq)[start - 1:-1]  # (N, V): row t-1 predicts t
        targets = torch.tensor(seq[start:])
        FLOAT32_TOKEN.assert_close(got.logprob, ref.gather(-1, targets[:, None])[:, 0])
        assert got.rank.tolist() == mathops.rank_of(ref, targets).tolist()
        FLOAT32_TOKEN.assert_close(got.entropy, mathops.entropy(ref))
        top = ref.topk(4, dim=-1)
        assert got.top_ids.tolist() == top.indices.tolist()
        FLOAT32_TOKEN.assert_close(got.top_logprobs, top.values)


def test_scores_without_ranks_equal_score_positions_minus_the_stats(backend):
    seqs = [ids_of(backend, t) for t in TEXTS]
    starts = [1, 3, 5]
    full = backend.score_positions(seqs, starts, top_k=4)
    for got, ref in zip(backend.scores_without_ranks(seqs, starts, top_k=4), full):
        FLOAT32_TOKEN.assert_close(got.logprob, ref.logprob)
        assert got.top_ids.tolist() == ref.top_ids.tolist()
        FLOAT32_TOKEN.assert_close(got.top_logprobs, ref.top_logprobs)
        assert (got.rank == 0).all() and got.entropy.isnan().all()  # "not computed"


def test_nll_sums_equal_the_naive_sums(backend):
    seqs = [ids_of(backend, t) for t in TEXTS]
    starts = [1, 2, len(seqs[2]) - 1]
    for seq, start, got in zip(seqs, starts, backend.nll_sums(seqs, starts)):
        ref = naive_logprobs(backend.model, seq)[start - 1:-1].gather(-1, torch.tensor(seq[start:])[:, None])
        assert got == FLOAT32_TOKEN.approx(-float(ref.sum()))


def test_token_logprobs_equal_the_naive_values_in_order(backend):
    seqs = [ids_of(backend, t) for t in TEXTS] + [ids_of(backend, TEXTS[0])]
    starts = [1, 2, len(seqs[2]), 4]  # the third scores nothing
    got = backend.token_logprobs(seqs, starts)
    for seq, start, values in zip(seqs, starts, got):
        ref = naive_logprobs(backend.model, seq)[start - 1:-1].gather(-1, torch.tensor(seq[start:], dtype=torch.long)[:, None])
        assert values.dtype == torch.float64 and values.shape == (len(seq) - start,)
        FLOAT32_TOKEN.assert_close(values, ref[:, 0].double())


def test_next_logits_are_the_last_row_of_each_prefix(backend):
    prefixes = [ids_of(backend, t) for t in TEXTS]
    got = torch.log_softmax(backend.next_logits(prefixes).double(), -1)
    for row, prefix in zip(got, prefixes):
        FLOAT32_TOKEN.assert_close(row, naive_logprobs(backend.model, prefix)[-1])


def test_kv_cache_prefill_extend_fork_match_full_forwards(backend):
    ids = ids_of(backend, TEXTS[0])
    state = backend.prefill(ids[:3])
    branch = backend.fork(state)
    for t in ids[3:]:
        state = backend.extend(state, [t])
    FLOAT32_TOKEN.assert_close(mathops.log_softmax(state.logits.double()), naive_logprobs(backend.model, ids)[-1])
    branch = backend.extend(branch, ids[3:6])  # the fork survived the first branch's steps
    FLOAT32_TOKEN.assert_close(mathops.log_softmax(branch.logits.double()),
                               naive_logprobs(backend.model, ids[:6])[-1])


def test_score_continuations_reuse_the_prefix_and_match_full_passes(backend):
    prefix = ids_of(backend, "The capital of France is")
    conts = [backend.tokenize(c).ids for c in (" Paris.", " a small model", " 1 2 3")]
    state = backend.prefill(prefix)
    got = backend.score_continuations(state, conts, top_k=3)
    ref = backend.score_positions([prefix + c for c in conts], [len(prefix)] * len(conts), top_k=3)
    for g, r in zip(got, ref):
        FLOAT32_TOKEN.assert_close(g.logprob, r.logprob)
        assert g.rank.tolist() == r.rank.tolist() and g.top_ids.tolist() == r.top_ids.tolist()


def test_model_score_through_from_transformers_equals_the_reference():
    model, tok = tiny_model("llama"), tiny_tokenizer()
    m = logitscope.from_transformers(model, tok)
    r = m.score(TEXTS[1], bos=True)
    ref = naive_logprobs(model, list(r.input_ids))[:-1].gather(-1, torch.tensor(r.input_ids[1:])[:, None])[:, 0]
    got = torch.tensor([t.logprob for t in r.scored_tokens], dtype=torch.float64)
    FLOAT32_TOKEN.assert_close(got, ref)
    assert r.first_token_scored and r.prefix_token_id == tok.bos_token_id and r.top_k_only is None


def test_windows_cover_a_text_longer_than_the_context_without_touching_the_model():
    b = HFBackend(tiny_model("qwen2"), tiny_tokenizer())
    small = copy.copy(b)
    small.capabilities = dataclasses.replace(b.capabilities, context_length=16)
    text = "Numbers: 1 2 3 4 5 6 7 8 9 10. " * 3
    windowed = logitscope.from_backend(small).score(text, bos=True)
    whole = logitscope.from_backend(b).score(text, bos=True)
    assert windowed.num_windows > 1 and windowed.num_scored == whole.num_scored == len(whole.input_ids) - 1
    assert b.capabilities.context_length == 96  # the original backend is unchanged
    with pytest.raises(InputError, match="window=17 is out of range"):
        logitscope.from_backend(small).score(text, window=17)


# -- capabilities: top-k only, weights ----------------------------------------------------------

@pytest.fixture(scope="module")
def full_and_topk():
    full = logitscope.from_transformers(tiny_model("llama"), tiny_tokenizer())
    return full, logitscope.from_backend(TopKBackend(full.backend, 5))


def test_uncertainty_flags_keep_what_a_small_top_k_backend_has(full_and_topk):
    full, _ = full_and_topk
    three = logitscope.from_backend(TopKBackend(full.backend, 3))
    a, b = full.uncertain(TEXTS[0], bos=True), three.uncertain(TEXTS[0], bos=True)
    assert [t.logprob for t in b.scored.scored_tokens] == FLOAT64.approx([t.logprob for t in a.scored.scored_tokens])
    assert all(len(t.alternatives) == 3 for t in b.scored.scored_tokens)
    assert all(len(t.alternatives) == 5 for t in a.scored.scored_tokens)


def test_top_k_scores_keep_log_probs_and_label_what_they_lost(full_and_topk):
    full, topk = full_and_topk
    a, b = full.score(TEXTS[0], bos=True, top_k=3), topk.score(TEXTS[0], bos=True, top_k=3)
    assert b.top_k_only == 5 and a.top_k_only is None and "top_k_only" in b.to_dict()
    for x, y in zip(a.scored_tokens, b.scored_tokens):
        assert y.logprob == FLOAT64.approx(x.logprob)
        assert y.rank == (x.rank if x.rank <= 5 else 6)  # 6 stands for "beyond the top 5"
        assert y.entropy <= x.entropy + 1e-9  # a lower bound, never the entropy itself
        assert [c.token_id for c in y.alternatives] == [c.token_id for c in x.alternatives]
    assert any(t.rank > 5 for t in a.scored_tokens)  # the test text really has ranks beyond k


def test_top_k_next_token_and_perplexity(full_and_topk):
    full, topk = full_and_topk
    a, b = full.next_token("The cat", top_k=5), topk.next_token("The cat", top_k=5)
    assert [c.token_id for c in a.top] == [c.token_id for c in b.top] and b.logprobs is None
    assert b.entropy <= a.entropy and b.top_k_only == 5
    top = torch.tensor([c.logprob for c in a.top])
    assert b.entropy == FLOAT64.approx(float(mathops.entropy_lower_bound(top)))
    with pytest.raises(CapabilityError, match="at most 5"):
        topk.next_token("The cat", top_k=6)
    with pytest.raises(CapabilityError, match="full vocab"):
        topk.next_token("The cat", temperature=0.5)
    pa = full.perplexity(texts=TEXTS).total.perplexity
    assert topk.perplexity(texts=TEXTS).total.perplexity == FLOAT64.approx(pa)  # exact from chosen tokens


@pytest.mark.parametrize("call", [
    lambda m: m.chain("The cat"), lambda m: m.sample("The cat", n=10), lambda m: m.generate("The cat", 2),
    lambda m: m.beam_search("The cat", max_new_tokens=2),
    lambda m: m.quantization_impact("The cat sat on the mat.", bits=(8,), int8=False),
])
def test_analyses_that_need_more_than_top_k_say_so(full_and_topk, call):
    with pytest.raises(CapabilityError) as info:
        call(full_and_topk[1])
    assert info.value.hint


def test_quantization_needs_weights_and_toy_models_have_none():
    with pytest.raises(CapabilityError, match="quantization needs weights") as info:
        logitscope.load("toy").quantization_impact("the cat sat")
    assert "local" in info.value.hint


def test_entropy_lower_bound_is_below_the_entropy_and_exact_with_the_whole_vocabulary():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        logp = torch.log_softmax(torch.randn(50, generator=g, dtype=torch.float64) * 3, -1)
        h = float(mathops.entropy(logp))
        top = logp.sort(descending=True).values
        for k in (1, 5, 20):
            assert float(mathops.entropy_lower_bound(top[:k])) <= h + 1e-12
        assert float(mathops.entropy_lower_bound(top)) == FLOAT64.approx(h)
    assert math.isclose(float(mathops.remaining_mass(torch.log(torch.tensor([0.5, 0.25], dtype=torch.float64)))), 0.25)


def test_bos_true_without_any_prefix_token_fails_the_same_way_everywhere():
    b = HFBackend(tiny_model("gpt2"), tiny_tokenizer())
    b.bos_token_id = b.eos_token_id = None
    m = logitscope.from_backend(b)
    for call in (lambda: m.score("The cat", bos=True), lambda: m.next_token("The cat", bos=True),
                 lambda: m.generate("The cat", 1, bos=True), lambda: m.perplexity(texts=["The cat"], bos=True)):
        with pytest.raises(InputError, match="no BOS or EOS token"):
            call()
