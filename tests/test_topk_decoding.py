"""Traced generation and the tree from top-k log-probs: the chain on the known top k (pure,
against the full-vocabulary processors), models seen through TopKBackend against their
full-vocabulary results, and the refusals."""

from __future__ import annotations


import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import logitscope
from logitscope import CapabilityError
from logitscope.backends.topk import TopKBackend
from logitscope.backends.toy import EOS, ToyBackend
from logitscope.core import mathops
from logitscope.core.processors import Sampler, SamplerConfig
from logitscope.core.topk_chain import chain_on_top_k
from logitscope.sampling.generation import generate
from tolerances import FLOAT64

GREEDY = SamplerConfig.greedy()
WORDS = [f"w{i}" for i in range(20)]


def peaked_dist(prefix: tuple[str, ...]) -> dict[str, float]:
    """p ∝ 0.45^i over a prefix-dependent order of the words, EOS tenth: peaked, no ties."""
    start = (5 * len(prefix) + sum(len(w) for w in prefix)) % len(WORDS)
    order = WORDS[start:] + WORDS[:start]
    order.insert(9, EOS)
    return {w: 0.45 ** i for i, w in enumerate(order)}


@pytest.fixture(scope="module")
def peaked():
    full = logitscope.from_backend(ToyBackend(WORDS, peaked_dist))
    return full, logitscope.from_backend(TopKBackend(full.backend, 6))


@pytest.fixture(scope="module")
def toy():
    full = logitscope.load("toy")
    return full, logitscope.from_backend(TopKBackend(full.backend, 3))


# -- the chain on the known top k, against the processors over the whole vocabulary ----------------------

CONFIGS = st.builds(SamplerConfig, temperature=st.sampled_from([0.0, 0.5, 1.0, 1.7]),
                    top_k=st.sampled_from([None, 1, 2, 4, 6, 8]), top_p=st.sampled_from([1.0, 0.3, 0.7, 0.95, 1e-12]),
                    min_p=st.sampled_from([0.0, 0.02, 0.2, 0.6]))


@settings(max_examples=300, deadline=None)
@given(config=CONFIGS, seed=st.integers(0, 10_000), scale=st.floats(0.5, 8.0), k=st.integers(1, 12),
       vocab_known=st.booleans())
def test_chain_on_top_k_is_the_full_chain_or_refuses(config, seed, scale, k, vocab_known):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(40, generator=g, dtype=torch.float64) * scale  # (V,) no ties
    logp = mathops.log_softmax(logits)
    known = logp.topk(k).indices.sort().values  # (K,) in id order
    processed, why = chain_on_top_k(logp[known], config, 40 - k if vocab_known else None)
    full = Sampler(config).process(torch.tensor([[0]]), logits[None])[0]  # (V,)
    if processed is None:
        assert why
        return
    survivors = known[torch.isfinite(processed)]
    assert set(survivors.tolist()) == set(torch.isfinite(full).nonzero()[:, 0].tolist())  # none outside the top k
    assert mathops.log_softmax(processed)[torch.isfinite(processed)] == FLOAT64.approx(mathops.log_softmax(full)[survivors].tolist())


def test_chain_settles_what_the_known_mass_settles():
    logp = torch.log(torch.tensor([0.5, 0.3, 0.1, 0.05, 0.03, 0.02], dtype=torch.float64))  # 6 of 40 tokens
    known = logp[:3]  # the top 3: remaining mass 0.1, every unseen token p <= 0.1
    ok = [SamplerConfig(top_k=2), SamplerConfig(top_p=0.7), SamplerConfig(min_p=0.3), GREEDY,
          SamplerConfig(temperature=0.5, top_p=0.8), SamplerConfig(top_k=2, temperature=0.5)]
    for config in ok:
        assert chain_on_top_k(known, config, 37)[0] is not None, config
    refused = {SamplerConfig(top_k=3): "top-k 3", SamplerConfig(top_p=0.95): "top-p 0.95",
               SamplerConfig(min_p=0.1): "min-p 0.1", SamplerConfig(): "whole distribution",
               SamplerConfig(top_k=1, repetition_penalty=1.2): "repetition",
               SamplerConfig(top_k=1, bias=((3, 1.0),)): "logit bias",
               SamplerConfig(temperature=3.0, top_p=0.7): "top-p 0.7"}
    for config, why in refused.items():
        processed, reason = chain_on_top_k(known, config, 37)
        assert processed is None and why in reason, (config, reason)
    processed, _ = chain_on_top_k(known, SamplerConfig(top_p=0.7), 37)
    assert torch.isfinite(processed).tolist() == [True, True, False]


# -- toy through TopKBackend: the full-vocabulary numbers, labelled -----------------------------------

@pytest.mark.parametrize("prompt", ["the cat", "to be or", "the", ""])
def test_greedy_trace_from_the_top_k_is_the_full_trace(toy, prompt):
    full, topk = toy
    a, b = full.generate(prompt, 8, GREEDY), topk.generate(prompt, 8, GREEDY)
    assert b.token_ids == a.token_ids and b.text == a.text and b.stop_reason == a.stop_reason
    assert b.top_k_only == 3 and a.top_k_only is None and not b.used_cache
    for x, y in zip(a.steps, b.steps):
        assert (y.logprob, y.processed_logprob, y.rank, y.survivors) == (x.logprob, x.processed_logprob, x.rank,
                                                                         x.survivors)
        assert y.entropy <= x.entropy + 1e-12 and x.remaining_mass is None
        known = torch.tensor([c.logprob for c in y.alternatives], dtype=torch.float64)
        assert len(y.alternatives) == 3 and y.alternatives[0].token_id == x.alternatives[0].token_id
        assert [c.logprob for c in y.alternatives] == pytest.approx([c.logprob for c in x.alternatives[:3]])
        assert y.remaining_mass == FLOAT64.approx(1 - float(known.exp().sum()))
        assert y.entropy == FLOAT64.approx(float(mathops.entropy_lower_bound(known)))
    d = b.to_dict()
    assert d["top_k_only"] == 3 and d["steps"][0]["remaining_mass"] == b.steps[0].remaining_mass


def test_tree_from_the_top_k_is_the_full_tree(peaked, toy):
    for (full, topk), prompt in ((peaked, "w1 w2"), (toy, "the cat")):
        a, b = full.tree(prompt, 3, 2), topk.tree(prompt, 3, 2)
        assert b.top_k_only == topk.backend.capabilities.top_k_only and a.top_k_only is None
        assert [len(p) for p, _ in b.nodes()] == [len(p) for p, _ in a.nodes()]  # the same shape
        assert [n.cum_logprob for _, n in b.nodes()] == FLOAT64.approx([n.cum_logprob for _, n in a.nodes()])
        assert b.forward_steps == a.forward_steps
    full, topk = peaked
    a, b = full.tree("w1", 2, 3, min_prob=0.2), topk.tree("w1", 2, 3, min_prob=0.2)
    assert [(n.token_id, n.logprob) for _, n in a.nodes()] == [(n.token_id, n.logprob) for _, n in b.nodes()]
    with pytest.raises(CapabilityError, match="at most 6"):
        topk.tree("w1", 2, 7)


@pytest.mark.parametrize("config", [SamplerConfig(top_k=2), SamplerConfig(top_k=4, temperature=0.7),
                                    SamplerConfig(top_p=0.6), SamplerConfig(min_p=0.2),
                                    SamplerConfig(temperature=0.5, top_p=0.9), SamplerConfig(top_k=6, min_p=0.05)])
def test_sampling_inside_the_top_k_is_the_full_sampling(peaked, config):
    full, topk = peaked
    for seed in range(4):  # same processed probabilities, so the same seeded draws
        a = generate(full.backend, "w3", 10, config, seed=seed, speculative=False)
        b = topk.generate("w3", 10, config, seed=seed)
        assert b.token_ids == a.token_ids
        assert [s.processed_logprob for s in b.steps] == FLOAT64.approx([s.processed_logprob for s in a.steps])
        assert [s.survivors for s in b.steps] == [s.survivors for s in a.steps]


@pytest.mark.parametrize("config, why", [
    (SamplerConfig(), "whole distribution"), (SamplerConfig(temperature=0.8), "whole distribution"),
    (SamplerConfig(top_k=7), "top-k 7"), (SamplerConfig(top_p=0.999), "top-p 0.999"),
    (SamplerConfig(min_p=0.001), "min-p 0.001"), (SamplerConfig(top_k=2, repetition_penalty=1.3), "repetition"),
    (SamplerConfig(top_k=2, bias=(("w4", 2.0),)), "logit bias")])
def test_sampling_that_needs_the_whole_vocabulary_is_refused(peaked, config, why):
    with pytest.raises(CapabilityError, match="needs full vocab") as info:
        peaked[1].generate("w3", 5, config)
    assert why in str(info.value) and "top-k <= 6" in info.value.hint


def test_alternatives_are_capped_at_k_and_steps_cost_one_call(peaked):
    full, topk = peaked
    calls = []
    inner = topk.backend.next_top_k
    topk.backend.next_top_k = lambda prefixes, k: calls.append((len(prefixes[0]), k)) or inner(prefixes, k)
    try:
        r = topk.generate("w3 w4", 4, GREEDY, top_alternatives=10)
    finally:
        del topk.backend.next_top_k
    assert all(len(s.alternatives) == 6 for s in r.steps)
    assert calls == [(3 + i, 6) for i in range(len(r.steps))]  # the prefix grows by one token a call
