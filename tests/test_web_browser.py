"""The web app in Debian's headless Chromium against a real uvicorn on 127.0.0.1.

One test per interaction, on exact toy models: the numbers on the page equal the
library's to the printed precision. Every test also checks that no request left
the page's origin and that the console stayed free of errors.
"""

from __future__ import annotations

import json
import os

import pytest

import logitscope
from logitscope.core.processors import SamplerConfig
from webapp import serve, toy

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
SCREENSHOTS = os.environ.get("LOGITSCOPE_UI_SCREENSHOTS")  # a folder: save each panel (scripts/ui_screenshots.py)

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed")]

TEXT = "the cat sat on the mat"
SCRIPT = "<script>alert(1)</script>"


def printed(p: float) -> str:
    """The page's probability format (common.js fmtProb)."""
    return f"{p:.4f}" if p >= 1e-3 else f"{p:.2e}".replace("e-0", "e-")


@pytest.fixture(scope="module")
def models():
    return {"toy": toy(extra=(f"the cat sat on the mat {SCRIPT} <b>bold</b>",)), "toy2": logitscope.load("toy")}


@pytest.fixture(scope="module")
def server(models):
    with serve(models) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


class Watched:
    """A page whose requests and console errors are recorded."""

    def __init__(self, browser, url, viewport):
        self.context = browser.new_context(viewport=viewport, accept_downloads=True)
        self.page = self.context.new_page()
        self.requests, self.errors, self.dialogs, self.allowed = [], [], [], []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(url)
        self.page.wait_for_selector("#model option", state="attached")

    def check(self, origin: str) -> None:
        outside = [u for u in self.requests if not u.startswith(origin + "/") and not u.startswith(("data:", "blob:"))]
        assert outside == [], f"requests left the page's origin: {outside}"
        errors = [e for e in self.errors if not any(a in e for a in self.allowed)]
        assert errors == [], f"console errors: {errors}"
        assert self.dialogs == []
        self.context.close()


@pytest.fixture
def watched(browser, server):
    made = []

    def open_page(viewport=None):
        made.append(Watched(browser, server, viewport or {"width": 1280, "height": 800}))
        return made[-1]

    yield open_page
    for w in made:
        w.check(server)


def shot(page, name):
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"))


def read(page, text, context=None):
    page.fill("#text", text)
    if context:
        page.click("details summary")
        page.fill("#context", context)
    page.click("#read-go")
    page.wait_for_selector(".reading .tok")


# -- 1. read a text ---------------------------------------------------------------------------------

def test_read_a_text_tooltip_side_panel_continue_and_download(watched, models):
    page = watched().page
    model = models["toy"]
    read(page, TEXT)
    score = model.score(TEXT, top_k=10)
    tip, tokens = page.locator("#tip"), page.locator(".reading .tok")
    for i, tok in enumerate(score.scored_tokens):
        tokens.nth(i).hover()
        tip.wait_for(state="visible")
        assert tip.locator(".p").inner_text() == printed(tok.prob)
        assert tip.locator(".rank").inner_text() == str(tok.rank)
        assert tip.locator(".alts li").count() == 10
    summary = page.locator(".summary").inner_text()
    assert f"total log-prob {score.total_logprob:.3f}" in summary and f"perplexity {score.perplexity:.3f}" in summary
    assert f"{score.bits_per_byte:.3f} bits/byte" in summary
    assert f"{len(model.uncertain(TEXT).spans)} uncertain span" in summary
    page.select_option("#colorby", "rank")
    assert tokens.first.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(45, 164, 78)"  # top-10 green
    assert "GLTR" in page.inner_text("#legend")
    tokens.nth(2).click()  # "sat" after "the cat"
    page.wait_for_selector("#side:not([hidden])")
    expected = model.next_token("the cat", top_k=50)
    assert page.locator("#side-bars rect").count() == len(expected.top)
    assert f"{100 * sum(c.prob for c in expected.top):.1f}% of the mass" in page.inner_text("#side-meta")
    shot(page, "read")
    page.select_option("#alt", str(model.backend.index["slept"]))
    page.click("#continue")
    page.wait_for_function("() => document.getElementById('continuation').textContent.includes('→')")
    greedy = model.generate("the cat slept", 20, SamplerConfig.greedy()).text
    assert page.inner_text("#continuation").endswith(greedy)
    with page.expect_download() as download:
        page.click("#dl-json")
    saved = json.loads(open(download.value.path()).read())
    assert saved[0]["score"]["total_logprob"] == score.total_logprob


def test_html_in_text_is_shown_as_text_and_never_run(watched):
    page = watched().page
    read(page, f"the cat sat on the mat {SCRIPT} <b>bold</b>")
    assert page.locator(".reading .tok", has_text=SCRIPT).count() == 1
    assert page.locator(".reading .tokens b").count() == 0 and page.evaluate("document.scripts.length") == 1
    page.locator(".reading .tok", has_text=SCRIPT).hover()
    assert SCRIPT in page.inner_text("#tip")


def test_bad_input_is_shown_inline(watched, tmp_path):
    w = watched()
    page = w.page
    w.allowed.append("the server responded with a status of 400")  # Chromium logs the refused request itself
    page.click("#read-go")
    assert "empty" in page.inner_text("#error")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 na\xefve".encode("latin-1"))
    page.set_input_files("#file", str(bad))
    page.wait_for_function("() => document.getElementById('error').textContent.includes('UTF-8')")
    assert "latin1.txt is not UTF-8" in page.inner_text("#error")
    read_attempt = "the zebra"
    page.fill("#text", read_attempt)
    page.click("#read-go")
    page.wait_for_function("() => document.getElementById('error').textContent.includes('zebra')")
    assert "not in the toy vocabulary" in page.inner_text("#error")
    good = tmp_path / "good.txt"
    good.write_text(TEXT, encoding="utf-8")
    page.set_input_files("#file", str(good))
    page.wait_for_function(f"() => document.getElementById('text').value === {json.dumps(TEXT)}")
    assert page.locator("#error").is_hidden()


# -- 2. sampler lab --------------------------------------------------------------------------------------

def set_slider(page, name, value):
    page.eval_on_selector(f"#lab-{name}", "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", str(value))


def lab_settled(page, rev):
    page.wait_for_function(f"() => Number(document.getElementById('lab-stages').dataset.rev) > {rev}")
    page.wait_for_timeout(50)
    return int(page.eval_on_selector("#lab-stages", "el => el.dataset.rev"))


def test_sampler_lab_equals_model_chain_without_rerunning_the_model(watched, models):
    page = watched().page
    model = models["toy"]
    page.click("#tab-lab")
    page.fill("#lab-prompt", "the cat")
    page.click("#lab-go")
    rev = lab_settled(page, 0)
    calls = model.backend.calls
    for name, value in [("temperature", 0.7), ("top_k", 5), ("top_p", 0.9), ("min_p", 0.05)]:
        set_slider(page, name, value)
        rev = lab_settled(page, rev)
    page.wait_for_timeout(200)
    assert model.backend.calls == calls  # the sliders re-ran the processors only
    chain = model.chain("the cat", SamplerConfig(temperature=0.7, top_k=5, top_p=0.9, min_p=0.05))
    last = chain.stages[-1]
    assert page.inner_text("#lab-survivors") == str(last.survivors)
    assert page.inner_text("#lab-top-prob") == printed(last.top[0].prob)
    assert page.locator("#lab-stages figure").count() == len(chain.stages)
    page.click("#lab-draw")
    page.wait_for_selector(".draws")
    sample = model.sample("the cat", 1000, SamplerConfig(temperature=0.7, top_k=5, top_p=0.9, min_p=0.05), seed=0)
    assert f"χ² = {sample.chi_square:.2f}, dof {sample.dof}" in page.inner_text(".draws caption")
    shot(page, "lab")


# -- 3. step by step -------------------------------------------------------------------------------------

def test_step_by_step_force_undo_tree_and_beam(watched, models):
    page = watched().page
    model = models["toy"]
    page.click("#tab-step")
    page.fill("#step-prompt", "the")
    page.fill("#step-seed", "4")
    page.click("#step-start")
    page.wait_for_selector(".cand")
    expected = model.generate("the", 3, SamplerConfig(), seed=4)
    for n in range(1, len(expected.steps) + 1):
        page.click("#step-one")
        page.wait_for_function(f"() => document.querySelectorAll('#step-text .gen').length === {n}")
    shown = page.locator("#step-text .gen").all_inner_texts()
    assert shown == [s.text if s.token_id != model.backend.eos_token_id else "⏎EOS" for s in expected.steps]
    page.click("#step-undo")
    page.wait_for_function(f"() => document.querySelectorAll('#step-text .gen').length === {len(expected.steps) - 1}")
    candidate = page.locator(".cand").nth(1)
    forced = candidate.get_attribute("data-token")
    candidate.click()
    page.wait_for_function("() => document.querySelector('.node.current') && "
                           f"document.querySelectorAll('.node').length === {len(expected.steps) + 2}")
    assert page.locator(".node").count() == len(expected.steps) + 2  # both branches stay in the tree
    node = page.locator(".node.current")
    prob = model.score("the " + " ".join(s.text for s in expected.steps[:-1]) + " " + model.backend.token_text(int(forced)))
    assert f"p={printed(prob.tokens[-1].prob)}" in node.inner_text()
    page.locator(".node", has_text="prompt").click()
    page.wait_for_function("() => document.querySelectorAll('#step-text .gen').length === 0")
    page.fill("#step-n", "3")
    page.click("#step-run")
    page.wait_for_function("() => document.querySelectorAll('#step-text .gen').length > 0")
    page.click("#step-beam")
    page.wait_for_selector("#step-beams table")
    beam = model.beam_search("the", 4, 12)
    assert beam.greedy.text in page.inner_text("#step-beams") and beam.beams[0].text in page.inner_text("#step-beams")
    shot(page, "step")


def test_tree_button_shows_model_tree_and_follows_a_branch(watched, models):
    page = watched().page
    model = models["toy"]
    page.click("#tab-step")
    page.fill("#step-prompt", "the")
    page.click("#step-start")
    page.wait_for_selector(".cand")
    page.locator(".cand", has_text='"cat"').click()
    page.wait_for_function("() => document.querySelectorAll('#step-text .gen').length === 1")
    page.fill("#step-tree-depth", "2")
    page.fill("#step-tree-branch", "3")
    page.click("#step-tree-go")
    page.wait_for_selector("#step-possible .branch")
    expected = model.tree("the cat", depth=2, branch=3)
    shown = page.locator("#step-possible .branch")
    assert shown.count() == sum(1 for _ in expected.nodes())
    for i, (above, node) in enumerate(expected.nodes()):  # depth first, as the page lists them
        assert shown.nth(i).inner_text() == f"{json.dumps(node.text)} p={printed(node.prob)} path p={printed(node.cum_prob)}"
    eos = model.backend.eos_token_id
    above, leaf = next((a, n) for a, n in expected.nodes() if n.depth == 2 and n.token_id != eos)
    page.locator(f'#step-possible .branch[data-path="{above[0].token_id},{leaf.token_id}"]').click()
    page.wait_for_function("() => document.querySelectorAll('#step-text .gen').length === 3")
    assert page.locator("#step-text .gen").all_inner_texts() == ["cat", above[0].text, leaf.text]
    shot(page, "step-tree")


# -- 4. rank and compare -----------------------------------------------------------------------------------

def test_rank_candidates_and_lift(watched, models):
    page = watched().page
    model = models["toy"]
    page.click("#tab-rank")
    page.fill("#rank-prompt", "the cat")
    page.fill("#rank-candidates", " sat\n slept\n mat")
    page.fill("#rank-context", "the dog sat")
    page.click("#rank-go")
    page.wait_for_selector(".lift")
    ranked = model.rank("the cat", [" sat", " slept", " mat"])
    rows = page.locator(".ranked tr")
    for i, c in enumerate(ranked.candidates):
        cells = rows.nth(i + 1).locator("td").all_inner_texts()
        assert cells[2].startswith(f"{c.score('sum'):.3f}") and cells[5].startswith(f"{c.score('pmi'):.3f}")
    lift = model.context_lift("the cat", " sat", ["the dog sat"]).contexts[0].lift
    assert f"{lift:.3f}" in page.locator(".lift tr").nth(1).inner_text()
    shot(page, "rank")


# -- 5. two models, phone size, keyboard ---------------------------------------------------------------------

def test_two_models_side_by_side(watched, models):
    page = watched().page
    assert page.locator("#model option").all_inner_texts()[1].startswith("toy2")
    page.select_option("#compare", "toy2")
    read(page, TEXT)
    page.wait_for_function("() => document.querySelectorAll('.reading').length === 2")
    summaries = page.locator(".summary").all_inner_texts()
    for name, line in zip(["toy", "toy2"], summaries):
        assert line.startswith(name) and f"total log-prob {models[name].score(TEXT).total_logprob:.3f}" in line
    shot(page, "compare")


def test_phone_viewport_and_keyboard_only(watched, models):
    page = watched({"width": 390, "height": 844}).page
    page.keyboard.press("Tab")
    for _ in range(12):  # model picker, the tabs, then the text box: all reachable by Tab
        if page.evaluate("document.activeElement.id") == "text":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "text"
    page.keyboard.type(TEXT)
    page.keyboard.press("Tab")  # past the context toggle and the other controls to the Read button
    for _ in range(10):
        if page.evaluate("document.activeElement.id") == "read-go":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "read-go"
    page.keyboard.press("Enter")
    page.wait_for_selector(".reading .tok")
    page.focus(".tokens")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert page.locator("#tip .p").inner_text() == printed(models["toy"].score(TEXT).scored_tokens[1].prob)
    page.keyboard.press("Enter")
    page.wait_for_selector("#side:not([hidden])")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for label in page.locator("input, select, textarea").all():
        assert label.evaluate("el => !!(el.labels && el.labels.length) || el.hasAttribute('aria-label')")
    shot(page, "phone")


@pytest.mark.slow
def test_bundled_model_reading_matches_model_score(browser, smol):
    text = "The capital of France is Paris. It is known for the Eiffel Tower."
    with serve({"bundled": smol}) as url:
        w = Watched(browser, url, {"width": 1280, "height": 800})
        read(w.page, text)
        score = smol.score(text, top_k=10)
        for i in (1, 5, 8):
            w.page.locator(".reading .tok").nth(i).hover()
            assert w.page.locator("#tip .p").inner_text() == printed(score.scored_tokens[i].prob)
        shot(w.page, "read-bundled")
        w.check(url)
