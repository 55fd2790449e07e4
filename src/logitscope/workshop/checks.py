"""Exercises that check themselves, and sentences that are checked against what the code computed.

A lesson starts with ``begin(name, edition)`` and then calls, after every exercise,

    check("3.2 top-p", top_p_filter, tasks.top_p)     # a task of logitscope.workshop.tasks
    check("1.2 τ for p = 0.9", tau, close_to(0.21, 0.01))

and, after every sentence of its text that states a number, a ranking or a comparison,

    claim("greedy's path has p = 0.286", greedy_p, close_to(0.286, 5e-4))

A *test* takes the learner's answer and returns ``None`` when it is right, or one
sentence saying what is wrong; it raises ``NotDone`` when the answer is still a stub.
An answer that is ``...`` (the stub the student edition leaves) or ``None`` is not done.

The two editions differ in what a wrong answer does:

* ``"solutions"``: a wrong or unfinished answer, or a false claim, raises (the notebook
  stops, so CI fails): the worked solutions and the text are tested on every run;
* ``"student"``: it prints one line ("not done yet", or what is wrong) and never raises.

The last cell calls ``summary()``, which prints one JSON line:
``{"notebook", "edition", "exercises", "passed", "not_done", "failed", "claims"}``.
"""

from __future__ import annotations

import dis
import json
import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError

EDITIONS = ("solutions", "student")
Test = Callable[[Any], "str | None"]


class NotDone(Exception):
    """Raised by a test when the answer is still the stub."""


class ExerciseFailed(AssertionError):
    """A worked solution gave a wrong answer (solution edition only)."""


class ClaimFailed(AssertionError):
    """A sentence of the lesson states something the computed values contradict."""


@dataclass
class Lesson:
    """One notebook's record: the outcome of every exercise, by name, and the claims checked."""

    name: str
    edition: str
    outcomes: dict[str, str] = field(default_factory=dict)  # name -> "passed" | "not_done" | "failed"
    claims: dict[str, bool] = field(default_factory=dict)

    def record(self, name: str, outcome: str, message: str) -> None:
        self.outcomes[name] = outcome  # a re-run cell replaces its earlier outcome
        mark = {"passed": "✓", "not_done": "…", "failed": "✗"}[outcome]
        print(f"{mark} {name}: {message}")

    def summary(self) -> dict:
        counts = {k: sum(v == k for v in self.outcomes.values()) for k in ("passed", "not_done")}
        return {"notebook": self.name, "edition": self.edition, "exercises": len(self.outcomes), **counts,
                "failed": [n for n, v in self.outcomes.items() if v == "failed"],
                "claims": len(self.claims)}


@dataclass(frozen=True)
class Verdict:
    """What ``check`` decided; true when the exercise passed."""

    name: str
    outcome: str  # "passed" | "not_done" | "failed"
    message: str

    def __bool__(self) -> bool:
        return self.outcome == "passed"

    def _ipython_display_(self) -> None:
        """Nothing: ``check`` has printed its line, and a cell ending in ``check(...)`` shows no Out[]."""


_current: Lesson | None = None


def begin(name: str, edition: str = "solutions", threads: int | None = None) -> Lesson:
    """Start the record of one lesson (the first cell of each notebook).

    Also sets torch's CPU threads (``threads``, else $LOGITSCOPE_THREADS, else 1: on a busy
    laptop one thread per lesson keeps the run time predictable; more threads fight the other
    programs for the cores) and silences tqdm's "IProgress not found" warning, which a kernel
    without ipywidgets prints the first time a library imports ``tqdm.auto``.
    """
    global _current
    if edition not in EDITIONS:
        raise InputError(f"unknown edition {edition!r}", hint="use 'solutions' or 'student'")
    warnings.filterwarnings("ignore", message="IProgress not found")
    import torch

    from .. import settings

    torch.set_num_threads(threads or settings.threads() or 1)
    _current = Lesson(name, edition)
    return _current


def lesson() -> Lesson:
    if _current is None:
        raise InputError("no lesson has begun", hint="run the notebook's first cell (workshop.begin(...))")
    return _current


def is_stub(answer) -> bool:
    """``...`` or ``None``, alone or inside a tuple or list, or a function whose body does nothing
    (``def f(x): ...``): the student edition's placeholders."""
    if isinstance(answer, (tuple, list)):
        return any(is_stub(a) for a in answer)
    return answer is ... or answer is None or _does_nothing(answer)


def _does_nothing(fn) -> bool:
    """A Python function whose body only returns None (a docstring, comments, ``...`` or ``pass``)."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    steps = [i for i in dis.get_instructions(code) if i.opname not in ("RESUME", "NOP", "CACHE")]
    return all(i.opname in ("LOAD_CONST", "RETURN_VALUE", "RETURN_CONST") for i in steps) and \
        all(i.argval is None for i in steps if i.opname != "RETURN_VALUE")


def check(name: str, answer, test: Test) -> Verdict:
    """Grade one exercise, record and print its outcome ("passed", "not_done" or "failed").
    The verdict is true when the exercise passed, so that what follows from the answer runs
    only once it is right::

        if check("4.2 mean ranks", mean_ranks, test):
            print(mean_ranks)

    The test runs only on a given answer: a reference it computes inside costs nothing while
    the exercise is not done."""
    current = lesson()
    try:
        if is_stub(answer):
            raise NotDone
        problem = test(answer)
    except NotDone:
        return _settle(current, name, "not_done", "not done yet: replace the `...` in the cell above and run it again")
    except Exception as error:  # the answer broke the test (a wrong type, a crash inside the learner's code)
        if current.edition == "solutions":
            raise
        problem = f"checking your answer raised {type(error).__name__}: {error}"
    if problem is None:
        return _settle(current, name, "passed", "correct")
    return _settle(current, name, "failed", problem)


def _settle(current: Lesson, name: str, outcome: str, message: str) -> Verdict:
    current.record(name, outcome, message)
    if current.edition == "solutions" and outcome != "passed":
        raise ExerciseFailed(f"the worked solution of {name!r} is {outcome.replace('_', ' ')}: {message}")
    return Verdict(name, outcome, message)


def claim(statement: str, value, test: Test | bool = True) -> None:
    """Check a sentence of the lesson's text against the value it is about.

    ``test`` is a test (as for ``check``) or a bool (the claim holds or not). Silent when it
    holds; raises ``ClaimFailed`` in the solution edition and prints a warning in the student's.
    """
    current = lesson()
    problem = (None if test else f"it does not (value: {show(value)})") if isinstance(test, bool) else test(value)
    current.claims[statement] = problem is None
    if problem is None:
        return
    message = f"the text says {statement!r}, but {problem}"
    if current.edition == "solutions":
        raise ClaimFailed(message + " (fix the sentence or the code: they must agree on every model the course runs on)")
    print(f"! {message}: this model disagrees with the lesson's text; tell your teacher")


def say(text: str) -> None:
    """Show a sentence built from computed values (Markdown in Jupyter, plain text elsewhere)."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(Markdown(text))
    else:
        print(text)


def summary() -> None:
    """Print the lesson's one JSON line (``Lesson.summary()``); the last cell of every notebook."""
    print(json.dumps(lesson().summary(), ensure_ascii=False))


def values(numbers: dict) -> None:
    """Print the lesson's key numbers as one JSON line (floats to 10 significant digits), for the
    test suite to compare with the seeds' own computations."""
    print(json.dumps(_rounded(numbers), ensure_ascii=False))


def _rounded(obj):
    if isinstance(obj, float):
        return float(f"{obj:.10g}")
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_rounded(v) for v in obj]
    return obj.item() if hasattr(obj, "item") else obj


def _globals_read(code, namespace: dict) -> set[str]:
    """Global names a function (and the functions, lambdas and comprehensions inside it) reads.
    Unlike ``inspect.getclosurevars``, an attribute such as ``model.logits`` is not taken for the
    notebook's variable ``logits``; builtins are not counted."""
    names = {i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            names |= _globals_read(const, namespace)
    return {n for n in names if n in namespace}


# -- tests for plain answers ---------------------------------------------------------------------

def show(value) -> str:
    """A short, readable form of a value for a message (no float noise)."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        inner = ", ".join(show(v) for v in value[:8])
        return f"[{inner}{', …' if len(value) > 8 else ''}]"
    return repr(value)


def close_to(expected: float, tol: float = 1e-6, what: str = "the value") -> Test:
    """Right when |answer - expected| <= tol."""
    def test(answer):
        value = float(answer)
        if math.isclose(value, expected, rel_tol=0.0, abs_tol=tol) or (math.isinf(value) and value == expected):
            return None
        return f"{what} is {show(value)}, expected {show(float(expected))} (within {tol:g})"
    return test


def equal(expected, what: str = "your answer") -> Test:
    """Right when the answer equals ``expected`` (lists and tuples compare as lists)."""
    def test(answer):
        a = list(answer) if isinstance(answer, tuple) else answer
        e = list(expected) if isinstance(expected, tuple) else expected
        return None if a == e else f"{what} is {show(answer)}, expected {show(expected)}"
    return test


def satisfies(predicate: Callable[[Any], bool], why: str | Callable[[Any], str]) -> Test:
    """Right when ``predicate(answer)`` is true; otherwise the reason ``why`` (or ``why(answer)``)."""
    def test(answer):
        return None if predicate(answer) else (why(answer) if callable(why) else why)
    return test


def all_of(*tests: Test) -> Test:
    """Right when every test passes; the first problem otherwise."""
    def test(answer):
        return next((p for p in (t(answer) for t in tests) if p is not None), None)
    return test


def lazy(make_test: Callable[[], Test]) -> Test:
    """A test built only when there is an answer to grade: ``make_test()`` may compute an expensive
    reference (a generation, a calibration run), which the student edition then skips while the
    exercise is not done, e.g. ``lazy(lambda: equal(model.calibrate(data).metrics.accuracy))``."""
    def test(answer):
        return make_test()(answer)
    return test


def only_globals(allowed: Iterable[str]) -> Test:
    """The seed's ``check_global_vars``: a function may use only the listed global names.

    The usual bug when turning notebook code into a function is reading a notebook variable
    instead of an argument; the function then works in the notebook and nowhere else.
    """
    allowed = set(allowed)

    def test(fn):
        used = _globals_read(fn.__code__, fn.__globals__) - allowed
        if used:
            return (f"{fn.__name__} reads the notebook's global variable(s) {sorted(used)}: "
                    "pass them as arguments or compute them inside the function")
        return None
    return test
