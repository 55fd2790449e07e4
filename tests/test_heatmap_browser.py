"""The HTML heatmap in a real headless Chromium (Debian's, never a downloaded one)."""

from __future__ import annotations

import os

import pytest

import logitscope
from logitscope.backends.toy import ToyBackend
from logitscope.views.html import write_html
from webapp import CHROMIUM


pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed")]

TABLE = {
    ("<BOS>",): {"the": 0.6, "a": 0.4},
    ("<BOS>", "the"): {"cat": 0.3, "dog": 0.5, "<EOS>": 0.2},
    ("<BOS>", "the", "cat"): {"sat": 0.0005, "ran": 0.9995},
}


@pytest.fixture(scope="module")
def page(browser):
    yield browser.new_page()


def test_hovering_a_token_shows_its_probability(page, tmp_path):
    model = logitscope.from_backend(ToyBackend.from_table(TABLE, default={"<EOS>": 1.0}))
    result = model.score("the cat sat", top_k=3, bos=True)
    path = write_html(result, tmp_path / "heat.html", color_by="rank")
    page.goto(path.resolve().as_uri())
    tip = page.locator("#tip")
    assert not tip.is_visible()
    for word, shown in [("cat", "0.3000"), ("sat", "5.00e-4")]:  # tiny probabilities in scientific notation
        page.locator(".tok", has_text=word).hover()
        tip.wait_for(state="visible", timeout=5000)
        assert tip.locator(".p").inner_text() == shown
        assert word in tip.inner_text()
    assert "ran" in tip.inner_text()  # the top alternative of 'sat' is listed


def test_colour_selector_recolours_tokens(page, tmp_path):
    model = logitscope.from_backend(ToyBackend.from_table(TABLE, default={"<EOS>": 1.0}))
    path = write_html(model.score("the cat sat", top_k=3, bos=True), tmp_path / "heat.html", color_by="prob")
    page.goto(path.resolve().as_uri())
    token = page.locator(".tok", has_text="sat")
    before = token.evaluate("el => el.style.background")
    page.select_option("#colorby", "entropy")
    after = token.evaluate("el => el.style.background")
    expected = token.evaluate("el => el.dataset.cEntropy")
    assert before != after
    assert _rgb_to_hex(after) == expected


def _rgb_to_hex(css: str) -> str:
    r, g, b = (int(v) for v in css[css.index("(") + 1: css.index(")")].split(","))
    return f"#{r:02x}{g:02x}{b:02x}"
