"""The two editions of a lesson, and the executed course as static HTML pages.

The packaged notebooks are the *solution* edition. The *student* edition is made from it:

* a code cell tagged ``solution`` keeps everything but its solution: the lines between
  ``# BEGIN SOLUTION`` and ``# END SOLUTION`` become ``# your code here`` and ``...``, and a
  line ``name = value  # SOLUTION`` becomes ``name = ...  # your code here`` (otter-grader's
  markers), so every name an exercise defines still exists and its check says "not done yet";
* a markdown cell tagged ``solution`` (a worked written answer) becomes "*Your answer here.*";
* ``workshop.begin(..., edition="solutions")`` becomes ``edition="student"``, which makes the
  checks print instead of raise.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import InputError
from ..core.output import write_text

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
ONE_LINE = re.compile(r"^(\s*[\w\[\]'\", .]+?\s*=\s*).+?\s*# SOLUTION\s*$")
EDITION = 'edition="solutions"'
STUDENT_ANSWER = "*Your answer here.*"


def stub_code(source: str) -> str:
    """A solution cell's code with its solution replaced by stubs (see the module docstring)."""
    out, inside = [], None
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            inside = line[: len(line) - len(line.lstrip())]
            out += [f"{inside}# your code here", f"{inside}..."]
        elif stripped == END:
            inside = None
        elif inside is None:
            m = ONE_LINE.match(line)
            out.append(f"{m.group(1)}...  # your code here" if m else line)
    if inside is not None:
        raise InputError("a solution cell opens '# BEGIN SOLUTION' and never closes it", hint="add '# END SOLUTION'")
    text = "\n".join(out)
    if text == source:
        raise InputError("a cell tagged 'solution' has no solution markers",
                         hint="mark the solution with # BEGIN SOLUTION / # END SOLUTION or a trailing # SOLUTION")
    return text


def student_edition(nb):
    """A copy of a solution-edition notebook (nbformat node) with the solutions taken out."""
    import copy

    out = copy.deepcopy(nb)
    switched = 0
    for cell in out.cells:
        tags = cell.metadata.get("tags", [])
        if "solution" in tags:
            cell.source = stub_code(cell.source) if cell.cell_type == "code" else STUDENT_ANSWER
        if cell.cell_type == "code" and EDITION in cell.source:
            cell.source = cell.source.replace(EDITION, 'edition="student"')
            switched += 1
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    if switched != 1:
        raise InputError(f"a lesson must call workshop.begin(..., {EDITION}) exactly once (found {switched})",
                         hint="put the call in the notebook's first code cell")
    out.metadata.setdefault("logitscope", {})["edition"] = "student"
    return out


def summary_line(nb) -> dict:
    """The JSON line the last cell of an executed lesson printed (``workshop.summary()``)."""
    text = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []) if o.get("output_type") == "stream")
    lines = [ln for ln in text.splitlines() if ln.startswith("{")]
    if not lines:
        raise InputError("the last cell printed no summary line", hint="end the lesson with workshop.summary()")
    return json.loads(lines[-1])


def execute(nb, folder: Path, timeout: int = 600, env: dict | None = None, km=None):
    """Run a notebook top to bottom in a fresh python3 kernel (cells that fail are kept, with their
    error), or in the running kernel of ``km`` (a jupyter_client kernel manager), which stays up."""
    import nbclient

    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                     resources={"metadata": {"path": str(folder)}}, km=km)
    client.execute(env=env) if env is not None else client.execute()
    if km is not None:
        client.kc.stop_channels()  # nbclient leaves a kernel it did not start running, and its client open
    return nb


def write_html(notebooks: dict, directory: Path) -> Path:
    """``{lesson name: executed notebook}`` -> one static page per lesson plus ``index.html``."""
    from html import escape

    from nbconvert import HTMLExporter

    directory.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="classic")
    rows = []
    for name, nb in notebooks.items():
        body, _ = exporter.from_notebook_node(nb)
        write_text(directory / f"{name}.html", body)  # whole or not at all (output.py)
        title = next((c.source.splitlines()[0].lstrip("# ") for c in nb.cells if c.cell_type == "markdown"), name)
        rows.append(f'<li><a href="{escape(name)}.html">{escape(title)}</a> {escape(_status(nb))}</li>')
    return write_text(directory / "index.html", "<!doctype html><meta charset='utf-8'><title>logitscope workshop</title>"
                      "<h1>logitscope workshop: the executed lessons</h1><ol>" + "".join(rows) + "</ol>")


def _status(nb) -> str:
    try:
        s = summary_line(nb)
    except (InputError, ValueError):
        return "(did not finish: open the page to see where it stopped)"
    return f"({s['passed']}/{s['exercises']} exercises checked)"
