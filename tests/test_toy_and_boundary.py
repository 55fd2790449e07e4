"""Scoring logic on toy backends (exact numbers) and the boundary rules."""

from __future__ import annotations

import math

import pytest

import logitscope
from logitscope.backends.toy import ToyBackend
from logitscope.core.boundary import encode, plan_windows, split_context
from logitscope.errors import InputError
from logitscope.backends.toydata import SEED_CORPUS
from tolerances import FLOAT64


def test_seed_table_chain_rule(table_model):
    r = table_model.score("the cat sat <EOS>")
    assert r.prefix_token_id == table_model.backend.bos_token_id and r.first_token_scored
    assert [round(t.prob, 6) for t in r.scored_tokens] == [0.9, 0.75, 0.55, 0.8]
    assert r.total_logprob == FLOAT64.approx(math.log(0.9 * 0.75 * 0.55 * 0.80))
    assert r.perplexity == FLOAT64.approx((0.9 * 0.75 * 0.55 * 0.80) ** -0.25)


def test_seed_bigram_add_alpha_probabilities(bigram_model):
    # P(w | the) = (c(the, w) + 0.5) / (c(the) + 0.5 |V|); c(the)=4: cat x3, dog x1; |V| = 7
    r = bigram_model.next_token("the", top_k=7)
    probs = {c.text: c.prob for c in r.top}
    assert probs["cat"] == pytest.approx(3.5 / 7.5)
    assert probs["dog"] == pytest.approx(1.5 / 7.5)
    assert probs["sat"] == pytest.approx(0.5 / 7.5)
    assert sum(probs.values()) == pytest.approx(1.0)


def oracle_model(sentence: str) -> logitscope.Model:
    """A toy model that puts all its mass on the true next word of ``sentence``."""
    words = sentence.split()
    table = {("<BOS>", *words[:i]): {words[i]: 1.0} for i in range(len(words))}
    return logitscope.from_backend(ToyBackend.from_table(table, floor=0.0))


def test_oracle_model_scores_logprob_zero_everywhere():
    text = "a b c a b d e"
    r = oracle_model(text).score(text)
    assert r.num_scored == 7
    assert all(t.logprob == 0.0 and t.rank == 1 and t.entropy == 0.0 for t in r.scored_tokens)


def test_oracle_model_with_context_scores_only_continuation():
    m = oracle_model("a b c d")
    r = m.score(" c d", context="a b")
    assert [t.text for t in r.scored_tokens] == ["c", "d"]
    assert r.total_logprob == 0.0
    assert [t.role for t in r.tokens] == ["prefix", "context", "context", "text", "text"]


def test_batched_equals_unbatched_on_toy(bigram_model):
    texts = ["the cat sat", "the dog sat", "the cat slept"]
    batched = bigram_model.score_many(texts)
    for text, b in zip(texts, batched):
        assert b.total_logprob == FLOAT64.approx(bigram_model.score(text).total_logprob)


def test_split_context_moves_trailing_whitespace():
    assert split_context("The capital is ", "Paris") == ("The capital is", " Paris")
    assert split_context("Q:\n\n", "A") == ("Q:", "\n\nA")
    assert split_context("x", " y") == ("x", " y")


def test_empty_and_whitespace_text_is_refused(table_model):
    for bad in ("", "   ", "\n\t"):
        with pytest.raises(InputError, match="empty"):
            table_model.score(bad)


def test_unknown_word_names_the_word(table_model):
    with pytest.raises(InputError, match="'dog'"):
        table_model.score("the dog")


def test_no_prefix_policy_leaves_first_token_unscored(table_model):
    r = table_model.score("the cat sat", bos=False)
    assert not r.first_token_scored and r.prefix_token_id is None
    assert [t.scored for t in r.tokens] == [False, True, True]


def test_windows_cover_every_target_exactly_once():
    for n in (2, 5, 7, 8, 9, 31):
        for window, stride in ((4, 2), (4, 4), (8, 3), (3, 1)):
            for start in (0, 1):
                plan = plan_windows(n, start, window, stride)
                targets = [t for w in plan for t in range(w.first_target, w.end)]
                assert targets == list(range(start, n))
                assert all(w.end - w.begin <= window and w.first_target > w.begin or w.first_target == 0
                           for w in plan)


def test_window_arguments_are_checked():
    with pytest.raises(InputError, match="window"):
        plan_windows(10, 1, 1)
    with pytest.raises(InputError, match="stride"):
        plan_windows(10, 1, 4, 5)


def test_long_text_scored_in_windows_equals_full_for_markov_model():
    # a bigram model only looks one word back, so any window >= 2 gives identical scores
    m = logitscope.from_backend(ToyBackend.from_ngrams(SEED_CORPUS, order=2, alpha=0.5, context_length=6))
    text = " ".join(["the cat sat"] * 7)
    windowed = m.score(text)  # 22 ids > context 6 -> windows
    full = logitscope.from_backend(ToyBackend.from_ngrams(SEED_CORPUS, order=2, alpha=0.5)).score(text)
    assert windowed.num_windows > 1
    assert windowed.num_scored == full.num_scored == 21
    assert windowed.total_logprob == FLOAT64.approx(full.total_logprob)


def test_result_json_and_dataframe(table_model):
    r = table_model.score("the cat")
    d = r.to_dict()
    assert d["input_ids"] == list(r.input_ids) and d["num_scored"] == 2
    assert d["tokens"][0]["logprob"] is None  # the prefix token is not scored
    df = r.to_dataframe()
    assert list(df["text"]) == ["<BOS>", "the", "cat"]


def test_encode_reports_offsets_and_score_start(table_model):
    e = encode(table_model.backend, "cat sat", context="the ")
    assert e.context == "the" and e.text == " cat sat"
    assert e.offsets == [(0, 0), (0, 3), (4, 7), (8, 11)]
    assert e.score_from == 2 and not e.boundary_merged
