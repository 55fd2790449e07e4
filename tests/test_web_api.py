"""The web app's JSON API against the library, on exact toy models (FastAPI's TestClient)."""

from __future__ import annotations

import itertools
import json
import math
import threading
import time

import httpx
import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

import logitscope  # noqa: E402
from logitscope.core.processors import SamplerConfig  # noqa: E402
from logitscope.views.html import render_html  # noqa: E402
from logitscope.web import create_ui_app  # noqa: E402
from logitscope.web.api import STATIC  # noqa: E402
from webapp import free_port, serve, toy  # noqa: E402
from tolerances import FLOAT32_ROUNDING  # noqa: E402

TEXT = "the cat sat on the mat"


@pytest.fixture
def model():
    return toy()


@pytest.fixture
def client(model):
    with TestClient(create_ui_app({"toy": model})) as c:
        yield c


def post(client, path, **body):
    r = client.post(path, json=body)
    assert r.status_code == 200, r.text
    return r.json()


# -- reading ------------------------------------------------------------------------------------

def test_read_returns_the_library_score_uncertain_spans_and_summary(client, model):
    out = post(client, "/api/read", text=TEXT, top_k=10)
    assert out["score"] == json.loads(model.score(TEXT, top_k=10).to_json())
    assert out["uncertain"] == [s.to_dict() for s in model.uncertain(TEXT, top_k=10).spans]
    assert out["flagged"] == list(model.uncertain(TEXT).flagged)
    assert out["notes"] == [] and out["model"] == "toy"


def test_read_with_context_scores_only_the_text(client, model):
    out = post(client, "/api/read", text="sat on the mat", context="the cat ")
    assert out["score"]["total_logprob"] == pytest.approx(model.score("sat on the mat", context="the cat ").total_logprob)
    assert {t["role"] for t in out["score"]["tokens"] if t["logprob"] is None} >= {"context"}


def test_over_context_text_is_windowed_and_the_page_is_told(model):
    short = toy(context_length=8)
    text = " ".join(["the cat sat on the mat"] * 4)  # 24 tokens, context 8
    with TestClient(create_ui_app({"toy": short})) as c:
        out = post(c, "/api/read", text=text)
    assert out["score"]["num_windows"] > 1
    assert out["score"]["total_logprob"] == pytest.approx(short.score(text).total_logprob)
    assert "over the model's context of 8" in out["notes"][0] and "windows" in out["notes"][0]


@pytest.mark.parametrize("body, status, words", [
    ({"text": ""}, 400, "empty"),
    ({"text": "   \n"}, 400, "empty"),
    ({"text": "zebra"}, 400, "vocabulary"),
    ({"text": TEXT, "top_k": 51}, 422, "top_k"),
    ({"text": TEXT, "max_prob_below": 2}, 422, "max_prob_below"),
    ({"text": TEXT, "color_by": "javascript"}, 422, "color_by"),
    ({"text": TEXT, "nonsense": 1}, 422, "nonsense"),
])
def test_bad_reads_answer_with_a_message(client, body, status, words):
    r = client.post("/api/read", json=body)
    assert r.status_code == status
    assert words in r.json()["error"]["message"]


def test_position_distribution_is_the_models_next_token_distribution(client, model):
    ids = list(model.score(TEXT).input_ids)
    out = post(client, "/api/position", ids=ids[:3], top=5)
    expected = logitscope.from_backend(model.backend).next_token("the cat", top_k=5)
    assert [c["token_id"] for c in out["top"]] == [c.token_id for c in expected.top]
    assert [c["prob"] for c in out["top"]] == FLOAT32_ROUNDING.approx([c.prob for c in expected.top])
    assert out["top"][-1]["cumulative"] == FLOAT32_ROUNDING.approx(sum(c.prob for c in expected.top))
    assert out["entropy"] == FLOAT32_ROUNDING.approx(expected.entropy)


def test_position_gives_the_read_tokens_own_row_beyond_the_top(client, model):
    scored = model.score("the cat mat")
    ids, last = list(scored.input_ids), scored.tokens[-1]  # "mat" after "the cat": rank 3, beyond a top 2
    out = post(client, "/api/position", ids=ids[:3], top=2, token_id=last.token_id)
    assert len(out["top"]) == 2 and out["read"]["token_id"] == last.token_id
    assert out["read"]["rank"] == last.rank > 2 and out["read"]["prob"] == FLOAT32_ROUNDING.approx(last.prob)
    assert "read" not in post(client, "/api/position", ids=ids[:3], top=2)
    bad = client.post("/api/position", json={"ids": ids[:3], "token_id": 10**6})
    assert bad.status_code == 400 and "not in the vocabulary" in bad.json()["error"]["message"]


def test_continue_is_greedy_generation_after_the_chosen_token(client, model):
    ids = list(model.score("the dog").input_ids)
    out = post(client, "/api/continue", ids=ids, max_new_tokens=6)
    assert out["text"] == model.generate("the dog", 6, SamplerConfig.greedy()).text


def test_html_download_is_the_cli_heatmap(client, model):
    r = client.post("/api/read/html", json={"text": TEXT, "color_by": "rank"})
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    assert r.text == render_html(model.score(TEXT, top_k=10), "rank")


# -- sampler lab -----------------------------------------------------------------------------------

def test_lab_chain_equals_model_chain_and_reuses_the_logits(client, model):
    settings = {"temperature": 0.7, "top_k": 4, "top_p": 0.9, "min_p": 0.05, "repetition_penalty": 1.3,
                "bias": [["mat", -math.inf], [11, 2.0]]}
    config = SamplerConfig(0.7, 4, 0.9, 0.05, 1.3, (("mat", -math.inf), (11, 2.0)))
    expected = json.loads(model.chain("the cat", config, top=12).to_json())
    body = {**settings, "bias": [["mat", "-inf"], [11, 2.0]]}
    first = post(client, "/api/lab/chain", prompt="the cat", top=12, **body)
    calls = model.backend.calls
    for t in (0.5, 1.5, 0.0):  # slider moves: no forward pass
        post(client, "/api/lab/chain", prompt="the cat", top=12, **{**body, "temperature": t})
    again = post(client, "/api/lab/chain", prompt="the cat", top=12, **body)
    assert model.backend.calls == calls
    for out in (first, again):
        assert {k: v for k, v in out.items() if k != "logits_cache"} == expected
    assert again["logits_cache"]["hits"] == 4 and again["logits_cache"]["misses"] == 1


def test_lab_sample_equals_model_sample(client, model):
    config = SamplerConfig(temperature=0.8, top_k=5)
    out = post(client, "/api/lab/sample", prompt="the", temperature=0.8, top_k=5, n=1000, seed=3)
    assert out == json.loads(model.sample("the", 1000, config, seed=3).to_json())


@pytest.mark.parametrize("field, value", [("temperature", -1), ("temperature", 1e9), ("top_k", 0), ("top_p", 0),
                                          ("top_p", 1.5), ("min_p", 2), ("repetition_penalty", 0),
                                          ("top", 0), ("bias", "x")])
def test_out_of_range_sampler_values_are_422_with_a_message(client, field, value):
    r = client.post("/api/lab/chain", json={"prompt": "the", field: value})
    assert r.status_code == 422
    assert field in r.json()["error"]["message"] and r.json()["error"]["param"] == field


def test_sample_count_out_of_range_is_422(client):
    r = client.post("/api/lab/sample", json={"prompt": "the", "n": 10**9})
    assert r.status_code == 422 and "n" == r.json()["error"]["param"]


# -- step by step ----------------------------------------------------------------------------------

def test_stepping_reproduces_generate_with_the_same_seed(client, model):
    config = SamplerConfig(temperature=1.2, top_k=6)
    expected = model.generate("the", 8, config, seed=5)
    s = post(client, "/api/step", prompt="the", temperature=1.2, top_k=6, seed=5)
    for _ in range(len(expected.steps)):
        s = post(client, f"/api/step/{s['id']}/step")
    tokens = [s["nodes"][i]["token_id"] for i in s["path"]]
    assert tokens == list(expected.token_ids)
    last = s["nodes"][s["path"][-1]]
    assert last["cum_logprob"] == pytest.approx(expected.total_logprob)
    assert [s["nodes"][i]["logprob"] for i in s["path"]] == pytest.approx([st.logprob for st in expected.steps])


def test_force_undo_and_goto_keep_every_branch(client, model):
    s = post(client, "/api/step", prompt="the", seed=0)
    dist = s["distribution"]
    first, second = dist["top"][0], dist["top"][1]
    s = post(client, f"/api/step/{s['id']}/step", token_id=first["token_id"])
    a = s["current"]
    assert s["nodes"][a]["prob"] == pytest.approx(first["raw_prob"])
    s = post(client, f"/api/step/{s['id']}/undo")
    assert s["current"] == 0
    s = post(client, f"/api/step/{s['id']}/step", token_id=second["token_id"])
    assert sorted(s["nodes"][0]["children"]) == [a, s["current"]]
    s = post(client, f"/api/step/{s['id']}/goto", node=a)
    assert s["path"] == [a] and s["text"] == first["text"]
    s = post(client, f"/api/step/{s['id']}/step", token_id=first["token_id"])  # forcing an existing child
    assert len(s["nodes"]) == 4
    s = post(client, f"/api/step/{s['id']}/goto", node=a)
    s = post(client, f"/api/step/{s['id']}/step", token_id=first["token_id"])
    assert len(s["nodes"]) == 4  # the same child again, not a duplicate


def test_undo_rewinds_the_seeded_generator(client, model):
    settings = {"prompt": "the", "temperature": 1.5, "seed": 3, "bias": [["<EOS>", "-inf"]]}
    fresh = post(client, "/api/step", **settings)
    for _ in range(4):  # a run that never goes back
        fresh = post(client, f"/api/step/{fresh['id']}/step")
    drawn = [fresh["nodes"][i]["token_id"] for i in fresh["path"]]
    s = post(client, "/api/step", **settings)
    sid, root_top = s["id"], s["distribution"]["top"]
    post(client, f"/api/step/{sid}/step")
    second = post(client, f"/api/step/{sid}/step")["nodes"][-1]["token_id"]
    post(client, f"/api/step/{sid}/undo")
    again = post(client, f"/api/step/{sid}/step")
    assert again["nodes"][again["current"]]["token_id"] == second == drawn[1]
    post(client, f"/api/step/{sid}/goto", node=0)  # goto rewinds too: the same draws from the prompt
    for _ in range(4):
        s = post(client, f"/api/step/{sid}/step")
    assert [s["nodes"][i]["token_id"] for i in s["path"]] == drawn and len(s["nodes"]) == 5  # no new branch
    # a detour (a forced token, then a draw after it) does not change the draws after returning
    other = next(c["token_id"] for c in root_top if c["token_id"] != drawn[0])
    post(client, f"/api/step/{sid}/goto", node=0)
    post(client, f"/api/step/{sid}/step", token_id=other)
    post(client, f"/api/step/{sid}/step")
    post(client, f"/api/step/{sid}/undo")
    post(client, f"/api/step/{sid}/undo")
    s = post(client, f"/api/step/{sid}/step")
    assert s["nodes"][s["current"]]["token_id"] == drawn[0]


def test_tree_after_the_current_node_equals_model_tree(client, model):
    s = post(client, "/api/step", prompt="the", seed=1)
    cat = next(c for c in s["distribution"]["top"] if c["text"] == "cat")
    s = post(client, f"/api/step/{s['id']}/step", token_id=cat["token_id"])
    out = post(client, f"/api/step/{s['id']}/tree", depth=2, branch=3)
    expected = model.tree("the cat", depth=2, branch=3)
    assert out["node"] == s["current"] and out["input_ids"] == list(expected.input_ids)
    assert out["children"] == json.loads(expected.to_json())["children"]
    assert len(out["children"]) == 3 and all(len(c["children"]) > 0 for c in out["children"])
    root = post(client, f"/api/step/{s['id']}/goto", node=0)
    out = post(client, f"/api/step/{root['id']}/tree", branch=2)
    assert out["node"] == 0 and out["prompt"] == "the"
    assert out["children"] == json.loads(model.tree("the", depth=3, branch=2).to_json())["children"]


def test_tree_errors(client, model):
    s = post(client, "/api/step", prompt="the")
    assert client.post(f"/api/step/{s['id']}/tree", json={"depth": 0}).status_code == 422
    assert client.post(f"/api/step/{s['id']}/tree", json={"branch": 11}).status_code == 422
    r = client.post(f"/api/step/{s['id']}/tree", json={"depth": 8, "branch": 10})
    assert r.status_code == 400 and "leaves" in r.json()["error"]["message"]
    eos = post(client, f"/api/step/{s['id']}/step", token_id=model.backend.eos_token_id)
    r = client.post(f"/api/step/{eos['id']}/tree", json={})
    assert r.status_code == 400 and "end-of-text" in r.json()["error"]["message"]


def test_step_errors(client):
    s = post(client, "/api/step", prompt="the")
    assert client.post(f"/api/step/{s['id']}/undo").status_code == 400
    assert client.post(f"/api/step/{s['id']}/goto", json={"node": 99}).status_code == 400
    assert client.post(f"/api/step/{s['id']}/step", json={"token_id": 10**6}).status_code == 400
    assert client.post(f"/api/step/{s['id']}/step", json={"token_id": -1}).status_code == 422
    assert client.post("/api/step/nope/step", json={}).status_code == 400
    assert client.post("/api/step", json={"prompt": "the", "seed": -1}).status_code == 422


def test_run_n_streams_progress_then_the_session(client, model):
    s = post(client, "/api/step", prompt="the", seed=2)
    lines = [json.loads(x) for x in client.post(f"/api/step/{s['id']}/run", json={"n": 5}).text.splitlines()]
    assert "job" in lines[0] and lines[1]["of"] == 5
    progress = [x["progress"] for x in lines if "progress" in x]
    final = lines[-1]["result"]
    assert progress == list(range(1, len(progress) + 1)) and len(final["path"]) == len(progress) <= 5
    expected = model.generate("the", 5, SamplerConfig(), seed=2)
    assert [final["nodes"][i]["token_id"] for i in final["path"]] == list(expected.token_ids)


def test_cancelled_run_stops_and_the_server_keeps_serving():
    """A long Run N is cancelled mid-way; a short read is answered while it runs and after."""
    slow = toy()
    slow.backend.delay = 0.05  # 50 ms per forward pass: 400 steps would take 20 s
    with serve({"toy": slow}) as url, httpx.Client(base_url=url, timeout=30) as http:
        s = http.post("/api/step", json={"prompt": "the", "temperature": 1.0, "bias": [["<EOS>", "-inf"]]}).json()
        lines, started = [], threading.Event()

        def run():
            with http.stream("POST", f"/api/step/{s['id']}/run", json={"n": 400}) as r:
                for line in r.iter_lines():
                    lines.append(json.loads(line))
                    if len(lines) >= 4:
                        started.set()

        runner = threading.Thread(target=run)
        runner.start()
        assert started.wait(20)
        t0 = time.monotonic()
        mid = http.post("/api/read", json={"text": TEXT})  # served between two steps of the run
        assert mid.status_code == 200 and time.monotonic() - t0 < 5
        assert http.post(f"/api/jobs/{lines[0]['job']}/cancel").json()["cancelled"]
        runner.join(20)
        assert lines[-1]["cancelled"] and 0 < len(lines[-1]["session"]["path"]) < 400
        assert http.post("/api/read", json={"text": TEXT}).json()["score"]["num_scored"] == 6
        assert http.post(f"/api/jobs/{lines[0]['job']}/cancel").status_code == 404


@pytest.mark.parametrize("path, body", [
    ("/api/beam", {"prompt": "the cat", "num_beams": 8, "max_new_tokens": 40}),
    ("/api/rank", {"prompt": "the", "candidates": [" " + " ".join(c) for c in
                                                   itertools.permutations(["cat", "dog", "sat", "on", "mat"], 3)]}),
    ("tree", {"depth": 5, "branch": 6}),
])
def test_long_one_call_analyses_stream_and_stop_at_cancel(path, body):
    """Tree, beam search and ranking run on an Interruptible backend: Cancel stops them at their next
    call into the model, the stream ends with {"cancelled": true}, and the model is called no more."""
    full = toy()  # the same request run to the end, to count its forward passes
    with TestClient(create_ui_app({"toy": full})) as c:
        where = f"/api/step/{post(c, '/api/step', prompt='the')['id']}/tree" if path == "tree" else path
        post(c, where, **body)
    slow = toy()
    slow.backend.delay = 0.02
    with serve({"toy": slow}) as url, httpx.Client(base_url=url, timeout=30) as http:
        if path == "tree":
            path = f"/api/step/{http.post('/api/step', json={'prompt': 'the'}).json()['id']}/tree"
        lines = []
        with http.stream("POST", path, json={**body, "stream": True}) as r:
            for line in r.iter_lines():
                lines.append(json.loads(line))
                if len(lines) == 1:
                    time.sleep(0.3)
                    assert http.post(f"/api/jobs/{lines[0]['job']}/cancel").json()["cancelled"]
        calls = slow.backend.calls
        time.sleep(0.3)
        assert lines[-1] == {"cancelled": True} and slow.backend.calls == calls < full.backend.calls
        if path.endswith("/tree"):
            assert any(x.get("of") == sum(6 ** d for d in range(5)) for x in lines[1:-1])  # progress: calls of all
        assert http.post("/api/read", json={"text": TEXT}).json()["score"]["num_scored"] == 6


def test_streamed_tree_beam_rank_and_continue_equal_the_plain_answers(client, model):
    s = post(client, "/api/step", prompt="the")
    ids = list(model.score("the dog").input_ids)
    for path, body in [(f"/api/step/{s['id']}/tree", {"depth": 2}), ("/api/beam", {"prompt": "the cat"}),
                       ("/api/rank", {"prompt": "the", "candidates": [" cat", " dog"]}),
                       ("/api/continue", {"ids": ids, "max_new_tokens": 4})]:
        lines = [json.loads(x) for x in client.post(path, json={**body, "stream": True}).text.splitlines()]
        assert "job" in lines[0] and lines[-1]["result"] == post(client, path, **body)


def test_colour_scales_are_the_views_own(client):
    from logitscope.views.colours import page_scales

    assert client.get("/api/colours").json() == json.loads(json.dumps(page_scales()))


def test_sigterm_ends_running_streams_and_stops_cleanly(tmp_path):
    """`logitscope ui`'s server (web.serve_ui) under SIGTERM with a long Run N streaming: the stream ends
    as cancelled, the process exits within seconds, and nothing is printed on stderr."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    port = free_port()
    script = ("import sys; sys.path.insert(0, %r)\n"
              "from webapp import toy\nfrom logitscope.web import serve_ui\n"
              "m = toy(); m.backend.delay = 0.05\nserve_ui({'toy': m}, %d)\n") % (str(Path(__file__).parent), port)
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for _ in range(200):
                try:
                    s = http.post("/api/step", json={"prompt": "the", "bias": [["<EOS>", "-inf"]]}).json()
                    break
                except httpx.ConnectError:
                    time.sleep(0.1)
            lines = []
            with http.stream("POST", f"/api/step/{s['id']}/run", json={"n": 400}) as r:
                for line in r.iter_lines():
                    lines.append(json.loads(line))
                    if len(lines) == 4:
                        t0 = time.monotonic()
                        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=20)[1]
    finally:
        proc.kill()
    assert lines[-1]["cancelled"] is True and len(lines) < 50  # ended at the next step, or at once
    assert time.monotonic() - t0 < 5 and proc.returncode in (0, -signal.SIGTERM)
    assert err.strip() == "", err  # no "Task was destroyed but it is pending!", no ERROR line


# -- compare, rank, models, static ---------------------------------------------------------------------

def test_beam_equals_model_beam_search(client, model):
    out = post(client, "/api/beam", prompt="the cat", num_beams=3, max_new_tokens=5)
    assert out == json.loads(model.beam_search("the cat", 3, 5).to_json())


def test_rank_and_lift_equal_the_library(client, model):
    cands = [" sat", " slept", " mat"]
    out = post(client, "/api/rank", prompt="the cat", candidates=cands, context="the dog sat")
    assert out["rank"] == json.loads(model.rank("the cat", cands).to_json())
    assert out["lift"] == [json.loads(model.context_lift("the cat", c, ["the dog sat"]).to_json()) for c in cands]
    assert post(client, "/api/rank", prompt="the cat", candidates=cands)["lift"] is None


def test_two_models_are_listed_and_read_separately():
    a, b = toy(), logitscope.load("toy")
    with TestClient(create_ui_app({"a": a, "b": b})) as c:
        assert [m["name"] for m in c.get("/api/models").json()["models"]] == ["a", "b"]
        assert post(c, "/api/read", text=TEXT, model="b")["score"]["total_logprob"] == pytest.approx(
            b.score(TEXT, top_k=10).total_logprob)
        assert c.post("/api/read", json={"text": TEXT, "model": "zz"}).status_code == 404


def test_the_page_and_its_files_are_served_with_a_same_origin_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
    for name in ("app.js", "common.js", "read.js", "lab.js", "step.js", "rank.js", "app.css"):
        assert client.get(f"/static/{name}").status_code == 200
        assert f"/static/{name}" in page.text or f"./{name}" in client.get("/static/app.js").text or name == "common.js"
    assert client.get("/static/..%2Fapi.py").status_code == 404
    assert client.get("/static/nope.js").status_code == 404
    for path in STATIC.iterdir():  # no file reaches out to the network
        text = path.read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text


def test_streamed_read_reports_each_window_and_equals_the_plain_read():
    short = toy(context_length=8)
    text = " ".join(["the cat sat on the mat"] * 4)
    with TestClient(create_ui_app({"toy": short})) as c:
        lines = [json.loads(x) for x in c.post("/api/read", json={"text": text, "stream": True}).text.splitlines()]
        plain = post(c, "/api/read", text=text)
    windows = plain["score"]["num_windows"]
    assert [x["progress"] for x in lines if "progress" in x] == list(range(1, windows + 1))
    assert lines[-1]["result"] == plain
    with TestClient(create_ui_app({"toy": short})) as c:
        bad = [json.loads(x) for x in c.post("/api/read", json={"text": " ", "stream": True}).text.splitlines()]
    assert "empty" in bad[-1]["error"]["message"]


def test_a_long_read_is_cancelled_between_windows_while_short_reads_are_served():
    slow = toy(context_length=4)
    slow.backend.delay = 0.02  # per forward pass; the toy runs one pass per position
    long_text = " ".join(["the cat sat on the mat"] * 60)  # 360 tokens, ~180 windows of 4
    with serve({"toy": slow}) as url, httpx.Client(base_url=url, timeout=30) as http:
        lines, started = [], threading.Event()

        def run():
            with http.stream("POST", "/api/read", json={"text": long_text, "stream": True}) as r:
                for line in r.iter_lines():
                    lines.append(json.loads(line))
                    if len(lines) >= 3:
                        started.set()

        runner = threading.Thread(target=run)
        runner.start()
        assert started.wait(20)
        assert http.post("/api/read", json={"text": "the cat"}).json()["score"]["num_scored"] == 2
        http.post(f"/api/jobs/{lines[0]['job']}/cancel")
        runner.join(20)
        assert lines[-1] == {"cancelled": True} and lines[-2]["progress"] < lines[-2]["of"]
        assert http.post("/api/read", json={"text": TEXT}).json()["score"]["num_scored"] == 6


def test_returning_to_a_node_whose_decode_state_was_dropped_recomputes_it(client, model):
    from logitscope.web.stepping import MAX_STATES

    s = post(client, "/api/step", prompt="the", bias=[["<EOS>", "-inf"]])
    for _ in range(MAX_STATES + 4):  # the first nodes' states fall out of the session's cache
        s = post(client, f"/api/step/{s['id']}/step")
    s = post(client, f"/api/step/{s['id']}/goto", node=1)
    prefix = "the " + s["nodes"][1]["text"]
    expected = model.chain(prefix, SamplerConfig(bias=(("<EOS>", -math.inf),)), top=3).stages[-1]
    assert [c["prob"] for c in s["distribution"]["top"][:3]] == pytest.approx([c.prob for c in expected.top])
