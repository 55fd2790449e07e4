"""How a learner's function is compared with the library's: cases, safe calls, plain-words diffs.

A task (``logitscope.workshop.tasks``) runs the learner's function and the library's reference
on the same cases — random ones from a fixed seed and adversarial ones (ties, -inf, a single
token, p = 1, k larger than the vocabulary) — and returns ``None`` when every case agrees, or one
sentence about the first case that does not: what the input was, what the learner's function
did, what the reference does, and the rule that explains the difference.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .checks import NotDone, show


@dataclass(frozen=True)
class Case:
    """One input for a task: the arguments, a short description, and the rule it probes."""

    args: tuple
    about: str  # "logits [3, 1, 1] with k = 2"
    rule: str = ""  # the sentence that explains a mismatch on this case


class Mismatch(Exception):
    """The learner's result differs from the reference's on one case (the message says how)."""


def call(fn: Callable, case: Case, name: str) -> Any:
    """The learner's ``fn(*case.args)``: a stub result or NotImplementedError means not done;
    any other exception, or a change to the inputs, is a mismatch explained in words."""
    args = copy.deepcopy(case.args)
    try:
        result = fn(*args)
    except NotImplementedError:
        raise NotDone from None
    except Exception as error:
        raise Mismatch(f"your {name} raised {type(error).__name__}: {error}") from None
    if result is None or result is ...:
        raise NotDone
    if not _same_inputs(args, case.args):
        raise Mismatch(f"your {name} changed its input in place; work on a copy (e.g. logits.clone())")
    return result


def _same_inputs(after: tuple, before: tuple) -> bool:
    for a, b in zip(after, before):
        if isinstance(b, torch.Tensor):
            if not (isinstance(a, torch.Tensor) and a.shape == b.shape and torch.equal(a.isnan(), b.isnan())
                    and torch.equal(torch.nan_to_num(a), torch.nan_to_num(b))):
                return False
        elif a != b and not isinstance(b, Callable):
            return False
    return True


def as_vector(result, name: str, length: int) -> torch.Tensor:
    """The learner's result as a float64 vector of the given length (lists and NumPy arrays work too)."""
    try:
        vec = torch.as_tensor(result.tolist() if hasattr(result, "tolist") else result, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise Mismatch(f"your {name} returned {type(result).__name__}, not a vector of numbers") from None
    if vec.dim() == 2 and vec.shape[0] == 1:
        vec = vec[0]
    if vec.shape != (length,):
        raise Mismatch(f"your {name} returned shape {tuple(vec.shape)}; expected one value per token ({length},)")
    return vec


def grade(fn: Callable, cases: Sequence[Case], name: str, compare: Callable[[Any, Case], str | None]) -> str | None:
    """Run ``fn`` on every case; ``compare(result, case)`` returns a problem or None.
    The first problem, with the case it came from, is the verdict."""
    for case in cases:
        try:
            problem = compare(call(fn, case, name), case)
        except Mismatch as mismatch:
            problem = str(mismatch)
        if problem is not None:
            rule = f" ({case.rule})" if case.rule else ""
            return f"on {case.about}: {problem}{rule}"
    return None


def kept(logits: torch.Tensor) -> list[int]:
    """The ids a filter kept (finite logits)."""
    return [int(i) for i in torch.nonzero(torch.isfinite(logits)).flatten()]


def compare_filters(mine: torch.Tensor, ref: torch.Tensor, what: str) -> str | None:
    """Same survivors, and survivors' logits unchanged relative to each other."""
    a, b = kept(mine), kept(ref)
    if a != b:
        extra, missing = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        detail = "; ".join(x for x in (f"it also keeps token(s) {extra}" if extra else "",
                                       f"it drops token(s) {missing}" if missing else "") if x)
        if len(a) == len(b):
            return f"your {what} keeps tokens {a} where the reference keeps {b}"
        return f"your {what} keeps {len(a)} token(s) where the reference keeps {len(b)}: {detail}"
    if torch.isnan(mine).any():
        return f"your {what} returns NaN; a removed token gets -inf, not NaN"
    if any(mine[i] == float("inf") for i in a):
        return f"your {what} returns +inf"
    diff = (mine[a] - mine[a].max()) - (ref[a] - ref[a].max())
    if a and float(diff.abs().max()) > 1e-6:
        return f"your {what} changed the surviving logits ({show(mine[a])} instead of {show(ref[a])})"
    return None


def random_logits(generator: torch.Generator, sizes: Sequence[int], scale: float = 2.0) -> list[torch.Tensor]:
    """Reproducible random logit vectors, one per size."""
    return [torch.randn(v, generator=generator, dtype=torch.float64) * scale for v in sizes]


def seeded(seed: int = 0) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def vec(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)
