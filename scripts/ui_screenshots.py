"""Regenerate docs/ui/*.png: each panel of the web app in use, driven in headless Chromium on the bundled
model, at a laptop's 1280×800, a projector's 1920×1080 (presentation mode) and a phone's 390×844.

    PYTHONPATH=src python scripts/ui_screenshots.py                 # every picture
    PYTHONPATH=src python scripts/ui_screenshots.py laptop phone    # only these sizes

Writes docs/ui/{read,read-side,read-scripts,lab,step,step-tree,rank}.png (laptop),
projector-{lab,read}.png and phone-{read,lab,step}.png. The PNGs are palette-quantised
(64 colours) to keep the repository small. Emoji show in colour where a colour emoji font is
installed (Debian: fonts-noto-color-emoji).
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import logitscope  # noqa: E402
from webapp import serve  # noqa: E402

OUT = ROOT / "docs" / "ui"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
TEXT = ("The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It is named after the engineer "
        "Gustave Eiffel, whose company designed and built the tower from 1887 to 1889. Locally nicknamed "
        "\"La dame de fer\", it was constructed as the centrepiece of the 1889 World's Fair.")
MIXED = "I like 🍕 pizza 👩‍👩‍👧 and שלום עולם, naïve café. 𝐀 = 𝔸? 🇫🇷 e\u0301"
SIZES = {"laptop": {"width": 1280, "height": 800}, "projector": {"width": 1920, "height": 1080},
         "phone": {"width": 390, "height": 844}}


def save(page, name: str, full_page: bool = False) -> None:
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    Image.open(path).convert("RGB").quantize(64).save(path, optimize=True)
    print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KB")


def read(page, text: str) -> None:
    page.click("#tab-read")
    page.evaluate("() => document.getElementById('readings').replaceChildren()")
    page.fill("#text", text)
    page.click("#read-go")
    page.wait_for_selector(".reading .tok")


def read_panel(page, prefix: str = "") -> None:
    read(page, TEXT)
    page.locator(".reading .tok").nth(12).hover()
    save(page, f"{prefix}read")
    if prefix:
        return
    page.locator(".reading .tok").nth(12).click()
    page.wait_for_selector("#side:not([hidden])")
    page.click("#continue")
    page.wait_for_function("() => document.getElementById('continuation').textContent.includes('→')")
    page.mouse.move(5, 5)
    save(page, "read-side")
    page.click("#side-close")
    read(page, MIXED)
    page.locator(".reading .tok.bytes").first.hover()
    save(page, "read-scripts")


def lab_panel(page, prefix: str = "") -> None:
    page.click("#tab-lab")
    page.click("#lab-go")
    page.wait_for_selector("#lab-survivors")
    for name, value in [("temperature", "0.8"), ("top_k", "40"), ("top_p", "0.6"), ("min_p", "0.02")]:
        page.eval_on_selector(f"#lab-{name}", "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", value)
        page.wait_for_timeout(400)
    page.wait_for_selector('#lab-stages figure[data-kind="final"]')
    page.click("#lab-draw")
    page.wait_for_selector("#lab-chi")
    if prefix == "phone-":
        page.locator("#lab-stages").scroll_into_view_if_needed()
    save(page, f"{prefix}lab", full_page=prefix != "phone-")


def step_panel(page, prefix: str = "") -> None:
    page.click("#tab-step")
    page.fill("#step-temperature", "0.8")
    page.click("#step-start")
    page.wait_for_selector(".cand")
    for n in range(1, 5):
        page.click("#step-one")
        page.wait_for_function(f"() => document.querySelectorAll('.node').length === {n + 1}")
    page.locator(".cand").nth(2).click()
    page.wait_for_function("() => document.querySelectorAll('.node').length === 6")
    page.locator('.node[data-node="2"]').click()
    page.wait_for_function("() => document.querySelector('.node.current').dataset.node === '2'")
    page.locator(".cand").nth(3).click()  # a second branch from node 2 (the drawn token may be its old child)
    page.wait_for_function("() => document.querySelector('.node.current').dataset.node !== '2'")
    page.click("#step-beam")
    page.wait_for_selector("#step-beams table")
    page.locator(".node.current").hover()
    save(page, f"{prefix}step", full_page=True)
    if prefix:
        return
    page.fill("#step-tree-depth", "3")
    page.click("#step-tree-go")
    page.wait_for_selector("#step-possible .branch")
    page.locator("#step-possible .branch[data-path]").nth(1).hover()
    page.locator("#step-possible").scroll_into_view_if_needed()
    save(page, "step-tree")


def rank_panel(page, prefix: str = "") -> None:
    page.click("#tab-rank")
    page.fill("#rank-context", "Paris is the capital and largest city of France.")
    page.click("#rank-go")
    page.wait_for_selector(".lift")
    save(page, f"{prefix}rank")


PICTURES = {"laptop": [read_panel, lab_panel, step_panel, rank_panel], "projector": [lab_panel, read_panel],
            "phone": [read_panel, lab_panel, step_panel]}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    models = {"smol": logitscope.load(), "toy": logitscope.load("toy")}
    with serve(models) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS, headless=True)
        for size in sys.argv[1:] or list(PICTURES):
            page = browser.new_page(viewport=SIZES[size])
            page.set_default_timeout(600_000)  # the bundled model on a busy CPU
            page.goto(url)
            page.wait_for_selector("body[data-ready]", state="attached")
            if size == "projector":
                page.click("#present")
            for panel in PICTURES[size]:
                panel(page, "" if size == "laptop" else f"{size}-")
            page.close()
        browser.close()


if __name__ == "__main__":
    main()
