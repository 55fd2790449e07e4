"""The workshop: eight Jupyter lessons that teach the seed course with logitscope.

The notebooks ship inside the package (``notebooks/``, stored without outputs);
they are built from the percent-format sources in the repository's ``workshop/``
folder by ``scripts/build_workshop.py`` and executed by ``tests/test_workshop.py``.
``logitscope workshop DIR`` copies them out.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from .. import catalog, settings
from ..errors import InputError

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
    target.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(p, target / p.name)) for p in notebook_paths()]


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
