"""The web app in Debian's headless Chromium against a real uvicorn on 127.0.0.1.

One test per interaction, on exact toy models (and a tiny random Llama with a byte-level
tokenizer where the text needs one): the numbers on the page equal the library's to the
printed precision. Every test also checks that no request left the page's origin and that
the console stayed free of errors. Layout, accessibility and presentation mode are in
test_web_layout.py; offsets for every script in test_web_offsets.py.
"""

from __future__ import annotations

import json
import math
import os

import pytest

import logitscope
from logitscope.core.processors import SamplerConfig
from logitscope.views.html import render_html
from webapp import CHROMIUM, Watched, printed, serve, tiny, toy

SCREENSHOTS = os.environ.get("LOGITSCOPE_UI_SCREENSHOTS")  # a folder: save each panel (scripts/ui_screenshots.py)

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed")]

TEXT = "the cat sat on the mat"
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def models():
    slow = toy()
    slow.backend.delay = 0.1  # 100 ms per forward pass: long enough to see the busy bar and cancel
    return {"toy": toy(extra=(f"the cat sat on the mat {SCRIPT} <b>bold</b>",)), "toy2": logitscope.load("toy"),
            "tiny": tiny(), "slow": slow}


@pytest.fixture(scope="module")
def server(models):
    with serve(models) as url:
        yield url


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


def read(page, text, context=None, model=None):
    if model:
        page.select_option("#model", model)
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
    assert tokens.first.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(253, 231, 37)"  # top-10
    assert "GLTR" in page.inner_text("#legend")
    tokens.nth(2).hover()
    tip.wait_for(state="visible")
    tokens.nth(2).click()  # "sat" after "the cat"
    page.wait_for_selector("#side:not([hidden])")
    assert tip.is_hidden()  # the tooltip never covers the panel
    expected = model.next_token("the cat", top_k=50)
    assert page.locator("#side-bars .brow").count() == len(expected.top)
    assert page.locator("#side-bars .brow.chosen .blabel").inner_text() == '"sat"'
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
    page.select_option("#palette", "classic")
    with page.expect_download() as download:
        page.click("#dl-html")  # the CLI's heatmap, in the colours and mode chosen on the page
    assert open(download.value.path(), encoding="utf-8").read() == render_html(score, "rank", palette_name="classic")


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


MIXED = "I like 🍕 pizza 👩‍👩‍👧 and שלום עולם, naïve café"


def token_box(page, index):
    return page.locator(f'.reading .tok[data-i="{index}"]')


def test_side_panel_shows_the_token_read_even_beyond_the_top_50(watched, models):
    page = watched().page
    read(page, MIXED, model="tiny")
    score = models["tiny"].score(MIXED, top_k=10)
    i, tok = next((i, t) for i, t in enumerate(score.tokens) if t.scored and t.rank > 60 and t.end > t.start)
    box = token_box(page, i)
    box.hover()
    page.wait_for_selector("#tip:not([hidden])")
    box.click()
    page.wait_for_selector("#side:not([hidden])")
    assert page.locator("#tip").is_hidden()
    rows = page.locator("#side-bars .brow")
    assert rows.count() == 52  # the top 50, a gap, the token read
    assert rows.nth(50).inner_text().startswith(f"⋯ {tok.rank - 51} more ⋯")
    assert "chosen" in rows.nth(51).get_attribute("class")
    assert rows.nth(51).locator(".bnote").inner_text() == f"{printed(tok.prob)} rank {tok.rank}"
    assert f"rank {tok.rank};" in page.inner_text("#side-meta")
    page.keyboard.press("Escape")  # closes the panel; the focus goes back to the text
    assert page.locator("#side").is_hidden() and page.evaluate("document.activeElement.classList.contains('tokens')")


def test_a_character_split_over_byte_tokens_is_one_box_listing_them_all(watched, models):
    page = watched().page
    read(page, MIXED, model="tiny")
    score = models["tiny"].score(MIXED, top_k=10)
    pizza = [i for i, t in enumerate(score.tokens) if MIXED[t.start:t.end] == "🍕"]
    assert len(pizza) > 1  # the tokenizer splits the emoji into byte-level tokens
    box = token_box(page, pizza[0])
    assert box.inner_text() == "🍕" and "bytes" in box.get_attribute("class")
    assert box.get_attribute("data-more") == ",".join(map(str, pizza[1:]))
    for i in pizza[1:]:
        assert token_box(page, i).count() == 0  # no empty box, no half character
    box.hover()
    tip = page.locator("#tip")
    assert f"is {len(pizza)} byte-level tokens" in tip.inner_text()
    assert tip.locator(".p").all_inner_texts() == [printed(score.tokens[i].prob) for i in pizza]
    assert tip.locator(".rank").all_inner_texts() == [str(score.tokens[i].rank) for i in pizza]


def test_colours_are_the_views_colours_in_both_palettes(watched, models):
    from logitscope.views.colours import legend_swatches, prob_colour, rank_colour, text_colour

    page = watched().page
    read(page, MIXED, model="tiny")
    score = models["tiny"].score(MIXED, top_k=10)
    hexed = "el => [getComputedStyle(el).backgroundColor, getComputedStyle(el).color]"
    for palette, mode, colour in [("viridis", "prob", lambda t: prob_colour(t.prob)),
                                  ("classic", "prob", lambda t: prob_colour(t.prob, "classic")),
                                  ("classic", "rank", lambda t: rank_colour(t.rank, "classic"))]:
        page.select_option("#palette", palette)
        page.select_option("#colorby", mode)
        boxes = page.locator(".reading .tok")
        for n in range(boxes.count()):
            bg, fg = boxes.nth(n).evaluate(hexed)
            want = colour(score.tokens[int(boxes.nth(n).get_attribute("data-i"))])
            assert (css_hex(bg), css_hex(fg)) == (want, text_colour(want))
        legend = page.locator("#legend .swatch")
        assert [(s.inner_text(), css_hex(s.evaluate("el => getComputedStyle(el).backgroundColor")))
                for s in legend.all()][-1][1] == legend_swatches(mode, palette)[-1][1]


def css_hex(css: str) -> str:
    r, g, b = (int(v) for v in css[css.index("(") + 1: css.index(")")].split(",")[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


# -- 2. sampler lab --------------------------------------------------------------------------------------

def set_slider(page, name, value):
    page.eval_on_selector(f"#lab-{name}", "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", str(value))


def lab_settled(page, rev):
    page.wait_for_function(f"() => Number(document.getElementById('lab-stages').dataset.rev) > {rev}")
    page.wait_for_timeout(50)
    return int(page.eval_on_selector("#lab-stages", "el => el.dataset.rev"))


def open_lab(page, prompt, bias=None) -> int:
    """The lab's first distribution for ``prompt`` (and a logit bias); the redraw count."""
    page.click("#tab-lab")
    page.fill("#lab-prompt", prompt)
    if bias:
        page.click("summary:has-text('Logit bias')")
        page.fill("#lab-bias", bias)
    page.click("#lab-go")
    return lab_settled(page, 0)


def test_sampler_lab_equals_model_chain_without_rerunning_the_model(watched, models):
    page = watched().page
    model = models["toy"]
    rev = open_lab(page, "the cat")
    calls = model.backend.calls
    for name, value in [("temperature", 0.7), ("top_k", 5), ("top_p", 0.9), ("min_p", 0.05)]:
        set_slider(page, name, value)
        rev = lab_settled(page, rev)
    page.wait_for_timeout(200)
    assert model.backend.calls == calls  # the sliders re-ran the processors only
    config = SamplerConfig(temperature=0.7, top_k=5, top_p=0.9, min_p=0.05)
    chain = model.chain("the cat", config, top=12)
    last = chain.stages[-1]
    assert page.inner_text("#lab-survivors") == str(last.survivors)
    assert page.inner_text("#lab-top-prob") == printed(last.top[0].prob)
    cards = page.locator("#lab-stages figure")
    assert cards.count() == len(chain.stages) + 1  # the last stage is a filter: its renormalised survivors follow
    for n, stage in enumerate(chain.stages):
        check_card(cards.nth(n), stage)
    final = cards.nth(len(chain.stages))
    assert final.get_attribute("data-kind") == "final"
    kept = [r for r in last.rows if r.kept]
    assert final.locator(".lrow.kept .prob").all_inner_texts() == [printed(r.prob) for r in kept]
    page.fill("#lab-seed", "7")
    page.click("#lab-draw")
    page.wait_for_selector(".draws")
    sample = model.sample("the cat", 1000, config, seed=7)
    assert f"seed 7: χ² = {sample.chi_square:.2f}, dof {sample.dof}." in page.inner_text("#lab-chi")
    shot(page, "lab")


def check_card(card, stage):
    """A stage's card shows the library's rows in its order: kept, removed here (greyed), removed before;
    a filter shows what it saw (p in) with its cut line before the first row it removed."""
    filter_ = stage.cut is not None
    assert card.get_attribute("data-kind") == stage.kind and stage.stage in card.locator("figcaption").inner_text()
    rows = card.locator(".lrow")
    assert [r.get_attribute("data-token") for r in rows.all()] == [str(r.token_id) for r in stage.rows]
    states = ["kept" if r.removed_by is None else "removed" if r.removed_by == stage.stage else "gone" for r in stage.rows]
    assert [r.get_attribute("class").split()[1] for r in rows.all()] == states
    shown = [("0" if s == "gone" else printed(r.prob_in if filter_ or s == "removed" else r.prob))
             for r, s in zip(stage.rows, states)]
    assert rows.locator(".prob").all_inner_texts() == shown
    items = card.locator(".lrows > *")
    if filter_:
        first_out = next((i for i, s in enumerate(states) if s != "kept"), len(states))
        assert items.nth(first_out).get_attribute("class") == "cut"  # the line sits where the filter cut
        if stage.kind == "top-p":
            assert f"cumulative mass {stage.cut.kept_mass:.4f} ≥ p = {stage.parameter:g}" in items.nth(first_out).inner_text()
        if stage.kind == "min-p":
            assert printed(stage.cut.threshold) in items.nth(first_out).inner_text()
    else:
        assert card.locator(".cut").count() == 0


def test_lab_shows_a_removed_token_at_its_place_and_the_log_scale(watched, models):
    page = watched().page
    model = models["toy"]
    open_lab(page, "the cat", bias="sat=-inf")
    chain = model.chain("the cat", SamplerConfig(bias=(("sat", -math.inf),)), top=12)
    bias = page.locator('#lab-stages figure[data-kind="bias"]')
    check_card(bias, chain.stages[1])
    banned = bias.locator(".lrow").first
    assert banned.get_attribute("class") == "lrow removed" and banned.locator(".blabel").inner_text() == '"sat"'
    width = 'el => el.querySelector(".bfill").getBoundingClientRect().width'
    small = page.locator('#lab-stages figure[data-kind="raw"] .lrow').last
    linear = small.evaluate(width)
    page.check("#lab-log")
    page.wait_for_function("() => document.querySelector('.lhead').textContent.includes('log scale')")
    assert small.evaluate(width) > 3 * linear  # p = 0.019: 2% of the track, 71% on the log scale from 1e-6


def test_a_small_p_value_is_explained_without_crying_bug(watched, models):
    model = models["toy"]
    config = SamplerConfig(temperature=1.5, top_p=0.5)
    seed = next(s for s in range(500) if model.sample("the", 1000, config, seed=s).p_value < 0.05)  # 1 seed in 20
    p_value = model.sample("the", 1000, config, seed=seed).p_value
    page = watched().page
    page.click("#tab-lab")
    page.fill("#lab-prompt", "the")
    set_slider(page, "temperature", 1.5)
    set_slider(page, "top_p", 0.5)
    page.fill("#lab-seed", str(seed))
    page.press("#lab-seed", "Enter")  # Draw from the keyboard
    page.wait_for_selector("#lab-chi")
    said = page.inner_text("#lab-chi")
    assert "bug?" not in said and "by chance" in said and "other seeds" in said
    assert f"{100 * p_value:.1f}% of runs" in said or "one seed in a thousand" in said


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
    path = model.score("the " + " ".join(s.text for s in expected.steps[:-1]) + " " + model.backend.token_text(int(forced)))
    label = node.get_attribute("aria-label")
    after_prompt = math.exp(sum(t.logprob for t in path.scored_tokens[1:]))  # the tokens after "the"
    assert f"p = {printed(path.tokens[-1].prob)}, path p = {printed(after_prompt)}" in label
    assert label.endswith("· current; go to this node")
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
    shown = page.locator("#step-possible .branch[data-path]")
    assert shown.count() == sum(1 for _ in expected.nodes())
    for i, (above, node) in enumerate(expected.nodes()):  # depth first, as the page draws them
        assert shown.nth(i).get_attribute("aria-label") == (f"{json.dumps(node.text)}: p = {printed(node.prob)}, "
                                                            f"path p = {printed(node.cum_prob)}; follow this branch")
    edges = page.locator("#step-possible path.edge")  # one into each node, as wide as its probability
    labels = page.locator("#step-possible text.edge-label").all_text_contents()
    into = [*expected.children, *(c for _, n in expected.nodes() for c in n.children)]  # each parent's in turn
    assert edges.count() == shown.count() and labels == [f"{n.prob:.2f}" for n in into]
    widths = [float(e.evaluate("el => el.style.strokeWidth").removesuffix("px")) for e in edges.all()]
    probs = [n.prob for n in into]
    assert all((wa - wb) * (pa - pb) >= 0 for wa, pa in zip(widths, probs) for wb, pb in zip(widths, probs))
    shown.nth(1).hover()  # the path probability on hover (and on focus)
    assert page.inner_text("#step-possible .tree-info") == shown.nth(1).get_attribute("aria-label").split(";")[0]
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
    for _ in range(12):  # model picker, the view buttons, then the text box: all reachable by Tab
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
    assert page.evaluate("document.activeElement.id") == "side-close"
    for label in page.locator("input, select, textarea").all():
        assert label.evaluate("el => !!(el.labels && el.labels.length) || el.hasAttribute('aria-label')")
    shot(page, "phone")


def press(page, selector, key="Enter"):
    """Focus ``selector`` as Tab would reach it (it must be in the tab order) and press ``key``."""
    target = page.locator(selector).first
    assert target.evaluate("el => el.tabIndex >= 0 && !el.disabled"), f"{selector} is not keyboard-reachable"
    target.focus()
    page.keyboard.press(key)


def test_every_action_works_from_the_keyboard(watched, models):
    page = watched().page
    gens = "() => document.querySelectorAll('#step-text .gen').length"
    press(page, "#present")
    assert page.evaluate("document.documentElement.classList.contains('present')")
    press(page, "#present")
    press(page, "#tab-lab")
    page.fill("#lab-prompt", "the cat")
    press(page, "#lab-go")
    lab_settled(page, 0)
    press(page, "#lab-temperature", "ArrowLeft")  # a slider moves by its step
    page.wait_for_function("() => document.querySelector('output[for=lab-temperature]').textContent === '0.95'")
    page.wait_for_function("() => document.querySelector('#lab-stages figure[data-kind=temperature]')")
    press(page, "#lab-log", "Space")
    assert page.is_checked("#lab-log")
    press(page, "#lab-draw")
    page.wait_for_selector("#lab-chi")
    press(page, "#tab-step")
    page.fill("#step-prompt", "the")
    press(page, "#step-start")
    page.wait_for_selector(".cand")
    press(page, "#step-one")
    page.wait_for_function(f"{gens} === 1")
    press(page, ".cand >> nth=1")  # force a token
    page.wait_for_function(f"{gens} === 2")
    press(page, "#step-undo")
    page.wait_for_function(f"{gens} === 1")
    press(page, '#step-tree .node[data-node="0"]', "Space")  # back to the prompt through the tree
    page.wait_for_function(f"{gens} === 0")
    press(page, "#step-tree-go")
    page.wait_for_selector("#step-possible .branch[data-path]")
    press(page, "#step-possible .branch[data-path] >> nth=0")  # follow a branch
    page.wait_for_function(f"{gens} === 1")
    press(page, "#step-run")
    page.wait_for_function(f"{gens} > 1")
    press(page, "#step-beam")
    page.wait_for_selector("#step-beams table")
    press(page, "#tab-rank")
    page.fill("#rank-prompt", "the cat")
    page.fill("#rank-candidates", " sat\n slept")
    press(page, "#rank-go")
    page.wait_for_selector("#rank-out .ranked")
    press(page, "#tab-read")
    page.fill("#text", TEXT)
    press(page, "#read-go")
    page.wait_for_selector(".reading .tok")
    press(page, ".tokens", "End")
    page.keyboard.press("Enter")
    page.wait_for_selector("#side:not([hidden])")
    press(page, "#continue")
    page.wait_for_function("() => document.getElementById('continuation').textContent.includes('→')")
    press(page, "#side-close")
    assert page.locator("#side").is_hidden()


def test_a_long_action_shows_the_busy_bar_and_cancel_stops_it(watched, models):
    page = watched().page
    page.evaluate("""() => { window.busyShown = false;
      new MutationObserver(() => { if (!document.getElementById('busy').hidden) window.busyShown = true; })
        .observe(document.getElementById('busy'), {attributes: true}); }""")
    page.click("#tab-step")
    page.fill("#step-prompt", "the")
    page.click("#step-start")
    page.wait_for_selector(".cand")
    for _ in range(3):
        page.click("#step-one")
    page.click("#step-undo")
    page.wait_for_timeout(400)
    assert not page.evaluate("window.busyShown")  # quick answers (toy) never flash the bar
    slow = models["slow"].backend
    page.select_option("#model", "slow")
    page.evaluate("() => { document.getElementById('step-meta').textContent = ''; }")
    page.click("#step-start")  # a few forward passes of 0.1 s
    page.wait_for_function("() => document.getElementById('step-meta').textContent.includes('survivors')")
    page.fill("#step-tree-depth", "4")
    page.fill("#step-tree-branch", "4")
    page.click("#step-tree-go")  # 85 forward passes: 8.5 s
    page.wait_for_selector("#busy:not([hidden])")
    assert "Growing the tree" in page.inner_text("#busy-label")
    page.wait_for_function("() => document.getElementById('busy-progress').value > 0")  # progress: passes of all
    assert page.get_attribute("#busy-progress", "max") == "85"
    page.click("#cancel")
    page.wait_for_selector("#busy", state="hidden")
    assert "cancelled" in page.inner_text("#step-possible")
    calls = slow.calls
    page.wait_for_timeout(300)
    assert slow.calls == calls  # the server stopped too
    page.click("#step-beam")
    page.wait_for_selector("#busy:not([hidden])")
    page.keyboard.press("Escape")  # Escape cancels as well
    page.wait_for_selector("#busy", state="hidden")
    assert "cancelled" in page.inner_text("#step-beams")


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
        w.page.evaluate("() => document.getElementById('readings').replaceChildren()")
        read(w.page, MIXED)  # emoji, a ZWJ family, Hebrew, accents: the text read back exactly
        assert w.page.eval_on_selector(".reading .tokens", "el => el.textContent") == MIXED
        shot(w.page, "read-bundled")
        w.check(url)
