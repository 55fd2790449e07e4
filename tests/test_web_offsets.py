"""Any text read back exactly: the web page, the static HTML heatmap and the terminal heatmap.

The API's offsets count code points (Python str indices); JavaScript strings count UTF-16
units, so a page that sliced ``text.slice(start, end)`` shifted every box after the first
emoji. Random strings from the classes that break naive slicing (emoji, ZWJ sequences, flags,
combining marks, right-to-left scripts, CRLF, mathematical alphanumerics) go through a tiny
Llama with a byte-level BPE tokenizer: the page's text equals the input, each box holds its
own piece (``views.text.display_pieces``: the same cut the terminal and HTML views use), and
a character split over byte-level tokens sits whole in the first one's box.
"""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logitscope.views.html import render_html
from logitscope.views.terminal import heatmap
from logitscope.views.text import display_pieces
from webapp import CHROMIUM, serve, tiny

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed")]

ATOMS = {
    "emoji": ["🍕", "😀", "👍🏽", "🎉", "🦄"],
    "zwj": ["👩\u200d👩\u200d👧", "🧑\u200d💻", "🏳\ufe0f\u200d🌈", "👨\u200d👩\u200d👧\u200d👦"],
    "flags": ["🇫🇷", "🇯🇵", "🇺🇦", "🇧🇷"],
    "combining": ["e\u0301", "n\u0303", "a\u030a\u0323", "Z\u0335\u0321"],
    "rtl": ["שלום", "עולם", "مرحبا", "سلام", "\u200fא"],
    "newlines": ["\r\n", "\n", "\r\n\r\n"],
    "math": ["𝐀", "𝔸", "𝒳", "𝟘", "𝛑"],
    "latin": ["the", "cat", "naïve", "café", " ", ",", ".", "  "],
}
RANGES = [(0x1F300, 0x1FAFF), (0x1D400, 0x1D7FF), (0x0300, 0x036F), (0x05D0, 0x05EA), (0x0627, 0x064A),
          (0x1F1E6, 0x1F1FF), (0x200D, 0x200F)]  # emoji, math letters, combining marks, Hebrew, Arabic, flags, ZWJ
pieces = st.one_of(st.sampled_from([a for atoms in ATOMS.values() for a in atoms]),
                   *(st.characters(min_codepoint=lo, max_codepoint=hi) for lo, hi in RANGES))
texts = st.lists(pieces, min_size=1, max_size=10).map("".join).filter(lambda t: t.strip())
MIXED = "I like 🍕 pizza 👩‍👩‍👧 and שלום עולם, naïve café"


@pytest.fixture(scope="module")
def model():
    return tiny()


@pytest.fixture(scope="module")
def pages(model, browser):
    """The app's page (tiny served) and a blank page for the static HTML heatmap."""
    with serve({"tiny": model}) as url:
        app, blank = browser.new_page(), browser.new_page()
        app.goto(url)
        app.wait_for_selector("body[data-ready]", state="attached")
        yield app, blank
        app.close()
        blank.close()


def read_file(page, text: str) -> list[tuple[str, int | str | None]]:
    """Read ``text`` as a dropped file (kept exactly: a textarea would turn CR LF into LF); the
    page's pieces as (text, token index | "ctx" | None for text between tokens)."""
    page.evaluate("() => document.getElementById('readings').replaceChildren()")
    page.set_input_files("#file", files=[{"name": "t.txt", "mimeType": "text/plain", "buffer": text.encode()}])
    page.wait_for_function("() => document.getElementById('text').value.length > 0")
    page.click("#read-go")
    page.wait_for_selector(".reading .tokens")
    return page.evaluate("""() => [...document.querySelector('.reading .tokens').childNodes].map(n =>
        [n.textContent, n.nodeType === 3 ? null : n.classList.contains('ctx') ? 'ctx' : Number(n.dataset.i)])""")


def expected_pieces(result) -> list[list]:
    index = {id(t): i for i, t in enumerate(result.tokens)}
    return [[piece, None if tok is None else index[id(tok)] if tok.scored else "ctx"]
            for piece, tok in display_pieces(result)]


def check_everywhere(model, pages, text: str) -> None:
    app, blank = pages
    result = model.score(text, top_k=10)  # what the page's read runs (same windows, same encoding)
    assert "".join(p for p, _ in display_pieces(result)) == text
    # the web page: the whole text, every box its own piece
    shown = read_file(app, text)
    assert "".join(p for p, _ in shown) == text
    assert shown == expected_pieces(result)
    # the static HTML heatmap (score --html)
    blank.set_content(render_html(result))
    assert blank.eval_on_selector("#text", "el => el.textContent") == text
    spans = blank.eval_on_selector_all("#text .tok", "els => els.map(e => e.textContent)")
    assert spans == [p for p, tok in display_pieces(result) if tok is not None]
    # the terminal heatmap: the text, one span per piece, less the CR of a CR LF (rich drops control
    # codes: a CR would move a terminal's cursor back over the line; the LF still breaks it)
    from rich.console import Console

    rendered, shown = heatmap(result), [p.replace("\r", "") for p, _ in display_pieces(result)]
    assert rendered.plain == text.replace("\r", "")
    assert [rendered.plain[s.start:s.end] for s in rendered.spans] == shown
    console = Console(file=io.StringIO(), width=10_000, color_system=None, soft_wrap=True)
    console.print(rendered, end="")
    assert console.file.getvalue() == text.replace("\r", "")


def test_the_mixed_sentence_is_read_back_exactly(model, pages):
    check_everywhere(model, pages, MIXED)
    app, _ = pages
    app.fill("#text", MIXED)  # typed rather than dropped
    app.click("#read-go")
    app.wait_for_function(f"() => document.querySelector('.reading .tokens')?.textContent === {MIXED!r}")
    boxes = app.locator(".reading .tok")
    assert "🍕" in boxes.all_inner_texts() and "\ufffd" not in app.inner_text(".reading .tokens")


def test_a_crlf_file_keeps_its_carriage_returns(model, pages):
    check_everywhere(model, pages, "line one\r\nline two\r\n")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts)
def test_random_text_of_every_script_is_read_back_exactly(model, pages, text):
    check_everywhere(model, pages, text)
