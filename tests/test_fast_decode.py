"""The static-cache decode path equals transformers' cached forward; speculative decoding is exact."""

from __future__ import annotations

import math

import pytest
import torch
from test_fast_forward import tiny
from torch import nn

from logitscope.backends import fast_decode
from logitscope.backends.fast_decode import StaticCacheDecoder, StaticCache
from logitscope.backends.hf import HFBackend
from logitscope.core.processors import Sampler, SamplerConfig
from logitscope.sampling.generation import generate
from logitscope.sampling.session import DecodeSession
from logitscope.sampling.speculative import PromptLookup
from tiny_models import tiny_model, tiny_tokenizer
from tolerances import FLOAT32_TOKEN, FLOAT32_VALUES

FAMILIES = [
    ("llama", {}),
    ("llama", {"num_key_value_heads": 4, "tie_word_embeddings": True}),  # no GQA
    ("qwen2", {}),  # q/k/v biases
    ("mistral", {"sliding_window": None}),
]


def reference_logits(model: nn.Module, ids: list[int]) -> torch.Tensor:
    """(T, V) logits of transformers' own forward over the whole sequence."""
    with torch.inference_mode():
        return model(torch.tensor([ids])).logits[0]


def ids_of(width: int, seed: int = 0) -> list[int]:
    return torch.randint(0, 101, (width,), generator=torch.Generator().manual_seed(seed)).tolist()


def decode_in_pieces(fast: StaticCacheDecoder, ids: list[int], cuts: list[int]) -> torch.Tensor:
    """Feed ``ids`` in the pieces between ``cuts`` through one cache; (T, V) logits of every position."""
    cache, rows = fast.new_cache(4), []
    for begin, end in zip([0] + cuts, cuts + [len(ids)]):
        rows.append(fast.project(fast.step(cache, ids[begin:end])))
    assert cache.length == len(ids)
    return torch.cat(rows)


@pytest.mark.parity
@pytest.mark.parametrize("kind, overrides", FAMILIES)
@pytest.mark.parametrize("cuts", [[], [1], [70], [64, 65, 66, 130], list(range(1, 300, 1))])
def test_decode_equals_transformers(kind, overrides, cuts):
    """Prefill + single steps + multi-token steps (verification) over a cache that must grow past 256 rows."""
    model = tiny(kind, **overrides)
    ids = ids_of(300)
    fast = StaticCacheDecoder.for_model(model)
    assert fast is not None
    FLOAT32_VALUES.assert_close(decode_in_pieces(fast, ids, cuts), reference_logits(model, ids))


def test_fork_copies_and_truncate_rolls_back():
    model = tiny("llama")
    fast = StaticCacheDecoder.for_model(model)
    ids = ids_of(40, seed=3)
    cache = fast.new_cache(8)
    fast.step(cache, ids[:20])
    fork = cache.copy()
    fast.step(cache, [5, 6, 7])  # the original moves on; the fork must not see it
    cache.truncate(20)  # reject the three: back to the shared prefix
    ref = reference_logits(model, ids)[20:]
    FLOAT32_VALUES.assert_close(fast.project(fast.step(fork, ids[20:])), ref)
    FLOAT32_VALUES.assert_close(fast.project(fast.step(cache, ids[20:])), ref)
    with pytest.raises(ValueError):
        cache.truncate(41)


def test_in_place_weight_edits_reach_the_decode_path():
    model = tiny("qwen2")
    fast = StaticCacheDecoder.for_model(model)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.mlp.down_proj.weight.mul_(0.5)
    ids = ids_of(30)
    FLOAT32_VALUES.assert_close(decode_in_pieces(fast, ids, [10]), reference_logits(model, ids))


def test_models_it_does_not_cover_get_none():
    from transformers import GPT2Config, GPT2LMHeadModel

    assert StaticCacheDecoder.for_model(GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50))) is None
    assert StaticCacheDecoder.for_model(tiny("llama", hidden_act="gelu")) is None
    assert StaticCacheDecoder.for_model(tiny("llama").to(torch.bfloat16)) is None
    dynamic = tiny("llama", rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0})
    assert StaticCacheDecoder.for_model(dynamic) is None


def test_sliding_window_backend_falls_back_past_the_window():
    from logitscope.backends.hf import HFBackend

    backend = HFBackend(tiny("mistral", sliding_window=16), _FakeTokenizer())
    ids = ids_of(40, seed=5)
    state = backend.prefill(ids[:10])
    assert isinstance(state.cache, StaticCache)
    for t in ids[10:]:
        state = backend.extend(state, [t])
    assert not isinstance(state.cache, StaticCache)  # past 16 tokens: transformers' cache
    expected = torch.log_softmax(reference_logits(backend.model, ids)[-1], -1)
    FLOAT32_TOKEN.assert_close(torch.log_softmax(state.logits, -1), expected)


def test_environment_switch_turns_it_off(monkeypatch):
    from logitscope.backends.hf import HFBackend

    monkeypatch.setenv("LOGITSCOPE_FAST_DECODE", "0")
    assert not fast_decode.enabled()
    backend = HFBackend(tiny("llama"), _FakeTokenizer())
    assert backend._static_decoder is None and not isinstance(backend.prefill([1, 2, 3]).cache, StaticCache)


class _FakeTokenizer:
    bos_token_id, eos_token_id = 1, 2

    def __call__(self, text, add_special_tokens=True, **_):
        return {"input_ids": [3]}


# -- the backend's decode contract on tiny models -------------------------------------------------

@pytest.mark.parity
@pytest.mark.parametrize("kind, overrides", FAMILIES)
@pytest.mark.parametrize("fast", [True, False])  # False: transformers' DynamicCache, rewound by crop()
def test_backend_extend_rows_and_rewind(kind, overrides, fast, monkeypatch):
    from logitscope.backends.hf import HFBackend

    monkeypatch.setenv("LOGITSCOPE_FAST_DECODE", "1" if fast else "0")
    backend = HFBackend(tiny(kind, **overrides), _FakeTokenizer())
    assert (backend._static_decoder is not None) == fast
    ids = ids_of(50, seed=7)
    ref = reference_logits(backend.model, ids)  # (T, V)
    state = backend.prefill(ids[:30])
    FLOAT32_VALUES.assert_close(state.logits, ref[29])
    branch = backend.fork(state)
    state, rows = backend.extend_rows(state, ids[30:36])
    FLOAT32_VALUES.assert_close(rows, ref[30:36])
    state = backend.rewind(state, 33, rows[2])  # keep ids[:33]
    state = backend.extend(state, ids[33:50])
    FLOAT32_VALUES.assert_close(state.logits, ref[49])
    branch = backend.extend(branch, ids[30:40])
    FLOAT32_VALUES.assert_close(branch.logits, ref[39])


# -- prompt lookup and drafted decoding ----------------------------------------------------------

def test_prompt_lookup_proposes_what_followed_the_last_ngram():
    lookup = PromptLookup([5, 6, 7, 8, 9, 5, 6])
    assert lookup.propose(2) == [7, 8]  # "5 6" occurred before, followed by 7 8
    lookup.push(1)
    assert lookup.propose(3) == []  # "6 1" and "1"-led bigrams never occurred
    lookup = PromptLookup([1, 2, 3, 1, 2, 4, 1, 2])
    assert lookup.propose(5) == [4, 1, 2]  # the latest occurrence wins, cut at the end of the text
    assert lookup.propose(0) == []


REPEATS = "The cat sat on the mat. The cat sat on the mat. The cat sat on the mat. The cat"
PHRASE = tuple((word, 6.0) for word in (" sat", " on", " the", " mat", ".", " The", " cat"))  # a random model repeats


@pytest.mark.parametrize("config", [SamplerConfig(bias=PHRASE), SamplerConfig(temperature=0.7, top_k=4, bias=PHRASE),
                                    SamplerConfig(temperature=0.0, bias=PHRASE)])
def test_drafted_decoding_draws_the_tokens_of_token_by_token_decoding(config, monkeypatch):
    """One draw per token whatever the path: drafts verified in one forward change the speed, not the tokens.
    The drafts are really proposed, and (when sampling) some are refused: the spies count them."""
    backend = HFBackend(tiny_model("llama"), tiny_tokenizer())
    proposed, rewound = [], []
    propose, rewind = PromptLookup.propose, backend.rewind
    monkeypatch.setattr(PromptLookup, "propose", lambda self, k: proposed.append(propose(self, k)) or proposed[-1])
    monkeypatch.setattr(backend, "rewind", lambda *a: rewound.append(a[1]) or rewind(*a))
    for seed in range(4):
        drafted = generate(backend, REPEATS, 30, config, seed=seed, top_alternatives=3)
        plain = generate(backend, REPEATS, 30, config, seed=seed, top_alternatives=3, speculative=False)
        assert drafted.token_ids == plain.token_ids
        for a, b in zip(drafted.steps, plain.steps):
            assert abs(a.logprob - b.logprob) < 1e-5 and abs(a.processed_logprob - b.processed_logprob) < 1e-5
    assert sum(len(p) for p in proposed) > 10
    assert rewound or config.is_greedy


def test_session_rewind_returns_to_an_earlier_position():
    backend = HFBackend(tiny_model("llama"), tiny_tokenizer())
    ids = backend.tokenize(REPEATS).ids
    session = DecodeSession(backend, ids[:5], Sampler(SamplerConfig.greedy()), drafts=True)
    first = session.position().logprobs().clone()
    tokens = [e.token for _ in range(4) for e in session.step(3)]
    assert len(session.ids) == 5 + len(tokens)
    session.rewind(5)
    FLOAT32_VALUES.assert_close(session.position().logprobs(), first)
    assert [e.token for e in session.step(1)] == tokens[:1]  # greedy: the same first token again


# -- the bundled model ------------------------------------------------------------------------------

PROMPT = "The history of the printing press begins"


@pytest.mark.parity
@pytest.mark.slow
def test_smol_decodes_through_the_static_cache(smol):
    b = smol.backend
    assert b._static_decoder is not None
    ids = b.tokenize(PROMPT).ids
    state = b.prefill(ids)
    assert isinstance(state.cache, StaticCache)
    ref = reference_logits(b.model, ids)
    FLOAT32_TOKEN.assert_close(torch.log_softmax(state.logits, -1), torch.log_softmax(ref[-1], -1))


@pytest.mark.slow
@pytest.mark.parametrize("n", [60])
def test_smol_speculative_greedy_equals_transformers_generate(smol, n):
    greedy = SamplerConfig(temperature=0.0, bias=((smol.backend.eos_token_id, float("-inf")),))
    fast = generate(smol.backend, PROMPT, n, greedy, top_alternatives=5)
    plain = generate(smol.backend, PROMPT, n, greedy, top_alternatives=5, speculative=False)
    ids = torch.tensor([list(fast.input_ids)])
    with torch.inference_mode():
        ref = smol.backend.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n,
                                          min_new_tokens=n, pad_token_id=smol.backend.eos_token_id)
    assert list(fast.token_ids) == ref[0, ids.shape[1]:].tolist() == list(plain.token_ids)
    for a, b in zip(fast.steps, plain.steps):
        assert abs(a.logprob - b.logprob) < 1e-4 and abs(a.entropy - b.entropy) < 1e-4
        assert [c.token_id for c in a.alternatives] == [c.token_id for c in b.alternatives]
        assert max(abs(x.logprob - y.logprob) for x, y in zip(a.alternatives, b.alternatives)) < 1e-4


@pytest.mark.slow
def test_smol_speculative_sampling_trace_is_the_models_own(smol):
    """Sampled tokens come from speculation; every recorded probability must match scoring the output."""
    cfg = SamplerConfig(temperature=0.8, top_p=0.95)
    result = smol.generate(PROMPT + " " + PROMPT, 40, cfg, seed=3, top_alternatives=0)
    ids = list(result.input_ids) + list(result.token_ids)
    scores = smol.backend.score_positions([ids], [len(result.input_ids)])[0]
    assert max(abs(float(a) - s.logprob) for a, s in zip(scores.logprob, result.steps)) < 1e-4
    assert all(s.processed_logprob > -math.inf and s.survivors >= 1 for s in result.steps)
