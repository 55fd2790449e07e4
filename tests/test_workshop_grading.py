"""The workshop's grader: every from-scratch task accepts a correct implementation written the
seed's way (not the library's code) and the lessons' own worked solutions (read from the packaged
notebooks, no kernel), and explains a typical wrong one in words; check() and claim() behave as
each edition needs. No kernel, no model: fast."""

from __future__ import annotations

import ast
import functools
import json
import math

import numpy as np
import pytest
import torch

from logitscope import workshop
from logitscope.workshop import tasks
from logitscope.workshop.checks import ClaimFailed, ExerciseFailed, close_to, only_globals


# -- correct implementations, the seed's way ------------------------------------------------------
def softmax(z):
    z = z - z.max()
    e = z.exp()
    return e / e.sum()

def softmax_t(z, tau):
    z = z / tau
    z = z - z.max()
    e = z.exp()
    return e / e.sum()

def top_k_filter(logits, k):
    if k >= logits.numel():
        return logits.clone()
    kth = logits.sort(descending=True).values[k - 1]
    return logits.masked_fill(logits < kth, float("-inf"))

def top_p_filter(logits, p):
    probs = softmax(logits)
    order = probs.argsort(descending=True, stable=True)
    before = probs[order].cumsum(0) - probs[order]
    keep = torch.zeros_like(probs, dtype=torch.bool)
    keep[order] = before < p
    return logits.masked_fill(~keep, float("-inf"))

def min_p_filter(logits, m):
    probs = softmax(logits)
    return logits.masked_fill(probs < m * probs.max(), float("-inf"))

def sample(logits, n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.multinomial(softmax(logits), n, replacement=True, generator=g)

def sampler_chain(logits, temperature, top_k, top_p, min_p):
    z = logits / temperature
    z = top_k_filter(z, top_k)
    z = top_p_filter(z, top_p)
    return min_p_filter(z, min_p)

def perplexity(logprobs):
    return math.exp(-sum(logprobs) / len(logprobs))

def ece(confidence, correct, bins):
    conf, corr = np.asarray(confidence, float), np.asarray(correct, float)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        inside = (conf > lo) & (conf <= hi) | ((conf == 0) & (i == 0))
        if inside.any():
            total += inside.mean() * abs(corr[inside].mean() - conf[inside].mean())
    return total


CORRECT = {"softmax": softmax, "temperature": softmax_t, "top_k": top_k_filter, "top_p": top_p_filter,
           "min_p": min_p_filter, "sampling": sample, "chain": sampler_chain, "perplexity": perplexity, "ece": ece}
SOLVED_IN = {"softmax": ("01_logits_to_probabilities", "softmax"), "temperature": ("01_logits_to_probabilities", "softmax_t"),
             "top_k": ("03_sampling", "top_k_filter"), "top_p": ("03_sampling", "top_p_filter"),
             "min_p": ("03_sampling", "min_p_filter"), "sampling": ("03_sampling", "sample"),
             "chain": ("03_sampling", "sampler_chain"), "beam": ("04_generation", "beam_search"),
             "perplexity": ("06_probability_math", "perplexity"), "ece": ("06_probability_math", "ece"),
             "windows": ("08_logits_and_perplexity_exercise", "sliding_windows")}


@functools.cache
def lesson_solution(lesson: str, name: str):
    """The function ``name`` as the lesson's solution edition defines it: the functions and CONSTANTS
    of the lesson's solution cells, run in order in a namespace holding the lessons' imports."""
    pytest.importorskip("nbformat")
    from logitscope.core import mathops
    from logitscope.workshop import read_lessons

    namespace = {"math": math, "np": np, "torch": torch, "mathops": mathops}
    for cell in read_lessons()[lesson].cells:
        if "solution" in cell.metadata.get("tags", []) and cell.cell_type == "code":
            tree = ast.parse(cell.source)
            tree.body = [node for node in tree.body if isinstance(node, ast.FunctionDef) or
                         (isinstance(node, ast.Assign) and all(getattr(t, "id", "").isupper() for t in node.targets))]
            exec(compile(tree, f"<{lesson}>", "exec"), namespace)  # noqa: S102 - the packaged lesson's own code
    return namespace[name]


@pytest.mark.parametrize("task", sorted(CORRECT))
def test_a_correct_implementation_passes(task):
    assert getattr(tasks, task)(CORRECT[task]) is None


@pytest.mark.parametrize("task", sorted(SOLVED_IN))
def test_the_lessons_worked_solutions_pass_their_tasks(task):
    assert getattr(tasks, task)(lesson_solution(*SOLVED_IN[task])) is None


@pytest.mark.parametrize("task", sorted(SOLVED_IN))
def test_a_stub_is_not_done(task):
    with pytest.raises(workshop.NotDone):
        getattr(tasks, task)(lambda *args: ...)


# -- typical mistakes, each explained --------------------------------------------------------------
def top_p_drops_crossing(logits, p):
    probs = softmax(logits)
    order = probs.argsort(descending=True, stable=True)
    keep = torch.zeros_like(probs, dtype=torch.bool)
    keep[order] = probs[order].cumsum(0) <= p
    keep[order[0]] = True
    return logits.masked_fill(~keep, float("-inf"))


def top_k_breaks_ties(logits, k):
    if k >= logits.numel():
        return logits.clone()
    idx = logits.topk(k).indices
    out = torch.full_like(logits, float("-inf"))
    out[idx] = logits[idx]
    return out


def top_k_in_place(logits, k):
    logits[logits < logits.sort(descending=True).values[min(k, len(logits)) - 1]] = float("-inf")
    return logits


def chain_top_p_first(logits, temperature, top_k, top_p, min_p):
    return min_p_filter(top_k_filter(top_p_filter(logits, top_p) / temperature, top_k), min_p)


def perplexity_by_product(logprobs):
    return math.prod(math.exp(x) for x in logprobs) ** (-1 / len(logprobs))


def ece_left_closed(confidence, correct, bins):
    conf, corr = np.asarray(confidence, float), np.asarray(correct, float)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    return sum((which == b).mean() * abs(corr[which == b].mean() - conf[which == b].mean())
               for b in range(bins) if (which == b).any())


MISTAKES = [
    ("softmax", lambda z: z.exp() / z.exp().sum(), "subtract the largest logit"),
    ("temperature", lambda z, tau: softmax(z * tau), "the reference"),
    ("top_k", top_k_breaks_ties, "tied with the k-th largest logit stays"),
    ("top_k", top_k_in_place, "changed its input in place"),
    ("top_p", top_p_drops_crossing, "the token that crosses p stays"),
    ("min_p", lambda z, m: min_p_filter(z, m).masked_fill(softmax(z) <= m * softmax(z).max(), float("-inf")),
     "tied with it"),
    ("sampling", lambda z, n, seed: torch.multinomial(softmax(z), n, replacement=True), "same seed gave different draws"),
    ("sampling", lambda z, n, seed: torch.full((n,), int(z.argmin())), "-inf"),
    ("chain", chain_top_p_first, "the production order is temperature -> top-k -> top-p -> min-p"),
    ("perplexity", perplexity_by_product, "average the log-probs"),
    ("windows", lambda n, w, s: [(b, min(b + w, n), max(b, 1)) for b in range(0, n, w)], "left context"),
    ("beam", lambda f, w, m, a: lesson_solution("04_generation", "beam_search")(f, w, m, 0.0),
     "alpha = 1 ranks by the mean log-prob"),
    ("ece", ece_left_closed, "closed on the right"),
]


@pytest.mark.parametrize("task, fn, words", MISTAKES, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(MISTAKES)])
def test_a_typical_mistake_is_explained(task, fn, words):
    verdict = getattr(tasks, task)(fn)
    assert verdict is not None and verdict.startswith("on ") and words in verdict, verdict


def test_top_p_explains_the_crossing_token_with_counts():
    verdict = tasks.top_p(top_p_drops_crossing)
    assert "your top-p keeps" in verdict and "where the reference keeps" in verdict and "it drops token(s)" in verdict


# -- check and claim in the two editions ------------------------------------------------------------
def test_solution_edition_raises_on_a_wrong_or_unfinished_answer(capsys):
    workshop.begin("t", edition="solutions")
    workshop.check("a", 0.5, close_to(0.5))
    with pytest.raises(ExerciseFailed, match="'b'.*failed: the value is 0.4, expected 0.5"):
        workshop.check("b", 0.4, close_to(0.5))
    with pytest.raises(ExerciseFailed, match="not done"):
        workshop.check("c", ..., close_to(0.5))
    with pytest.raises(ClaimFailed, match="the text says 'x is 1'"):
        workshop.claim("x is 1", 2.0, close_to(1.0))


def test_student_edition_prints_and_never_raises(capsys):
    workshop.begin("t", edition="student")
    workshop.check("right", 0.5, close_to(0.5))
    workshop.check("wrong", 0.4, close_to(0.5))
    workshop.check("stub", (..., 3), close_to(0.5))
    workshop.check("crash", "text", close_to(0.5))  # the test itself breaks on the answer: explained
    workshop.check("rerun", ..., close_to(0.5))
    workshop.check("rerun", 0.5, close_to(0.5))  # a re-run cell replaces its outcome
    workshop.claim("x is 1", 2.0, close_to(1.0))
    workshop.summary()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "✓ right: correct" and out[1].startswith("✗ wrong: the value is 0.4")
    assert out[2].startswith("… stub: not done yet") and out[3].startswith("✗ crash: checking your answer raised ValueError")
    assert out[6].startswith("! the text says 'x is 1'")
    assert json.loads(out[-1]) == {"notebook": "t", "edition": "student", "exercises": 5, "passed": 2, "not_done": 1,
                                   "failed": ["wrong", "crash"], "claims": 1}


def test_the_verdict_is_true_only_when_passed_and_a_do_nothing_function_is_a_stub(capsys):
    workshop.begin("t", edition="student")

    def stub(z):
        """Return the softmax of z."""
        # your code here
        ...

    def returns_none(z):
        return None

    assert workshop.check("right", 0.5, close_to(0.5)) and workshop.check("right", 0.5, close_to(0.5)).outcome == "passed"
    assert not workshop.check("wrong", 0.4, close_to(0.5))
    assert workshop.check("stub", stub, tasks.softmax).outcome == "not_done"
    assert workshop.check("pass", lambda z: None, tasks.softmax).outcome == "not_done"
    assert workshop.check("none", returns_none, tasks.softmax).outcome == "not_done"
    assert workshop.check("real", lambda z: z, tasks.softmax).outcome == "failed"  # does something: graded


def test_lazy_builds_its_test_only_for_a_given_answer(capsys):
    built = []

    def expensive():
        built.append(1)
        return close_to(0.5)

    workshop.begin("t", edition="student")
    assert workshop.check("stub", ..., workshop.lazy(expensive)).outcome == "not_done" and built == []
    assert workshop.check("given", 0.5, workshop.lazy(expensive)) and built == [1]
    assert "the value is 0.4" in workshop.check("wrong", 0.4, workshop.lazy(expensive)).message


NOTEBOOK_GLOBAL = 3


def test_only_globals_is_the_seeds_check_global_vars():
    def uses_global(x):
        return x + NOTEBOOK_GLOBAL

    def uses_attribute(model):
        return model.NOTEBOOK_GLOBAL  # an attribute, not the global

    assert "NOTEBOOK_GLOBAL" in only_globals(["math"])(uses_global)
    assert only_globals(["math"])(uses_attribute) is None
