"""The workshop: eight Jupyter lessons that teach the seed course with logitscope.

The notebooks ship inside the package (``notebooks/``, stored without outputs);
they are built from the percent-format sources in the repository's ``workshop/``
folder by ``scripts/build_workshop.py`` and executed by ``tests/test_workshop.py``.
``logitscope workshop DIR`` copies them out.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import InputError
from ..output import copy_file, write_error

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
    """The packaged notebooks, in lesson order."""
    folder = Path(str(resources.files("logitscope").joinpath("workshop/notebooks")))
    return [folder / f"{name}.ipynb" for name in LESSONS]


def copy_lessons(directory: str | Path, overwrite: bool = False) -> list[Path]:
    """Copy every lesson notebook into ``directory`` (created if needed); returns the new paths."""
    target = Path(directory).expanduser()
    if target.exists() and not target.is_dir():
        raise InputError(f"{str(directory)!r} is a file", hint="give a directory to copy the notebooks into")
    clashes = [p.name for p in notebook_paths() if (target / p.name).exists()]
    if clashes and not overwrite:
        raise InputError(f"{target} already has {clashes[0]}", hint="pass --force to overwrite, or pick another DIR")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(target, exc) from None
    return [copy_file(p, target / p.name) for p in notebook_paths()]  # each whole or not at all
