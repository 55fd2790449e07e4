"""Heatmaps: colours, GLTR buckets, histograms and the self-contained HTML page."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

import logitscope
from logitscope import InputError
from logitscope.backends.toy import ToyBackend
from logitscope.views.colours import (COLOR_MODES, check_mode, contrast, entropy_colour, luminance, prob_colour, rank_bucket,
                                      text_colour)
from logitscope.views.html import render_html, write_html
from logitscope.views.terminal import heatmap as terminal_heatmap
from logitscope.views.text import prob_histogram, rank_histogram
from tolerances import FLOAT32_RELATIVE

TABLE = {
    ("<BOS>",): {"x<y&z": 0.6, "a": 0.4},
    ("<BOS>", "x<y&z"): {"cat": 0.3, "dog": 0.5, "<EOS>": 0.2},
    ("<BOS>", "x<y&z", "cat"): {"sat": 0.0005, "ran": 0.9995},
}


@pytest.fixture
def odd_result():
    """Scored text whose first token needs HTML escaping."""
    model = logitscope.from_backend(ToyBackend.from_table(TABLE, default={"<EOS>": 1.0}))
    return model.score("x<y&z cat sat", top_k=3, bos=True)


class SpanCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.spans, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "span" and "tok" in dict(attrs).get("class", ""):
            self.spans.append(dict(attrs))


def parse(page: str) -> SpanCollector:
    collector = SpanCollector()
    collector.feed(page)
    return collector


@pytest.mark.parametrize("rank, bucket", [(1, 0), (10, 0), (11, 1), (100, 1), (101, 2), (1000, 2), (1001, 3)])
def test_gltr_rank_buckets(rank, bucket):
    assert rank_bucket(rank) == bucket


@given(st.floats(1e-6, 1.0), st.floats(1e-6, 1.0))
def test_classic_prob_colour_moves_from_red_to_green(p, q):
    def hue_order(colour):  # more green and less red as p grows
        r, g = int(colour[1:3], 16), int(colour[3:5], 16)
        return g - r
    if p < q:
        assert hue_order(prob_colour(p, "classic")) <= hue_order(prob_colour(q, "classic"))


@given(st.floats(1e-6, 1.0), st.floats(1e-6, 1.0))
def test_default_prob_colour_grows_lighter_with_p(p, q):
    """Viridis: lightness alone orders the scale, so it reads without telling red from green."""
    if p < q:
        assert luminance(prob_colour(p)) <= luminance(prob_colour(q))


@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))
def test_text_on_any_background_meets_wcag_aa(r, g, b):
    background = f"#{r:02x}{g:02x}{b:02x}"
    assert contrast(text_colour(background), background) >= 4.5


def test_colour_ends_and_readable_text():
    assert prob_colour(1.0) == "#fde725" and prob_colour(1e-4) == "#440154"  # viridis' ends
    assert prob_colour(1e-5) == prob_colour(1e-4)  # below the floor everything is equally dark
    assert entropy_colour(100.0) == entropy_colour(6.0)
    assert text_colour("#ffffff") == "#000000" and text_colour("#000000") == "#ffffff"
    assert text_colour("#fde725") == "#000000" and text_colour("#440154") == "#ffffff"
    with pytest.raises(InputError, match="palette must be one of"):
        prob_colour(0.5, "rainbow")


def test_unknown_mode_is_an_error(odd_result):
    with pytest.raises(InputError, match="color_by must be one of"):
        check_mode("loudness")
    with pytest.raises(InputError):
        render_html(odd_result, "loudness")


def test_page_has_one_span_per_token_with_the_right_numbers(odd_result):
    page = render_html(odd_result, "rank")
    spans = parse(page).spans
    shown = [t for t in odd_result.tokens if t.role != "prefix"]
    assert len(spans) == len(shown)
    for attrs, tok in zip(spans, shown):
        assert attrs["data-token"] == tok.text
        assert float(attrs["data-prob"]) == pytest.approx(tok.prob, rel=1e-5)
        assert int(attrs["data-rank"]) == tok.rank
        assert float(attrs["data-entropy"]) == pytest.approx(tok.entropy, rel=1e-5)
        alts = json.loads(attrs["data-alts"])
        assert [a[0] for a in alts] == [a.text for a in tok.alternatives]
        assert {f"data-c-{m}" for m in COLOR_MODES} <= set(attrs)
        assert attrs["data-c-rank"] in attrs["style"]  # coloured by the chosen mode


def test_page_is_self_contained_and_escaped(odd_result, tmp_path):
    page = render_html(odd_result)
    tags = parse(page).tags
    assert not [a for t, a in tags if t in ("script", "img", "link", "iframe") and ("src" in a or "href" in a)]
    assert "@import" not in page and "url(" not in page
    assert "x&lt;y&amp;z" in page and "x<y&z cat" not in page
    out = write_html(odd_result, tmp_path / "h.html")
    assert out.read_text(encoding="utf-8") == page
    with pytest.raises(InputError, match="directory"):
        write_html(odd_result, tmp_path)


def test_histograms_count_every_scored_token(odd_result):
    n = odd_result.num_scored
    assert sum(rank_histogram(odd_result)) == n
    assert sum(prob_histogram(odd_result)) == n
    expected = [0] * 10
    for t in odd_result.scored_tokens:
        expected[min(int(t.prob * 10), 9)] += 1
    assert prob_histogram(odd_result) == expected
    page = render_html(odd_result)
    assert page.count("<svg") == 2


def test_terminal_heatmap_keeps_the_text(odd_result):
    for mode in COLOR_MODES:
        assert terminal_heatmap(odd_result, mode).plain == "x<y&z cat sat"


def test_score_cli_writes_html_and_colours_by_rank(cli, tmp_path):
    page = tmp_path / "s.html"
    out = cli(["score", "the cat sat on the mat", "-m", "toy", "--html", str(page), "--color-by", "entropy"])
    assert out.exit_code == 0, out.output
    assert "colour by entropy" in out.output and "rank buckets" in out.output
    spans = parse(page.read_text(encoding="utf-8")).spans
    assert len(spans) == 6
    as_json = cli(["score", "the cat sat", "-m", "toy", "--json", "--html", str(page)])
    assert json.loads(as_json.stdout)["num_scored"] == 3
    bad = cli(["score", "the cat", "-m", "toy", "--color-by", "loud"])
    assert bad.exit_code == 2


@pytest.mark.slow
def test_heatmap_on_the_bundled_model(smol, tmp_path):
    path = smol.heatmap_html("The capital of Australia is Vienna.", tmp_path / "v.html", color_by="prob")
    spans = parse(path.read_text(encoding="utf-8")).spans
    vienna = next(s for s in spans if s["data-token"] == " Vienna")
    ref = next(t for t in smol.score("The capital of Australia is Vienna.").tokens if t.text == " Vienna")
    assert float(vienna["data-prob"]) == FLOAT32_RELATIVE.approx(ref.prob)
    assert math.isclose(float(vienna["data-logprob"]), ref.logprob, rel_tol=1e-4)


def test_display_pieces_keep_gaps_and_share_a_split_character():
    from logitscope.views.text import display_pieces
    from logitscope.results import ScoreResult, TokenScore

    # 'é' split into two byte-level tokens with the same character span, then a gap the tokenizer skipped
    toks = (TokenScore(0, 1, "\ufffd", 0, 1, logprob=-1.0, rank=1, entropy=0.5),
            TokenScore(1, 2, "\ufffd", 0, 1, logprob=-2.0, rank=2, entropy=0.5),
            TokenScore(2, 3, "b", 2, 3, logprob=-0.5, rank=1, entropy=0.5))
    result = ScoreResult("é b", None, (1, 2, 3), toks, None, True)
    pieces = display_pieces(result)
    assert "".join(p for p, _ in pieces) == "é b"  # the split character once, whole: no '\ufffd'
    assert [t.position if t else None for _, t in pieces] == [0, None, 2]


def test_cli_palette_colours_the_html_heatmap(cli, tmp_path):
    out = tmp_path / "heat.html"
    result = cli(["score", "the cat sat", "-m", "toy", "--html", str(out), "--palette", "classic"])
    assert result.exit_code == 0
    scored = logitscope.load("toy").score("the cat sat", top_k=3).scored_tokens
    spans = [s for s in parse(out.read_text(encoding="utf-8")).spans if "data-c-prob" in s]
    assert [s["data-c-prob"] for s in spans] == [prob_colour(t.prob, "classic") for t in scored]
    assert [s["data-f-prob"] for s in spans] == [text_colour(prob_colour(t.prob, "classic")) for t in scored]
    assert cli(["score", "the cat sat", "-m", "toy", "--palette", "rainbow"]).exit_code != 0
