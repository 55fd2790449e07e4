"""Two engines, dtypes or models on the same tokens (evaluation/compare.py, `logitscope compare`)."""

from __future__ import annotations

import json
import math

import pytest
import torch

import logitscope
from logitscope.backends.hf import HFBackend
from logitscope.backends.topk import TopKBackend
from logitscope.backends.toy import ToyBackend
from logitscope.core import mathops
from logitscope.evaluation.compare import compare_engines
from tiny_models import tiny_model, tiny_tokenizer
from tolerances import FLOAT32_RELATIVE, FLOAT32_VALUES, FLOAT64

TEXT = "The cat sat on the mat. To be or not to be, that is the question."


@pytest.fixture(scope="module")
def tiny():
    return logitscope.from_backend(HFBackend(tiny_model("llama"), tiny_tokenizer(), name="tiny"))


@pytest.fixture(scope="module")
def tiny_other():
    model = tiny_model("llama")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return logitscope.from_backend(HFBackend(model, tiny_tokenizer(), name="tiny-perturbed"))


def test_a_model_against_itself_moves_nothing(tiny):
    r = tiny.compare(tiny, TEXT, window=16)
    assert r.kl_exact and r.num_tokens == len(tiny.tokenize(TEXT).ids) - (0 if tiny.backend.adds_bos_by_default else 1)
    assert r.kl_max == FLOAT64.approx(0) and r.delta_max == 0 and r.same_top == 1 and r.rank_changed == 0
    assert r.top_overlap == 1 and r.perplexity_a == r.perplexity_b


def test_numbers_equal_scoring_each_model_and_the_exact_kl(tiny, tiny_other):
    r = tiny.compare(tiny_other, TEXT, window=16)  # several windows
    sa, sb = (m.score(TEXT, window=16, stride=16) for m in (tiny, tiny_other))  # the same windows
    assert [t.logprob_a for t in r.tokens] == FLOAT32_VALUES.approx([t.logprob for t in sa.scored_tokens])
    assert [t.logprob_b for t in r.tokens] == FLOAT32_VALUES.approx([t.logprob for t in sb.scored_tokens])
    assert [t.rank_a for t in r.tokens] == [t.rank for t in sa.scored_tokens]
    assert r.perplexity_a == FLOAT32_RELATIVE.approx(sa.perplexity)
    ids = list(sa.input_ids)
    t = r.tokens[5]  # the KL of one position, from the two models' own next-token distributions
    prefix = ids[:t.position]
    la = mathops.log_softmax(tiny.backend.next_logits([prefix])[0].double())
    lb = mathops.log_softmax(tiny_other.backend.next_logits([prefix])[0].double())
    assert t.kl == FLOAT32_RELATIVE.approx(float(mathops.kl_divergence(la, lb)))
    assert r.kl_mean > 0 and 0 < r.same_top <= 1 and r.delta_mean == FLOAT64.approx(math.log(r.perplexity_a) - math.log(r.perplexity_b))


def test_a_top_k_side_gives_a_labelled_lower_bound(tiny, tiny_other):
    exact = tiny.compare(tiny_other, TEXT, window=32)
    coarse = tiny.compare(logitscope.from_backend(TopKBackend(tiny_other.backend, 5)), TEXT, window=32)
    assert not coarse.kl_exact and exact.kl_exact
    assert [c.kl <= e.kl + 1e-9 for c, e in zip(coarse.tokens, exact.tokens)] == [True] * exact.num_tokens
    assert [c.logprob_b for c in coarse.tokens] == FLOAT32_VALUES.approx([e.logprob_b for e in exact.tokens])


def test_refusals(tiny):
    topk = TopKBackend(tiny.backend, 5)
    with pytest.raises(logitscope.CapabilityError, match="one full distribution"):
        compare_engines(topk, topk, TEXT)
    words = ToyBackend(["the", "cat"], lambda prefix: {"the": 0.5, "cat": 0.5})
    with pytest.raises(logitscope.InputError, match="tokenize the text differently"):
        compare_engines(tiny.backend, words, "the cat")


class _OtherSplit:
    """The same model whose tokenizer splits text otherwise (as llama.cpp's and Hugging Face's tokenizers
    of one GGUF can on rare pieces): the same vocabulary, other ids for the text."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def tokenize(self, text):
        t = self.inner.tokenize(text)
        return type(t)(t.text, list(t.ids[1:]) + list(t.ids[:1]), t.offsets)


def test_a_tokenizer_that_splits_otherwise_scores_a_s_ids_and_says_so(tiny):
    plain = compare_engines(tiny.backend, tiny.backend, TEXT, window=32)
    resplit = compare_engines(tiny.backend, _OtherSplit(tiny.backend), TEXT, window=32)
    assert plain.same_tokenization and not resplit.same_tokenization
    assert [t.token_id for t in resplit.tokens] == [t.token_id for t in plain.tokens]  # A's ids, both sides
    assert resplit.kl_max == FLOAT64.approx(0.0) and resplit.same_top == 1.0


@pytest.mark.slow
def test_cli_compares_float32_with_bfloat16_on_the_bundled_model(cli):
    out = cli(["compare", "To be or not to be, that is the question.", "--dtype-b", "bfloat16", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["a"]["dtype"] == "float32" and data["b"]["dtype"] == "bfloat16" and data["kl_exact"]
    assert 0 < data["kl_mean"] < 0.05 and data["same_top"] > 0.8 and len(data["tokens"]) == data["num_tokens"]
    table = cli(["compare", "To be or not to be, that is the question.", "--dtype-b", "bfloat16"])
    assert "perplexity B" in table.stdout and "largest KL" in table.stdout
