"""Golden values and parity checks on the bundled SmolLM2-135M (float32)."""

from __future__ import annotations

import copy
import dataclasses
import random

import pytest
import torch

import logitscope
from tolerances import FLOAT32_TOKEN

pytestmark = pytest.mark.slow

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Water boils at 100 degrees Celsius at sea level.",
    "Hi",
    "In 1492, Columbus sailed the ocean blue, and the rest, as they say, is history.",
    "def add(a, b):\n    return a + b\n",
]


def naive_logprobs(smol, ids: list[int]) -> torch.Tensor:
    """Reference: one sequence, full float32 logits, log_softmax, shift by one."""
    with torch.inference_mode():
        logits = smol.backend.model(torch.tensor([ids])).logits[0].float()  # (T, V)
    logp = torch.log_softmax(logits, dim=-1)
    return logp[:-1].gather(-1, torch.tensor(ids[1:]).unsqueeze(-1)).squeeze(-1)  # (T-1,)


def test_golden_next_tokens(smol):
    r = smol.next_token("To be or not to", top_k=5)
    assert r.top[0].text == " be" and r.top[0].prob == pytest.approx(0.916, abs=0.005)
    r = smol.next_token("The capital of France is", top_k=5)
    assert r.top[0].text == " Paris" and r.top[0].prob == pytest.approx(0.77, abs=0.01)
    assert r.logprobs.exp().sum().item() == FLOAT32_TOKEN.approx(1.0)
    assert [c.rank for c in r.top] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("bos", ["auto", True])
def test_per_token_logprobs_match_naive_reference(smol, bos):
    for text in TEXTS:
        r = smol.score(text, bos=bos)
        ref = naive_logprobs(smol, list(r.input_ids))
        ours = torch.tensor([t.logprob for t in r.tokens[1:]], dtype=torch.float64)
        assert FLOAT32_TOKEN.allclose(ours, ref.double()), text


@pytest.mark.parity
def test_chain_rule_on_token_boundary(smol):
    context, continuation = "The capital of France is", " Paris, a city on the Seine."
    whole = smol.score(context + continuation, bos=True)
    ctx = smol.score(context, bos=True)
    cont = smol.score(continuation, context=context, bos=True)
    assert not cont.boundary_merged
    assert whole.total_logprob == FLOAT32_TOKEN.approx(ctx.total_logprob + cont.total_logprob)
    assert whole.num_scored == ctx.num_scored + cont.num_scored


def test_batched_equals_unbatched_in_any_order(smol):
    single = {t: smol.score(t) for t in TEXTS}
    order = TEXTS[:]
    for seed in (0, 1):
        random.Random(seed).shuffle(order)
        batched = smol.score_many(order)
        assert sum(b.num_scored for b in batched) == sum(single[t].num_scored for t in order)
        for text, b in zip(order, batched):
            ours = torch.tensor([t.logprob for t in b.scored_tokens])
            ref = torch.tensor([t.logprob for t in single[text].scored_tokens])
            assert FLOAT32_TOKEN.allclose(ours, ref), text


@pytest.mark.parity
def test_trailing_space_of_context_moves_to_continuation(smol):
    a = smol.score("Paris", context="The capital of France is ")
    b = smol.score(" Paris", context="The capital of France is")
    assert a.text == " Paris" and a.total_logprob == FLOAT32_TOKEN.approx(b.total_logprob)
    assert a.num_scored == 1 and not a.boundary_merged
    assert smol.next_token("The capital of France is").top[0].logprob == FLOAT32_TOKEN.approx(a.total_logprob)


def test_token_merging_across_the_boundary_is_reported_not_dropped(smol):
    # "hel" + "lo world": the tokenizer joins the split word into one token
    r = smol.score("lo world", context="Say hel")
    assert r.boundary_merged and r.num_scored >= 1
    first = r.scored_tokens[0]
    assert first.start < len("Say hel") < first.end


def test_long_text_is_scored_in_windows_each_token_once(smol):
    text = " ".join(f"Line {i} of a long document about counting." for i in range(60))
    full = smol.score(text)
    windowed = smol.score(text, window=128, stride=64)
    assert windowed.num_windows > 1 and windowed.num_scored == full.num_scored
    # each window keeps >= 64 tokens of context, so the totals are close but not identical
    assert abs(windowed.mean_logprob - full.mean_logprob) < 0.1


def test_text_longer_than_context_is_windowed_not_crashed(smol):
    small = copy.copy(smol.backend)  # a view of the session model with a 64-token context; the model is shared
    small.capabilities = dataclasses.replace(smol.backend.capabilities, context_length=64)
    r = logitscope.from_backend(small).score("word " * 200)
    assert r.num_windows > 1 and r.num_scored == len(r.input_ids) - 1
    assert smol.backend.capabilities.context_length == 8192


def test_kv_cache_extend_matches_full_forward(smol):
    b = smol.backend
    ids = b.tokenize("The capital of France is Paris and").ids
    state = b.prefill(ids[:3])
    branch = b.fork(state)
    for t in ids[3:]:
        state = b.extend(state, [t])
    full = b.next_logits([ids])[0]
    assert FLOAT32_TOKEN.allclose(torch.log_softmax(state.logits, -1), torch.log_softmax(full, -1))
    branch = b.extend(branch, ids[3:5])  # the fork was not consumed by the first branch
    assert FLOAT32_TOKEN.allclose(torch.log_softmax(branch.logits, -1),
                          torch.log_softmax(b.next_logits([ids[:5]])[0], -1))
