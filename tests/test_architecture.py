"""The layering docs/architecture.md promises, checked on the source's import graph.

Every ``import`` statement counts, at module level or inside a function (a lazy import
is still a dependency), except those under ``if TYPE_CHECKING:``.

* views import only ``results``, ``core``, ``errors`` and each other — never an analysis;
* ``core`` imports nothing of logitscope above it;
* no import cycle, even through function-level imports;
* nothing outside ``backends/`` probes a backend or a tokenizer with getattr/hasattr:
  what an analysis or an edge may ask of a backend is declared in ``backends/base.py``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "logitscope"
ANALYSES = ("scoring", "sampling", "confidence", "evaluation")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    return {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}


def imports_of(module: str) -> set[str]:
    """Every logitscope module ``module`` imports (``from pkg import submodule`` counts as the submodule)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    skip, out = _type_checking_nodes(tree), set()
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(tree):
        if id(node) in skip or not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
            continue
        if node.module == "__future__":
            continue
        base = package[:len(package) - node.level + 1] if node.level else []
        target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
        subs = {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES}
        out |= subs | ({target} if len(subs) < len(node.names) else set())
    return {m for m in out if m in MODULES and m != module}


GRAPH = {m: imports_of(m) for m in MODULES}


def test_the_graph_sees_lazy_imports():
    """The checks below would pass vacuously if function-level imports were missed."""
    assert "logitscope.sampling.generation" in GRAPH["logitscope.model"]  # imported inside Model.generate
    assert "logitscope.views.html" in GRAPH["logitscope.results"]  # the results' lazy view dispatch


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("logitscope.views")))
def test_views_import_no_analysis(module):
    allowed = ("logitscope.views", "logitscope.core", "logitscope.results", "logitscope.errors")
    bad = sorted(m for m in GRAPH[module] if not m.startswith(allowed))
    assert not bad, f"{module} imports {bad}: a view gets what it shows from the result it is given"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("logitscope.core")))
def test_core_imports_nothing_above_it(module):
    bad = sorted(m for m in GRAPH[module] if not m.startswith(("logitscope.core", "logitscope.errors")))
    assert not bad, f"{module} imports {bad}"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(GRAPH) == []


PROBE = re.compile(r"\b(getattr|hasattr)\(\s*[\w.]*(backend|tokenizer|\btok\b)", re.IGNORECASE)


def test_nothing_outside_backends_probes_a_backend():
    outside = [p for m, p in MODULES.items() if not m.startswith("logitscope.backends")]
    hits = [f"{p.relative_to(SRC)}:{n}: {line.strip()}" for p in outside
            for n, line in enumerate(p.read_text().splitlines(), 1) if PROBE.search(line)]
    assert not hits, "declare it in backends/base.py instead:\n" + "\n".join(hits)


def test_the_probe_pattern_catches_what_it_should():
    assert PROBE.search('tokenizer = getattr(backend, "tokenizer", None)')
    assert PROBE.search('getattr(m.backend, "demo_texts", x)') and PROBE.search("hasattr(tok, 'chat_template')")
    assert not PROBE.search('getattr(self, "top_k_only", None)')
