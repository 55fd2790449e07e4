"""Every panel in use, at a laptop's 1280×800, a phone's 390×844 and a projector's 1920×1080 in
presentation mode: axe-core finds no serious or critical violation; on the phone nothing overflows
sideways (wide tables and trees scroll inside their own box) and the results sit right under the
controls that made them; on the projector every number is at least 20 px and the text outside the
heatmap's colour boxes has AAA contrast.

axe-core comes from npm into tests/node_modules (``npm ci --prefix tests``, run by scripts/test.sh)
and is injected by the test only: the page never loads it (its CSP would refuse it anyway).
"""

from __future__ import annotations

import os

import pytest

from webapp import AXE, CHROMIUM, Watched, serve, toy

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed")]

SIZES = {"laptop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844},
         "projector": {"width": 1920, "height": 1080}}
TEXT = "the cat sat on the mat the dog slept on the mat"


@pytest.fixture(scope="module")
def server():
    with serve({"toy": toy()}) as url:
        yield url


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci --prefix tests` (scripts/test.sh does)")
    return AXE.read_text(encoding="utf-8")


# -- each panel in use (what a class would have on screen) -----------------------------------------------------

def read_in_use(page):
    page.fill("#text", TEXT)
    page.click("#read-go")
    page.wait_for_selector(".reading .tok")
    page.locator(".reading .tok").nth(3).hover()
    page.wait_for_selector("#tip:not([hidden])")
    yield "read, tooltip open"
    page.locator(".reading .tok").nth(3).click()
    page.wait_for_selector("#side:not([hidden])")
    yield "read, side panel open"


def lab_in_use(page):
    page.click("#tab-lab")
    page.fill("#lab-prompt", "the cat")
    for name, value in [("temperature", "0.7"), ("top_k", "5"), ("top_p", "0.9"), ("min_p", "0.05")]:
        page.eval_on_selector(f"#lab-{name}", "(el, v) => { el.value = v; }", value)
    page.click("#lab-go")
    page.wait_for_selector('#lab-stages figure[data-kind="min-p"]')
    page.click("#lab-draw")
    page.wait_for_selector("#lab-chi")
    yield "lab, distribution and draws"


def step_in_use(page):
    page.click("#tab-step")
    page.fill("#step-prompt", "the")
    page.click("#step-start")
    page.wait_for_selector(".cand")
    page.click("#step-one")
    page.wait_for_function("() => document.querySelectorAll('#step-text .gen').length === 1")
    page.locator(".cand").nth(2).click()
    page.wait_for_function("() => document.querySelectorAll('#step-text .gen').length === 2")
    page.click("#step-tree-go")
    page.wait_for_selector("#step-possible .branch")
    page.click("#step-beam")
    page.wait_for_selector("#step-beams table")
    yield "step, explored tree, tree and beams"


def rank_in_use(page):
    page.click("#tab-rank")
    page.fill("#rank-prompt", "the cat")
    page.fill("#rank-candidates", " sat on the mat\n slept\n not")
    page.fill("#rank-context", "the dog sat on the mat")
    page.click("#rank-go")
    page.wait_for_selector("#rank-out .lift")
    yield "rank, with the lift"


PANELS = {"read": read_in_use, "lab": lab_in_use, "step": step_in_use, "rank": rank_in_use}
# where each panel's controls end and its results begin (the results must follow at once)
CONTROLS = {"read": ("#read-form", ".reading"), "lab": ("#lab-form", "#lab-stages"),
            "step": ("#step-form", "#step-text"), "rank": ("#rank-form", "#rank-out")}


# -- the checks ---------------------------------------------------------------------------------------------------

def serious_violations(page, axe_source, rules=None, exclude=()) -> list[str]:
    """axe-core's serious and critical findings (all its default rules, or only ``rules``)."""
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(axe_source)
    options = {"resultTypes": ["violations"], **({"runOnly": {"type": "rule", "values": rules}} if rules else {})}
    context = {"include": [["body"]], "exclude": [[sel] for sel in exclude]}
    return page.evaluate("""async ([context, options]) => (await axe.run(context, options)).violations
        .filter(v => v.impact === 'serious' || v.impact === 'critical')
        .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`)""",
                         [context, options])


def overflowing(page) -> list[str]:
    """Visible elements wider than the viewport, except inside a box that scrolls sideways."""
    return page.evaluate("""() => [...document.querySelectorAll('body *')].filter(el => {
        const r = el.getBoundingClientRect();
        return r.width > 0 && r.right > document.documentElement.clientWidth + 1 && !el.closest('.scroll')
               && getComputedStyle(el).position !== 'fixed';
      }).map(el => el.tagName + (el.id ? '#' + el.id : '') + '.' + el.className).slice(0, 5)""")


def small_numbers(page) -> list[str]:
    """Visible text with a digit drawn smaller than 20 px (SVG text measured after its scaling)."""
    return page.evaluate("""() => {
      const out = [], walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      for (let n = walk.nextNode(); n; n = walk.nextNode()) {
        const el = n.parentElement;
        if (!/[0-9]/.test(n.textContent) || !el.getClientRects().length || el.closest('[hidden], option, title')) continue;
        if (el.closest('textarea')) continue;
        let size = parseFloat(getComputedStyle(el).fontSize);
        if (el instanceof SVGElement) size *= el.getScreenCTM().a;
        if (size < 19.5) out.push(`${el.tagName}.${el.className.baseVal ?? el.className}: "${n.textContent.slice(0, 30)}" ${size}px`);
      }
      return out.slice(0, 8);
    }""")


@pytest.mark.parametrize("panel", list(PANELS))
@pytest.mark.parametrize("size", list(SIZES))
def test_every_panel_in_use_is_accessible_and_fits(browser, server, axe_source, size, panel):
    w = Watched(browser, server, SIZES[size])
    page = w.page
    if size == "projector":
        page.click("#present")
    for state in PANELS[panel](page):
        assert serious_violations(page, axe_source) == [], state
        if size == "phone":
            assert page.evaluate("document.documentElement.scrollWidth") <= SIZES["phone"]["width"], state
            assert overflowing(page) == [], state
        if size == "projector":
            assert small_numbers(page) == [], state
            assert serious_violations(page, axe_source, ["color-contrast-enhanced"],  # AAA, but the heatmap's
                                      exclude=(".tokens", ".swatch")) == [], state  # boxes (AA: >= 4.5:1)
    controls, results = CONTROLS[panel]
    gap = page.evaluate(f"""() => document.querySelector('{results}').getBoundingClientRect().top
                                  - document.querySelector('{controls}').getBoundingClientRect().bottom""")
    assert 0 <= gap <= {"read": 130, "lab": 60, "step": 30, "rank": 30}[panel], f"{panel}: results {gap}px below"
    w.check(server)


def test_the_lab_fits_the_first_phone_screen(browser, server):
    """On a phone the sliders and the first stage card share the first screen."""
    w = Watched(browser, server, SIZES["phone"])
    page = w.page
    page.click("#tab-lab")
    page.fill("#lab-prompt", "the cat")
    page.click("#lab-go")
    page.wait_for_selector("#lab-stages figure")
    top = page.evaluate("document.querySelector('#lab-stages figure').getBoundingClientRect().top")
    assert top < SIZES["phone"]["height"] - 200  # the card's heading and first rows are in view
    w.check(server)


def test_presentation_mode_persists_and_uses_large_type(browser, server):
    w = Watched(browser, server, SIZES["projector"])
    page = w.page
    base = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    page.click("#present")
    assert page.get_attribute("#present", "aria-pressed") == "true"
    assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 1.5 * base
    page.reload()
    page.wait_for_selector("body[data-ready]", state="attached")
    assert page.evaluate("document.documentElement.classList.contains('present')")  # kept for the next lesson
    page.click("#present")
    w.check(server)
