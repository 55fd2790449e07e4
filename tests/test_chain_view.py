"""The chain view's followed tokens and cut-offs (sampling/chain.py: StageRow, StageCut).

Random next-token distributions (hypothesis) through random sampler configs: each stage's rows
and cut must agree with the stage's own logits, which the processors computed; nothing here
re-implements a processor.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import logitscope
from logitscope.backends.toy import ToyBackend
from logitscope.core.processors import SamplerConfig, run_chain
from logitscope.sampling.chain import stage_kind

WORDS = [f"w{i}" for i in range(12)]


def model_with(weights: list[float]) -> logitscope.Model:
    """A toy model whose distribution after "<BOS> w0" is ``weights`` (normalised) over WORDS."""
    total = sum(weights)
    dist = {w: x / total for w, x in zip(WORDS, weights)}
    return logitscope.from_backend(ToyBackend.from_table({("<BOS>", "w0"): dist}, default={"w1": 1.0}))


configs = st.builds(SamplerConfig, temperature=st.sampled_from([0.0, 0.5, 1.0, 1.7]),
                    top_k=st.one_of(st.none(), st.integers(1, 14)), top_p=st.sampled_from([0.3, 0.6, 0.9, 1.0]),
                    min_p=st.sampled_from([0.0, 0.05, 0.3]), repetition_penalty=st.sampled_from([1.0, 1.5]),
                    bias=st.sampled_from([(), (("w2", -math.inf),), (("w11", 4.0),)]))
weight_lists = st.lists(st.integers(1, 50).map(float), min_size=len(WORDS), max_size=len(WORDS))


@settings(max_examples=60)
@given(weight_lists, configs, st.integers(1, 6))
def test_followed_rows_and_cuts_agree_with_each_stage(weights, config, top):
    result = model_with(weights).chain("w0", config, top=top)
    followed = {r.token_id for r in result.stages[0].rows}
    gone: set[int] = set()
    for before, stage in zip([None, *result.stages], result.stages):  # before: the stage feeding it
        assert {r.token_id for r in stage.rows} == followed  # the same tokens at every stage
        assert {c.token_id for c in stage.top} <= followed  # every stage's top is followed
        assert stage.kind == stage_kind(stage.stage)
        for r in stage.rows:
            assert r.kept == math.isfinite(r.logprob)  # kept = alive after this stage
            assert (r.removed_by is not None) == (not r.kept)
            if r.token_id in gone:
                assert r.removed_by != stage.stage  # removed once, by the first stage that did
        gone |= {r.token_id for r in stage.rows if not r.kept}
        in_order = [r.logit_in if before is not None else r.logit for r in stage.rows]
        finite = [x for x in in_order if x is not None and math.isfinite(x)]
        assert finite == sorted(finite, reverse=True)  # rows come in the input's order
        if before is not None:  # the removed mass holds at least the followed tokens removed here
            assert stage.removed_mass >= sum(r.prob_in for r in stage.rows if r.removed_by == stage.stage) - 1e-12
            check_cut(stage, config, before.survivors)


def check_cut(stage, config: SamplerConfig, alive: int) -> None:
    rows = [r for r in stage.rows if r.prob_in]  # alive going in
    kept, removed = [r for r in rows if r.kept], [r for r in rows if not r.kept]
    if stage.kind not in ("top-k", "top-p", "min-p", "greedy"):
        assert stage.cut is None
        return
    cut = stage.cut
    assert cut.kept == stage.survivors and cut.kept_mass == pytest.approx(1 - stage.removed_mass, abs=1e-9)
    for r in kept:  # survivors are renormalised by the kept mass
        assert r.prob == pytest.approx(r.prob_in / cut.kept_mass, rel=1e-9)
    if stage.kind == "top-k":
        assert cut.kept >= min(config.top_k, alive)
        assert all(r.logit_in >= cut.kth_logit for r in kept) and all(r.logit_in < cut.kth_logit for r in removed)
    elif stage.kind == "top-p":
        assert cut.kept_mass >= config.top_p - 1e-9 > cut.mass_before_last
        assert all(r.cum_in <= cut.kept_mass + 1e-12 for r in kept)
        assert all(r.cum_in > cut.kept_mass + 1e-12 for r in removed)
    elif stage.kind == "min-p":
        assert cut.threshold == pytest.approx(cut.p_max * config.min_p)
        assert all(r.prob_in >= cut.threshold * (1 - 1e-9) for r in kept)
        assert all(r.prob_in < cut.threshold for r in removed)


@settings(max_examples=40)
@given(weight_lists, configs, st.integers(1, 4))
def test_cumulative_masses_follow_top_ps_order(weights, config, top):
    """Σp of a row = its probability plus every more likely token's, equal ones by id (a naive reference)."""
    model = model_with(weights)
    result = model.chain("w0", config, top=top)
    ids = list(result.input_ids)
    logits = model.backend.next_logits([ids]).double()  # (1, V)
    chain = run_chain(config.stages(lambda s: model.backend.tokenize(s).ids), torch.tensor([ids]), logits)
    for stage, (_, row) in zip(result.stages, chain):
        p = torch.softmax(row[0], -1).tolist()
        for r in stage.rows:
            ahead = sum(q for j, q in enumerate(p) if q > p[r.token_id] or (q == p[r.token_id] and j <= r.token_id))
            assert r.cum == pytest.approx(ahead if r.kept else 1.0, abs=1e-9)


def test_a_hand_checked_chain():
    # 12 words, w0..w11 with weights 12..1: p(w_i) = (12 - i) / 78
    result = model_with([12.0 - i for i in range(12)]).chain("w0", SamplerConfig(top_k=6, top_p=0.5), top=8)
    raw, top_k, top_p = result.stages
    assert [r.text for r in raw.rows] == WORDS[:8] and raw.rows[2].cum == pytest.approx(33 / 78)
    assert top_k.cut.kept == 6 and top_k.cut.kept_mass == pytest.approx(57 / 78)
    assert [r.removed_by for r in top_k.rows] == [None] * 6 + ["top-k 6"] * 2
    # top-p over the 6 survivors (mass 57): 12 + 11 + 10 = 33 >= 0.5 * 57 > 12 + 11
    assert top_p.cut.kept == 3 and top_p.cut.kept_mass == pytest.approx(33 / 57)
    assert top_p.cut.mass_before_last == pytest.approx(23 / 57)
    assert [r.removed_by for r in top_p.rows] == [None] * 3 + ["top-p 0.5"] * 3 + ["top-k 6"] * 2
    assert top_p.rows[0].prob == pytest.approx(12 / 33)


def test_min_p_threshold_and_the_json_of_dist():
    result = model_with([12.0 - i for i in range(12)]).chain("w0", SamplerConfig(temperature=2.0, min_p=0.5), top=12)
    stage = result.stages[-1]
    p_max = stage.rows[0].prob_in
    assert stage.cut.p_max == pytest.approx(p_max) and stage.cut.threshold == pytest.approx(0.5 * p_max)
    data = json.loads(result.to_json())["stages"][-1]  # what `logitscope dist --json` prints
    assert data["kind"] == "min-p" and data["parameter"] == 0.5 and data["cut"]["threshold"] == stage.cut.threshold
    removed = [r for r in data["rows"] if not r["kept"]]
    assert removed and all(r["logit"] is None and r["prob"] == 0 and r["removed_by"] == "min-p 0.5" for r in removed)


def test_a_banned_token_is_followed_and_marked_by_the_bias_stage():
    result = model_with([12.0 - i for i in range(12)]).chain("w0", SamplerConfig(bias=(("w0", -math.inf),)), top=3)
    raw, bias = result.stages
    assert bias.rows[0].text == "w0" and bias.rows[0].removed_by == "bias"  # greyed at its place: first going in
    assert bias.rows[0].logit_in == raw.rows[0].logit and bias.rows[0].logprob == -math.inf
    assert [r.text for r in bias.rows] == ["w0", "w1", "w2", "w3"]  # the raw top 3 and the new top 3
    assert bias.removed_mass == pytest.approx(12 / 78) and bias.rows[1].prob == pytest.approx(11 / 66)
    assert torch.isfinite(torch.tensor([r.logit for r in bias.rows if r.kept])).all()
