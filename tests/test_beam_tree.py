"""Beam search and the tree of possibilities: exact toy cases, KV-reuse parity on smol, CLI."""

from __future__ import annotations

import json
import math

import pytest

import logitscope
from logitscope.backends.toy import EOS, ToyBackend
from logitscope.errors import InputError
from logitscope.views.text import tree_text
from tolerances import FLOAT32_TOKEN, FLOAT64

# greedy takes 'a' (0.6) and ends with p = 0.6 * 0.4 = 0.24 over 3 tokens;
# 'b <EOS>' is likelier in total (0.36) but has only 2 tokens.
TABLE = {
    ("<BOS>",): {"a": 0.6, "b": 0.4},
    ("<BOS>", "a"): {"x": 0.4, "y": 0.32, EOS: 0.28},
    ("<BOS>", "b"): {EOS: 0.9, "x": 0.1},
}


@pytest.fixture
def trap():
    return logitscope.from_backend(ToyBackend.from_table(TABLE, default={EOS: 1.0}))


# -- beam search -------------------------------------------------------------------------------------

def test_beam_without_length_normalisation_prefers_the_short_likely_beam(trap):
    result = trap.beam_search("", num_beams=2, max_new_tokens=5, alpha=0.0)
    assert [b.text for b in result.beams] == ["b", "a x"]
    assert [b.logprob for b in result.beams] == pytest.approx([math.log(0.36), math.log(0.24)])
    assert all(b.finished for b in result.beams)
    assert result.greedy.text == "a x" and result.greedy.logprob == pytest.approx(math.log(0.24))


def test_length_normalisation_reorders_the_beams(trap):
    result = trap.beam_search("", num_beams=2, max_new_tokens=5, alpha=1.0)
    assert [b.text for b in result.beams] == ["a x", "b"]
    assert [b.normalized for b in result.beams] == pytest.approx([math.log(0.24) / 3, math.log(0.36) / 2])


def test_one_beam_is_greedy(bigram_model):
    result = bigram_model.beam_search("the", num_beams=1, max_new_tokens=6)
    assert result.best.token_ids == result.greedy.token_ids
    assert result.best.logprob == FLOAT64.approx(result.greedy.logprob)


def test_unfinished_beams_stop_at_max_new_tokens(bigram_model):
    result = bigram_model.beam_search("the", num_beams=3, max_new_tokens=2)
    assert all(len(b.token_ids) <= 2 for b in result.beams) and len(result.beams) == 3


@pytest.mark.parametrize("kwargs, name", [({"num_beams": 0}, "num_beams"), ({"alpha": -1.0}, "alpha"),
                                          ({"max_new_tokens": 0}, "max_new_tokens")])
def test_beam_bad_input(trap, kwargs, name):
    with pytest.raises(InputError, match=name):
        trap.beam_search("", **kwargs)


# -- the tree ------------------------------------------------------------------------------------------

def test_tree_structure_and_probabilities(trap):
    result = trap.tree("", depth=3, branch=2, min_prob=0.01)
    rows = [("".join(a.text + " " for a in path) + n.text, n.prob, n.cum_prob) for path, n in result.nodes()]
    expected = [("a", 0.6, 0.6), ("a x", 0.4, 0.24), ("a x <EOS>", 1.0, 0.24), ("a y", 0.32, 0.192),
                ("a y <EOS>", 1.0, 0.192), ("b", 0.4, 0.4), ("b <EOS>", 0.9, 0.36), ("b x", 0.1, 0.04),
                ("b x <EOS>", 1.0, 0.04)]
    assert [r[0] for r in rows] == [e[0] for e in expected]
    assert [r[1:] for r in rows] == [pytest.approx(e[1:]) for e in expected]
    assert result.forward_steps == 1 + 2 + 3  # prefill, a, b, then a x, a y, b x (EOS is never expanded)


def test_min_prob_prunes_and_text_rendering(trap):
    result = trap.tree("", depth=2, branch=3, min_prob=0.3)
    assert tree_text(result).splitlines() == [
        "''",
        "├── a              p=0.600  path=0.6000",
        "│   ├── x              p=0.400  path=0.2400",
        "│   └── y              p=0.320  path=0.1920",
        "└── b              p=0.400  path=0.4000",
        "    └── <EOS>          p=0.900  path=0.3600",
    ]


def test_tree_json_and_image(trap, tmp_path):
    result = trap.tree("", depth=2, branch=2)
    data = json.loads(result.to_json())
    assert [c["text"] for c in data["children"]] == ["a", "b"]
    assert data["children"][0]["children"][0]["cum_prob"] == pytest.approx(0.24)
    png = tmp_path / "tree.png"
    fig = result.plot(save_to=png)
    assert png.read_bytes()[:4] == b"\x89PNG" and fig.axes[0].texts  # one box per node and the prompt


def test_tree_too_big_is_refused(trap):
    with pytest.raises(InputError, match="branch=10 and depth=10"):
        trap.tree("", depth=10, branch=10)


# -- the bundled model: KV reuse equals recomputation ----------------------------------------------------

@pytest.mark.slow
def test_tree_with_cache_reuse_equals_recomputation(smol):
    reused = smol.tree("The capital of France is", depth=2, branch=2)
    naive = smol.tree("The capital of France is", depth=2, branch=2, reuse_cache=False)
    pairs = list(zip(reused.nodes(), naive.nodes()))
    assert len(pairs) == 6 and all(a.token_id == b.token_id for (_, a), (_, b) in pairs)
    assert max(abs(a.logprob - b.logprob) for (_, a), (_, b) in pairs) < 1e-4


@pytest.mark.parity
@pytest.mark.slow
def test_beam_scores_agree_with_scoring_the_beam(smol):
    result = smol.beam_search("The capital of France is", num_beams=2, max_new_tokens=4)
    ids = list(result.input_ids)
    for beam in result.beams:
        scores = smol.backend.score_positions([ids + list(beam.token_ids)], [len(ids)])[0]
        assert float(scores.logprob.sum()) == FLOAT32_TOKEN.approx(beam.logprob)


# -- CLI ---------------------------------------------------------------------------------------------------

def test_cli_beam_and_tree(cli, tmp_path):
    out = cli(["beam", "the", "-m", "toy", "--beams", "2", "-n", "4", "--json"])
    assert out.exit_code == 0 and len(json.loads(out.output)["beams"]) == 2
    png = tmp_path / "t.png"
    out = cli(["tree", "the", "-m", "toy", "-d", "2", "-b", "2", "--image", str(png)])
    assert out.exit_code == 0 and out.output.startswith("'the'") and png.exists()
    out = cli(["tree", "the", "-m", "toy", "--branch", "0"])
    assert out.exit_code == 2 and "branch" in out.output
