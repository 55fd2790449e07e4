"""Regenerate docs/ui/*.png: each panel of the web app, driven in headless Chromium on the bundled model.

    PYTHONPATH=src python scripts/ui_screenshots.py            # writes docs/ui/{read,read-side,lab,step,step-tree,rank,phone}.png
    PYTHONPATH=src python scripts/ui_screenshots.py step rank  # only these panels

The PNGs are palette-quantised (64 colours) to keep the repository small.
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


def save(page, name: str) -> None:
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path))
    Image.open(path).convert("RGB").quantize(64).save(path, optimize=True)
    print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KB")


def read_panel(page) -> None:
    page.fill("#text", TEXT)
    page.click("#read-go")
    page.wait_for_selector(".reading .tok")
    page.locator(".reading .tok").nth(12).hover()
    save(page, "read")
    page.locator(".reading .tok").nth(12).click()
    page.wait_for_selector("#side:not([hidden])")
    page.click("#continue")
    page.wait_for_function("() => document.getElementById('continuation').textContent.includes('→')")
    page.mouse.move(5, 5)
    save(page, "read-side")
    page.click("#side-close")


def lab_panel(page) -> None:
    page.click("#tab-lab")
    page.click("#lab-go")
    page.wait_for_selector("#lab-survivors")
    for name, value in [("temperature", "0.8"), ("top_k", "40"), ("top_p", "0.9")]:
        page.eval_on_selector(f"#lab-{name}", "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", value)
        page.wait_for_timeout(400)
    page.wait_for_function("() => document.querySelectorAll('#lab-stages figure').length === 4")  # raw, T, top-k, top-p
    page.click("#lab-draw")
    page.wait_for_selector(".draws")
    save(page, "lab")


def step_panel(page) -> None:
    page.click("#tab-step")
    page.fill("#step-temperature", "0.8")
    page.click("#step-start")
    page.wait_for_selector(".cand")
    for n in range(1, 5):
        page.click("#step-one")
        page.wait_for_function(f"() => document.querySelectorAll('.node').length === {n + 1}")
    page.locator(".cand").nth(2).click()
    page.wait_for_function("() => document.querySelectorAll('.node').length === 6")
    page.locator(".node").nth(2).click()
    page.wait_for_function("() => document.querySelector('.node.current').dataset.node === '2'")
    page.locator(".cand").nth(3).click()  # a second branch from node 2 (the drawn token may be its old child)
    page.wait_for_function("() => document.querySelector('.node.current').dataset.node !== '2'")
    page.click("#step-beam")
    page.wait_for_selector("#step-beams table")
    save(page, "step")
    page.fill("#step-tree-depth", "2")
    page.click("#step-tree-go")
    page.wait_for_selector("#step-possible .branch")
    page.locator("#step-possible").scroll_into_view_if_needed()
    save(page, "step-tree")


def rank_panel(page) -> None:
    page.click("#tab-rank")
    page.fill("#rank-context", "Paris is the capital and largest city of France.")
    page.click("#rank-go")
    page.wait_for_selector(".lift")
    save(page, "rank")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    models = {"smol": logitscope.load(), "toy": logitscope.load("toy")}
    with serve(models) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(600_000)  # the bundled model on a busy CPU
        page.goto(url)
        chosen = sys.argv[1:] or ["read", "lab", "step", "rank", "phone"]
        for name, panel in [("read", read_panel), ("lab", lab_panel), ("step", step_panel), ("rank", rank_panel)]:
            if name in chosen:
                panel(page)
        if "phone" not in chosen:
            return browser.close()
        phone = browser.new_page(viewport={"width": 390, "height": 844})
        phone.set_default_timeout(600_000)
        phone.goto(url)
        phone.fill("#text", TEXT[:120])
        phone.click("#read-go")
        phone.wait_for_selector(".reading .tok")
        save(phone, "phone")
        browser.close()


if __name__ == "__main__":
    main()
