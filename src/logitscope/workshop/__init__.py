"""The workshop: eight Jupyter lessons that teach the seed course with logitscope.

The notebooks ship inside the package (``notebooks/``, the solution edition, stored without
outputs); they are built from the percent-format sources in the repository's ``workshop/``
folder by ``scripts/build_workshop.py`` and executed by ``tests/test_workshop.py``.
``logitscope workshop DIR`` copies them out (``--student``: the student edition, see
``editions``; ``--html``: the executed lessons as static pages).

Inside a lesson: ``begin`` / ``check`` / ``claim`` / ``summary`` (``checks``), and the
from-scratch tasks graded against the library (``tasks``).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from .. import catalog, settings
from ..errors import InputError
from ..core.output import write_error, write_file
from .checks import (begin, check, claim, close_to, equal, all_of, lazy, only_globals, satisfies, say, summary, values,
                     NotDone, ExerciseFailed, ClaimFailed, Verdict)

LESSONS = (
    "01_logits_to_probabilities",
    "02_tokens_and_prediction",
    "03_sampling",
    "04_generation",
    "05_applications",
    "06_probability_math",
    "07_log_space_and_algebra",
    "08_logits_and_perplexity_exercise",
)


def notebook_paths() -> list[Path]:
    """The packaged notebooks (solution edition), in lesson order."""
    folder = Path(str(resources.files("logitscope").joinpath("workshop/notebooks")))
    return [folder / f"{name}.ipynb" for name in LESSONS]


def read_lessons(student: bool = False) -> dict:
    """``{name: notebook}`` of one edition (nbformat nodes, without outputs)."""
    import nbformat

    from .editions import student_edition

    books = {name: nbformat.read(path, as_version=4) for name, path in zip(LESSONS, notebook_paths())}
    return {name: student_edition(nb) for name, nb in books.items()} if student else books


def _target(directory: str | Path, names: list[str], overwrite: bool) -> Path:
    target = Path(directory).expanduser()
    if target.exists() and not target.is_dir():
        raise InputError(f"{str(directory)!r} is a file", hint="give a directory to copy the notebooks into")
    clashes = [n for n in names if (target / n).exists()]
    if clashes and not overwrite:
        raise InputError(f"{target} already has {clashes[0]}", hint="pass --force to overwrite, or pick another DIR")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(target, exc) from None
    return target


def copy_lessons(directory: str | Path, overwrite: bool = False, student: bool = False) -> list[Path]:
    """Write every lesson notebook of one edition into ``directory`` (created if needed); returns the paths."""
    import nbformat

    books = read_lessons(student)
    target = _target(directory, [f"{n}.ipynb" for n in books], overwrite)
    paths = []
    for name, nb in books.items():  # each whole or not at all (output.py): no half-written copy blocks a rerun
        paths.append(write_file(target / f"{name}.ipynb", lambda tmp, nb=nb: nbformat.write(nb, str(tmp))))
    return paths


def html_course(directory: str | Path, overwrite: bool = False, progress=print) -> Path:
    """Execute the solution edition and write it as static HTML pages with an index; returns index.html."""
    from .editions import execute, write_html

    target = _target(directory, ["index.html"], overwrite)
    env = dict(os.environ) | {"LOGITSCOPE_THREADS": os.environ.get("LOGITSCOPE_THREADS", "1")}
    executed = {}
    for name, nb in read_lessons().items():
        progress(f"running {name} …")
        executed[name] = execute(nb, target, env=env)
    return write_html(executed, target)


def load_preferred(name: str = "gemma3-270m"):
    """Load ``name`` if it has been added, else the bundled model; returns (Model, note).

    ``$LOGITSCOPE_WORKSHOP_MODEL`` overrides ``name`` (e.g. 'bundled' to keep runs comparable).
    """
    from .. import load

    name = settings.workshop_model() or name
    if name in catalog.MODELS and not catalog.is_added(name):
        return load("bundled"), (f"note: {name} ({catalog.MODELS[name].title}) is not added, so this lesson uses the "
                                 f"bundled SmolLM2-135M-Instruct, an instruction-tuned model whose answers to "
                                 f"bare prompts look odder. `logitscope models add {name}` adds it.")
    model = load(name)
    return model, f"model: {model.name}"


__all__ = ["LESSONS", "notebook_paths", "read_lessons", "copy_lessons", "html_course", "load_preferred", "begin",
           "check", "claim", "say", "summary", "values", "close_to", "equal", "satisfies", "all_of", "lazy",
           "only_globals", "NotDone", "ExerciseFailed", "ClaimFailed", "Verdict"]
