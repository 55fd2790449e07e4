"""Build the workshop notebooks from their percent-format sources.

    python scripts/build_workshop.py          # workshop/*.py -> src/logitscope/workshop/notebooks/*.ipynb
    python scripts/build_workshop.py --check  # exit 1 if a notebook is out of date

Source format (one file per lesson, cells separated by marker lines):

    # %% [markdown]            a markdown cell; its lines start with "# "
    # %% [markdown] collapsed  a heading cell JupyterLab shows collapsed (the solutions)
    # %%                       a code cell
    # %% tags=["checks"]       a code cell with tags (the test reads the "checks" cell)

Notebooks are written without outputs, so they never hold stale numbers.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "workshop"
TARGET = ROOT / "src" / "logitscope" / "workshop" / "notebooks"
MARKER = re.compile(r"^# %%(?: \[(markdown)\])?(?: (collapsed))?(?: tags=(\[.*\]))?\s*$")


def parse_cells(text: str) -> list[dict]:
    """Split a source into cells: [{"kind", "source", "tags", "collapsed"}]."""
    cells, current = [], None
    for line in text.splitlines():
        m = MARKER.match(line)
        if m:
            current = {"kind": m.group(1) or "code", "collapsed": bool(m.group(2)),
                       "tags": json.loads(m.group(3)) if m.group(3) else [], "lines": []}
            cells.append(current)
        elif current is not None:
            current["lines"].append(line)
    for c in cells:
        lines = c.pop("lines")
        if c["kind"] == "markdown":
            lines = [re.sub(r"^# ?", "", ln) for ln in lines]
        c["source"] = "\n".join(lines).strip("\n")
    return [c for c in cells if c["source"]]


def build_notebook(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    for i, c in enumerate(parse_cells(text)):
        meta = {"tags": c["tags"]} if c["tags"] else {}
        if c["collapsed"]:
            meta["jp-MarkdownHeadingCollapsed"] = True
        make = nbformat.v4.new_markdown_cell if c["kind"] == "markdown" else nbformat.v4.new_code_cell
        cell = make(c["source"], metadata=meta)
        cell["id"] = f"cell-{i:02d}"  # stable ids: rebuilding an unchanged source changes nothing
        nb.cells.append(cell)
    return nb


def render(source: Path) -> str:
    return nbformat.writes(build_notebook(source.read_text(encoding="utf-8"))) + "\n"


def main(argv: list[str]) -> int:
    stale = []
    for source in sorted(SOURCES.glob("[0-9][0-9]_*.py")):
        out = TARGET / f"{source.stem}.ipynb"
        text = render(source)
        if out.exists() and out.read_text(encoding="utf-8") == text:
            continue
        stale.append(out.name)
        if "--check" not in argv:
            out.write_text(text, encoding="utf-8")
    if "--check" in argv and stale:
        print("out of date: " + ", ".join(stale) + " (run python scripts/build_workshop.py)")
        return 1
    print(f"{len(stale)} notebook(s) {'stale' if '--check' in argv else 'written'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
