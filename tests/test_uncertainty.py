"""Uncertainty flags: thresholds, word/phrase span merging by character offsets, summaries."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logitscope import InputError
from logitscope.results import ScoreResult, TokenScore
from logitscope.confidence.uncertainty import check_thresholds, flag_uncertain, merge_spans


def scored(pieces: list[tuple[str, float | None]], entropy: float = 1.0) -> ScoreResult:
    """A ScoreResult built by hand: (token text, prob or None for unscored)."""
    tokens, pos = [], 0
    for i, (text, prob) in enumerate(pieces):
        lp = None if prob is None else math.log(prob)
        tokens.append(TokenScore(i, i, text, pos, pos + len(text), logprob=lp, rank=None if lp is None else 1,
                                 entropy=None if lp is None else entropy))
        pos += len(text)
    full = "".join(p for p, _ in pieces)
    return ScoreResult(full, None, tuple(range(len(pieces))), tuple(tokens), None, pieces[0][1] is not None)


SENTENCE = [("The", None), (" capital", 0.5), (" is", 0.9), (" Vien", 0.01), ("na", 0.9), (",", 0.02),
            (" and", 0.9), (" 17", 0.05), (" times", 0.03), (" 3", 0.9), (" is", 0.9), (" 51", 0.04), (".", 0.9)]


def test_a_sub_word_flag_flags_the_whole_word_and_neighbours_merge():
    result = flag_uncertain(scored(SENTENCE), max_prob_below=0.1, entropy_above=None)
    assert [s.text for s in result.spans] == ["Vienna,", "17 times", "51."]
    vienna = result.spans[0]
    assert vienna.token_positions == (3, 5)
    assert vienna.min_prob == pytest.approx(0.01)
    assert result.flagged == (3, 5, 7, 8, 11)


def test_entropy_threshold_flags_spread_out_positions():
    result = flag_uncertain(scored(SENTENCE, entropy=5.0), max_prob_below=None, entropy_above=4.0)
    assert len(result.flagged) == result.scored.num_scored  # every scored token had entropy 5
    assert [s.text for s in result.spans] == ["capital is Vienna, and 17 times 3 is 51."]


def test_a_whitespace_only_token_touches_the_next_word():
    result = flag_uncertain(scored([("a", None), (" ", 0.01), ("b", 0.9), (" c", 0.9)]), 0.1, None)
    assert [s.text for s in result.spans] == ["b"]


def test_summary_numbers():
    result = flag_uncertain(scored(SENTENCE), 0.1, None)
    probs = [p for _, p in SENTENCE if p is not None]
    s = result.summary()
    assert s["min_token_prob"] == pytest.approx(min(probs))
    assert s["mean_logprob"] == pytest.approx(sum(map(math.log, probs)) / len(probs))
    assert s["msp"] == pytest.approx(-sum(map(math.log, probs)))
    assert s["mean_entropy"] == pytest.approx(1.0)
    assert json.loads(result.to_json())["spans"][0]["text"] == "Vienna,"


@pytest.mark.parametrize("p, h, name", [(-0.1, None, "max_prob_below"), (1.5, None, "max_prob_below"),
                                        (float("nan"), None, "max_prob_below"), (None, -1.0, "entropy_above"),
                                        (0.1, float("nan"), "entropy_above")])
def test_thresholds_out_of_range(p, h, name):
    with pytest.raises(InputError, match=name):
        check_thresholds(p, h)


def test_both_thresholds_off_is_an_error():
    with pytest.raises(InputError, match="both thresholds are off"):
        check_thresholds(None, None)


def test_edge_thresholds_flag_nothing():
    result = flag_uncertain(scored(SENTENCE), max_prob_below=0.0, entropy_above=math.inf)
    assert result.flagged == () and result.spans == ()


def test_on_a_toy_model_flags_match_an_independent_count(bigram_model):
    result = bigram_model.uncertain("the cat sat the dog slept", max_prob_below=0.2, entropy_above=None)
    expected = [t.position for t in result.scored.scored_tokens if t.prob < 0.2]
    assert list(result.flagged) == expected
    full = result.scored.text
    for span in result.spans:
        assert full[span.start:span.end] == span.text


def test_nothing_scored_is_an_error():
    with pytest.raises(InputError, match="no token of the text was scored"):
        flag_uncertain(scored([("The", None)]))


words = st.lists(st.text(alphabet="abc", min_size=1, max_size=3), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(words=words, data=st.data())
def test_spans_are_disjoint_sorted_and_cover_every_flagged_token(words, data):
    pieces = []
    for i, w in enumerate(words):
        cut = data.draw(st.integers(0, len(w)))
        for part in ((" " if i else "") + w[:cut], w[cut:]):
            if part:
                pieces.append((part, data.draw(st.sampled_from([0.01, 0.5]))))
    result = flag_uncertain(scored(pieces), 0.1, None)
    ends = [(s.start, s.end) for s in result.spans]
    assert all(a[1] < b[0] for a, b in zip(ends, ends[1:]))
    for pos in result.flagged:
        tok = result.scored.tokens[pos]
        word_start = tok.start + len(tok.text) - len(tok.text.lstrip())  # skip the token's leading space
        holding = [s for s in result.spans if pos in s.token_positions]
        assert len(holding) == 1 and holding[0].start <= word_start and tok.end <= holding[0].end
    assert merge_spans(result.scored.text, []) == ()


def test_uncertain_cli(cli, tmp_path):
    out = cli(["uncertain", "the cat sat the dog slept", "-m", "toy", "--max-prob-below", "0.2", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["summary"]["num_scored"] == 6  # the toy model puts <BOS> first: every word scored
    page = tmp_path / "u.html"
    table = cli(["uncertain", "the cat sat", "-m", "toy", "--html", str(page)])
    assert table.exit_code == 0 and page.exists()
    bad = cli(["uncertain", "the cat", "-m", "toy", "--max-prob-below", "2"])
    assert bad.exit_code == 2 and "--max-prob-below=2.0 is out of range" in bad.output


def test_model_defaults_are_the_documented_ones():
    import inspect

    from logitscope import Model
    from logitscope.confidence.uncertainty import DEFAULT_MAX_ENTROPY, DEFAULT_MAX_PROB

    params = inspect.signature(Model.uncertain).parameters
    assert params["max_prob_below"].default == DEFAULT_MAX_PROB
    assert params["entropy_above"].default == DEFAULT_MAX_ENTROPY
