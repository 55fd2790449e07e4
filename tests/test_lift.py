"""Context lift: exact zero for a context the model ignores, positive for one it uses."""

from __future__ import annotations

import json
import math
import re

import pytest

import logitscope
from logitscope import InputError
from logitscope.backends.toy import ToyBackend
from logitscope.confidence.lift import context_lift
from tolerances import FLOAT64

VOCAB = ["who", "wrote", "it", "?", "ann", "bob", "cats", "purr", "the", "book", "by", "was"]


def bigram_dist(prefix: tuple[str, ...]) -> dict[str, float]:
    """Next word depends on the last word only: anything said earlier cannot matter."""
    if prefix[-1] == "?":
        return {"ann": 0.2, "bob": 0.8}
    return {w: 1.0 / len(VOCAB) for w in VOCAB}


def copying_dist(prefix: tuple[str, ...]) -> dict[str, float]:
    """Like bigram_dist, but a name seen earlier in the prefix becomes likely after '?'."""
    if prefix[-1] == "?" and "ann" in prefix[:-1]:
        return {"ann": 0.9, "bob": 0.1}
    return bigram_dist(prefix)


@pytest.fixture
def ignoring():
    return logitscope.from_backend(ToyBackend(VOCAB, bigram_dist))


@pytest.fixture
def copying():
    return logitscope.from_backend(ToyBackend(VOCAB, copying_dist))


def test_irrelevant_context_gives_zero_lift(ignoring):
    result = ignoring.context_lift("who wrote it ?", " ann", ["cats purr", "the book was by bob"])
    for c in result.contexts:
        assert c.lift == FLOAT64.approx(0.0)
        assert not c.supported and c.lifted_tokens == ()
        assert [t.lift for t in c.tokens] == FLOAT64.approx([0.0])
    assert result.total_without == pytest.approx(math.log(0.2))
    assert not result.supported


def test_context_with_the_answer_lifts_it(copying):
    result = copying.context_lift("who wrote it ?", " ann", ["cats purr", "the book was by ann"], min_lift=1.0)
    irrelevant, relevant = result.contexts
    assert irrelevant.lift == FLOAT64.approx(0.0)
    assert relevant.lift == pytest.approx(math.log(0.9 / 0.2))
    assert relevant.supported and [t.text for t in relevant.lifted_tokens] == ["ann"]
    assert result.best is relevant and result.supported


def test_token_lifts_add_up_to_the_total(copying):
    result = copying.context_lift("who wrote it ?", " ann cats purr", ["the book was by ann"])
    c = result.contexts[0]
    assert c.aligned
    assert math.fsum(t.lift for t in c.tokens) == FLOAT64.approx(c.lift)


def test_to_dict_and_dataframe(copying):
    result = copying.context_lift("who wrote it ?", " ann", ["the book was by ann"])
    data = json.loads(result.to_json())
    assert data["contexts"][0]["tokens"][0]["prob_with"] == pytest.approx(0.9)
    assert list(result.to_dataframe()["token"]) == ["ann"]


@pytest.mark.parametrize("kwargs, message", [
    ({"contexts": []}, "no contexts"),
    ({"contexts": ["cats purr", " "]}, "context 1"),
    ({"answer": ""}, "answer"),
    ({"question": "  "}, "question"),
    ({"min_lift": float("nan")}, "min_lift"),
])
def test_bad_input(ignoring, kwargs, message):
    args = {"question": "who wrote it ?", "answer": " ann", "contexts": ["cats purr"], **kwargs}
    with pytest.raises(InputError, match=message):
        ignoring.context_lift(**args)


def test_a_context_longer_than_the_window_is_reported_and_the_others_scored():
    backend = ToyBackend(VOCAB, bigram_dist, context_length=12)
    long_context = " ".join(["cats purr"] * 10)
    with pytest.raises(InputError, match="none of the 1 contexts") as info:
        context_lift(backend, "who wrote it ?", " ann", [long_context])
    assert re.match(r"context 0 \+ question \+ answer is .* more than the model's context", info.value.problems[0])
    result = context_lift(backend, "who wrote it ?", " ann", [long_context, "cats purr"])
    assert [c.context for c in result.contexts] == ["cats purr"]
    assert len(result.skipped) == 1 and result.skipped[0].startswith("context 0 + question + answer is")
    alone = context_lift(backend, "who wrote it ?", " ann", ["cats purr"])
    assert result.contexts[0].lift == alone.contexts[0].lift


def test_a_bad_template_is_an_error(ignoring):
    with pytest.raises(InputError, match="template"):
        context_lift(ignoring.backend, "who wrote it ?", " ann", ["cats purr"], template="{context}")


@pytest.mark.slow
def test_context_containing_the_answer_is_clearly_positive_on_smol(smol):
    result = smol.context_lift("Question: Who wrote the novel?\nAnswer:", " Zorblax Quint",
                               ["The novel was written in 1923 by Zorblax Quint, a Danish sailor.",
                                "The weather in the harbour was fine that summer."])
    relevant, irrelevant = result.contexts
    assert relevant.lift > 10.0
    assert relevant.lift > irrelevant.lift + 10.0
    assert relevant.supported and not irrelevant.supported
    assert relevant.aligned and len(relevant.lifted_tokens) >= 3


def test_lift_cli_on_a_toy_model(cli):
    out = cli(["lift", "-q", "the cat", "-a", " sat", "-c", "the dog sat", "-m", "toy", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["contexts"][0]["lift"] == FLOAT64.approx(0.0)  # a bigram model ignores the context
    table = cli(["lift", "-q", "the cat", "-a", " sat", "-c", "the dog sat", "-m", "toy"])
    assert "NOT supported" in table.output
