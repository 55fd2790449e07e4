"""The server's wire format and its errors, in-process (FastAPI TestClient) on the exact toy model."""

from __future__ import annotations

import asyncio
import math

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from logitscope.server import create_app  # noqa: E402
from logitscope.server.engine import Job, ModelWorker, ScoreTask, ServerBusy  # noqa: E402
from server_util import Gate, toy_model  # noqa: E402
from tolerances import FLOAT32_ROUNDING, FLOAT64


@pytest.fixture(scope="module")
def toy():
    return toy_model()


@pytest.fixture(scope="module")
def client(toy):
    with TestClient(create_app({"toy": toy}, max_prompts=8)) as c:
        yield c


def complete(client, **body):
    r = client.post("/v1/completions", json={"model": "toy", **body})
    return r.status_code, r.json()


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


# -- discovery -------------------------------------------------------------------------------

def test_health_and_models(client):
    assert client.get("/health").json()["status"] == "ok"
    card = client.get("/v1/models").json()["data"][0]
    assert card["id"] == "toy" and card["object"] == "model" and card["max_model_len"] == 512


# -- completions: echo and log-probs equal Model.score -------------------------------------------------

def test_echo_logprobs_equal_model_score(client, toy):
    status, body = complete(client, prompt="the cat sat on the mat", echo=True, logprobs=3, max_tokens=0)
    assert status == 200
    choice = body["choices"][0]
    lp = choice["logprobs"]
    ref = toy.score("the cat sat on the mat", top_k=3)
    assert choice["text"] == "the cat sat on the mat" and choice["finish_reason"] == "length"
    assert lp["tokens"] == [t.text for t in ref.tokens]  # <BOS> the cat ...
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    for got, tok in zip(lp["token_logprobs"][1:], ref.tokens[1:]):
        assert got == FLOAT64.approx(tok.logprob)
    assert lp["text_offset"] == [t.start for t in ref.tokens]
    for top, tok in zip(lp["top_logprobs"][1:], ref.tokens[1:]):
        assert tok.text in top and len(top) <= 4  # logprobs + the chosen token
        best = max(top.values())
        assert best == FLOAT64.approx(tok.alternatives[0].logprob)
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 0, "total_tokens": 7}


def test_a_top_k_backend_is_served_with_text_prompts(toy):
    from logitscope import from_backend
    from logitscope.backends.topk import TopKBackend

    topk = from_backend(TopKBackend(toy.backend, 3))
    with TestClient(create_app({"toy": topk})) as c:
        status, body = complete(c, prompt="the cat sat", echo=True, logprobs=2, max_tokens=0)
    assert status == 200, body
    ref = toy.score("the cat sat")
    got = body["choices"][0]["logprobs"]["token_logprobs"][1:]
    assert got == FLOAT64.approx([t.logprob for t in ref.tokens[1:]])


def test_lm_eval_form_appends_the_greedy_token(client, toy):
    status, body = complete(client, prompt="the cat sat on the", echo=True, logprobs=1, max_tokens=1, temperature=0)
    lp = body["choices"][0]["logprobs"]
    nxt = toy.next_token("the cat sat on the", top_k=1).top[0]
    assert lp["tokens"][-1] == nxt.text and lp["token_logprobs"][-1] == FLOAT32_ROUNDING.approx(nxt.logprob)
    assert len(lp["tokens"]) == len(toy.score("the cat sat on the").tokens) + 1
    assert body["choices"][0]["text"] == "the cat sat on the" + nxt.text
    # lm-eval's is_greedy test (token logprob == max of its top dict) agrees with the rank
    ranks = [t.rank for t in toy.score("the cat sat on the").tokens[1:]]
    greedy = [t == max(top.values()) for t, top in zip(lp["token_logprobs"][1:-1], lp["top_logprobs"][1:-1])]
    assert greedy == [r == 1 for r in ranks] and False in greedy


def test_prompt_forms_give_one_choice_each_in_order(client, toy):
    ids = toy.backend.tokenize("the dog sat").ids
    status, body = complete(client, prompt=["the cat", "the dog sat"], echo=True, logprobs=0, max_tokens=0)
    assert [c["text"] for c in body["choices"]] == ["the cat", "the dog sat"]
    assert [c["index"] for c in body["choices"]] == [0, 1]
    _, by_ids = complete(client, prompt=ids, echo=True, logprobs=0, max_tokens=0)
    _, by_lists = complete(client, prompt=[ids, ids[:2]], echo=True, logprobs=0, max_tokens=0)
    assert by_ids["choices"][0]["logprobs"]["tokens"] == ["the", "dog", "sat"]  # ids are used as given
    assert len(by_lists["choices"]) == 2 and by_lists["choices"][1]["logprobs"]["tokens"] == ["the", "dog"]
    assert by_lists["choices"][0]["logprobs"]["token_logprobs"] == by_ids["choices"][0]["logprobs"]["token_logprobs"]


def test_prompt_logprobs_and_token_id_labels(client, toy):
    _, body = complete(client, prompt="the cat sat", max_tokens=0, prompt_logprobs=2, return_tokens_as_token_ids=True,
                       echo=True, logprobs=1)
    choice = body["choices"][0]
    ref = toy.score("the cat sat", top_k=2)
    plp = choice["prompt_logprobs"]
    assert plp[0] is None and len(plp) == len(ref.tokens)
    for entry, tok in zip(plp[1:], ref.tokens[1:]):
        mine = entry[str(tok.token_id)]
        assert mine["logprob"] == FLOAT64.approx(tok.logprob) and mine["rank"] == tok.rank
        assert mine["decoded_token"] == f"token_id:{tok.token_id}"
        assert {e["rank"] for k, e in entry.items() if k != str(tok.token_id)} <= {1, 2}
    assert choice["logprobs"]["tokens"] == [f"token_id:{t.token_id}" for t in ref.tokens]


def test_generation_is_seeded_and_stops_before_the_stop_string(client, toy):
    _, a = complete(client, prompt="the", max_tokens=8, seed=7, temperature=1.0)
    _, b = complete(client, prompt="the", max_tokens=8, seed=7, temperature=1.0)
    assert a["choices"][0]["text"] == b["choices"][0]["text"]
    from logitscope.core.processors import SamplerConfig

    ref = toy.generate("to be or", max_new_tokens=6, sampler=SamplerConfig.greedy())  # not to be <EOS>
    _, greedy = complete(client, prompt="to be or", max_tokens=6, temperature=0, logprobs=0)
    choice = greedy["choices"][0]
    assert choice["text"] == ref.text == "not to be"
    assert choice["finish_reason"] == "stop" and choice["stop_reason"] == toy.backend.eos_token_id
    assert choice["logprobs"]["tokens"] == ["not", "to", "be", "<EOS>"]  # EOS is a token, not text
    assert choice["logprobs"]["token_logprobs"] == FLOAT64.approx([s.logprob for s in ref.steps])
    _, short = complete(client, prompt="to be or", max_tokens=2, temperature=0)
    assert short["choices"][0]["text"] == "not to" and short["choices"][0]["finish_reason"] == "length"
    _, stopped = complete(client, prompt="to be or", max_tokens=6, temperature=0, stop=["to"])
    assert stopped["choices"][0]["text"] == "not " and stopped["choices"][0]["stop_reason"] == "to"


def test_n_choices_and_processed_logprobs(client):
    _, body = complete(client, prompt=["the", "the cat"], max_tokens=2, n=2, seed=1, logprobs=0)
    assert [c["index"] for c in body["choices"]] == [0, 1, 2, 3]
    _, raw = complete(client, prompt="the cat", max_tokens=1, temperature=0.5, top_k=1, logprobs=0, seed=0)
    _, proc = complete(client, prompt="the cat", max_tokens=1, temperature=0.5, top_k=1, logprobs=0, seed=0,
                       logprobs_mode="processed")
    assert proc["logprobs_mode"] == "processed" and raw["logprobs_mode"] == "raw"
    assert proc["choices"][0]["logprobs"]["token_logprobs"][0] == FLOAT64.approx(0.0)  # top-1 survives alone
    assert raw["choices"][0]["logprobs"]["token_logprobs"][0] < -0.1


def test_streaming_completion_is_sse_ending_in_done(client):
    with client.stream("POST", "/v1/completions", json={"prompt": "the cat", "max_tokens": 4, "stream": True,
                                                         "seed": 3, "echo": True, "logprobs": 1,
                                                         "stream_options": {"include_usage": True}}) as r:
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    import json
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["text"].startswith("the cat")  # echo in the first chunk
    assert chunks[-1]["usage"]["completion_tokens"] == sum(len(c["choices"][0]["logprobs"]["tokens"]) for c in chunks
                                                           if c["choices"]) - 3  # minus the echoed <BOS> the cat
    _, whole = complete(client, prompt="the cat", max_tokens=4, seed=3, echo=True)
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == whole["choices"][0]["text"]


# -- chat -------------------------------------------------------------------------------------

def test_chat_with_logprobs(client, toy):
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "the cat"}],
                                                  "logprobs": True, "top_logprobs": 2, "max_tokens": 3,
                                                  "temperature": 0})
    body = r.json()
    content = body["choices"][0]["logprobs"]["content"]
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["role"] == "assistant"
    first = toy.next_token("the cat ", top_k=2)
    assert content[0]["token"] == first.top[0].text
    assert content[0]["logprob"] == FLOAT32_ROUNDING.approx(first.top[0].logprob)
    assert content[0]["bytes"] == list(first.top[0].text.encode())
    assert [t["token"] for t in content[0]["top_logprobs"]] == [c.text for c in first.top]


def test_chat_without_template_is_a_clear_400():
    from logitscope.server import create_app as make

    with TestClient(make([toy_model(chat=False)])) as c:
        r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "the"}]})
    assert r.status_code == 400 and "chat template" in error_of(r)["message"]


# -- tokenizer endpoints (lm-eval's remote tokenizer) --------------------------------------------------

def test_tokenize_detokenize_info(client, toy):
    ids = toy.backend.tokenize("the cat sat").ids
    r = client.post("/tokenize", json={"prompt": "the cat sat", "add_special_tokens": False}).json()
    assert r["tokens"] == ids and r["count"] == 3 and r["max_model_len"] == 512
    with_bos = client.post("/tokenize", json={"prompt": "the cat sat"}).json()["tokens"]
    assert with_bos == [toy.backend.bos_token_id] + ids
    assert client.post("/detokenize", json={"tokens": ids}).json() == {"prompt": "the cat sat"}
    info = client.get("/tokenizer_info").json()
    assert info["eos_token"] == "<EOS>" and info["bos_token"] == "<BOS>" and info["max_model_len"] == 512


# -- errors: one envelope, the right status ---------------------------------------------------------

@pytest.mark.parametrize("body,status,param", [
    ({"prompt": "the", "logprobs": 21, "echo": True, "max_tokens": 0}, 400, "logprobs"),
    ({"prompt": "the", "prompt_logprobs": 99}, 400, "prompt_logprobs"),
    ({"prompt": "the " * 600, "max_tokens": 0, "echo": True}, 400, "prompt"),
    ({"prompt": "the", "max_tokens": 600}, 400, "max_tokens"),
    ({"prompt": [0, 99999]}, 400, "prompt"),
    ({"prompt": []}, 400, "prompt"),
    ({"prompt": ""}, 200, None),
    ({"prompt": "   "}, 400, "prompt"),
    ({"prompt": "zebra"}, 400, "prompt"),
    ({"prompt": ["the"] * 9}, 400, "prompt"),
    ({"prompt": ["the"] * 8, "n": 9, "max_tokens": 1, "temperature": 1}, 400, "n"),
    ({"prompt": "the", "temperature": "hot"}, 422, "temperature"),
    ({"prompt": "the", "max_tokens": -1}, 422, "max_tokens"),
    ({"prompt": "the", "n": 10**30}, 422, "n"),
    ({"prompt": 5}, 422, "prompt"),
    ({"prompt": [True, 1]}, 422, "prompt"),
    ({"prompt": "the", "logit_bias": {"x": 1}}, 400, "logit_bias"),
    ({"prompt": "the", "stop": [""]}, 400, "stop"),
    ({"prompt": "the", "presence_penalty": 1}, 400, "presence_penalty"),
    ({"prompt": "the", "model": "gpt-5"}, 404, "model"),
])
def test_bad_requests_get_the_envelope(client, body, status, param):
    r = client.post("/v1/completions", json=body)
    assert r.status_code == status, r.text
    if status != 200:
        err = error_of(r)
        assert err["param"] == param and err["message"]


def test_context_length_code(client):
    r = client.post("/v1/completions", json={"prompt": "the " * 600, "max_tokens": 0, "echo": True})
    assert error_of(r)["code"] == "context_length_exceeded"


def test_nan_malformed_json_unknown_route_method(client):
    r = client.post("/v1/completions", content=b'{"prompt": "the", "temperature": NaN}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 422 and error_of(r)["param"] == "temperature"
    r = client.post("/v1/completions", content=b'{"prompt": "the",', headers={"content-type": "application/json"})
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_json"
    assert client.get("/v1/nothing").status_code == 404 and error_of(client.get("/v1/nothing"))["type"] == "not_found_error"
    r = client.get("/v1/completions")
    assert r.status_code == 405 and error_of(r)["message"]


def test_body_limit_and_auth(toy):
    app = create_app([toy], api_key="s3cret", max_body_bytes=1000)
    with TestClient(app) as c:
        assert c.get("/health").status_code == 200  # open without a key
        r = c.get("/v1/models")
        assert r.status_code == 401 and error_of(r)["type"] == "authentication_error"
        assert c.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = {"Authorization": "Bearer s3cret"}
        assert c.get("/v1/models", headers=ok).status_code == 200
        r = c.post("/v1/completions", json={"prompt": "the " * 400}, headers=ok)
        assert r.status_code == 413 and error_of(r)["code"] == "request_too_large"


# -- the engine: batching, bounded queue, cancellation ------------------------------------------------

def _score_job(seq, log=None):
    def prepare(backend):
        if log is not None:
            log.append(tuple(seq))
        return [ScoreTask(seq, 1, 2)]
    return Job("score", prepare, lambda backend, scores: float(scores[0].logprob.sum()))


def test_concurrent_scoring_is_batched_into_one_pass():
    model = toy_model()
    gate = Gate(model.backend)
    worker = ModelWorker(model.backend, max_queue=16)
    seqs = [[0, 11, 3], [0, 11, 4, 9], [0, 6, 12, 2], [0, 11, 3, 9, 7]]

    async def go():
        first = asyncio.ensure_future(worker.run(_score_job(seqs[0])))
        await asyncio.to_thread(gate.entered.wait, 10)  # the worker is now inside the first batch
        rest = [asyncio.ensure_future(worker.run(_score_job(s))) for s in seqs[1:]]
        await asyncio.sleep(0.05)
        gate.open()
        return await asyncio.gather(first, *rest)

    try:
        sums = asyncio.run(go())
    finally:
        worker.close()
    assert gate.calls == [1, 3]  # the three that arrived during the first pass shared the second
    assert worker.stats.largest_batch == 3
    for s, seq in zip(sums, seqs):
        assert s == FLOAT64.approx(-model.backend.nll_sums([seq], [1])[0])


def test_full_queue_raises_busy_and_cancelled_jobs_never_run():
    model = toy_model()
    gate = Gate(model.backend)
    worker = ModelWorker(model.backend, max_queue=2)
    prepared = []

    async def go():
        first = asyncio.ensure_future(worker.run(_score_job([0, 11, 3], prepared)))
        await asyncio.to_thread(gate.entered.wait, 10)
        second = asyncio.ensure_future(worker.run(_score_job([0, 11, 4], prepared)))
        await asyncio.sleep(0)
        with pytest.raises(ServerBusy):
            worker.submit(_score_job([0, 6]))
        second.cancel()  # the client went away while queued
        await asyncio.sleep(0.05)
        gate.open()
        await first
        with pytest.raises(asyncio.CancelledError):
            await second

    try:
        asyncio.run(go())
    finally:
        worker.close()
    assert prepared == [(0, 11, 3)] and worker.stats.cancelled == 1 and worker.outstanding == 0


def test_values_only_tasks_take_the_light_path_and_keep_their_order():
    from logitscope.server.engine import _score_tasks

    backend = toy_model().backend
    tasks = [ScoreTask([0, 11, 3, 9], 1, 0, values_only=True), ScoreTask([0, 6, 12], 1, 3),
             ScoreTask([0, 11, 4, 9, 7], 2, 0, values_only=True), ScoreTask([0, 11, 3], 1, 0)]
    got = _score_tasks(backend, tasks)
    for task, scores in zip(tasks, got):
        ref = backend.score_positions([task.seq], [task.start], task.top_k)[0]
        assert scores.logprob.tolist() == FLOAT64.approx(ref.logprob.tolist())
        if task.values_only:
            assert scores.rank.tolist() == [0] * len(ref) and scores.entropy.isnan().all()
        else:
            assert scores.rank.tolist() == ref.rank.tolist()
            assert scores.top_ids[:, :task.top_k].tolist() == ref.top_ids.tolist()  # the engine trims to top_k


def test_echo_values_are_the_same_with_and_without_alternatives(client):
    (s1, light), (s2, full) = (complete(client, prompt="the cat sat on the mat", echo=True, logprobs=k, max_tokens=0)
                               for k in (0, 2))
    assert s1 == s2 == 200
    a, b = light["choices"][0]["logprobs"], full["choices"][0]["logprobs"]
    assert a["tokens"] == b["tokens"] and a["token_logprobs"][0] is None
    assert a["token_logprobs"][1:] == FLOAT64.approx(b["token_logprobs"][1:])
    assert all(len(t) == 1 for t in a["top_logprobs"][1:])  # only the chosen token


def test_a_failing_job_does_not_fail_its_batch_mates():
    model = toy_model()
    worker = ModelWorker(model.backend)

    def bad(backend):
        return [ScoreTask([0, 11], 5, 0)]  # start past the end: score_positions raises

    async def go():
        return await asyncio.gather(worker.run(_score_job([0, 11, 3])), worker.run(Job("score", bad, None)),
                                    return_exceptions=True)

    try:
        good, err = asyncio.run(go())
    finally:
        worker.close()
    assert math.isfinite(good) and "cannot score" in str(err)


# -- the command ---------------------------------------------------------------------------------------

def test_serve_refuses_a_public_address_without_a_key(cli, monkeypatch):
    monkeypatch.delenv("LOGITSCOPE_API_KEY", raising=False)
    result = cli(["serve", "-m", "toy", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "without an API key" in result.output


def test_serve_has_one_api_key_option_its_own(monkeypatch):
    import click

    from logitscope.cli import main

    monkeypatch.delenv("LOGITSCOPE_API_KEY", raising=False)
    serve = main.get_command(click.Context(main), "serve")
    keys = [p for p in serve.params if "--api-key" in getattr(p, "opts", [])]
    assert len(keys) == 1 and keys[0].expose_value  # the key clients must send, not a remote model's key
    assert {"--concurrency", "--timeout"} <= {o for p in serve.params for o in getattr(p, "opts", [])}


def test_bind_rule_and_banner():
    from logitscope.server.launch import banner, check_bind, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
    check_bind("0.0.0.0", "key")  # a key makes any address acceptable
    text = banner("127.0.0.1", 8000, ["toy"], None)
    assert "http://127.0.0.1:8000/v1" in text and "base_url=http://127.0.0.1:8000/v1/completions" in text


def test_streaming_request_that_fails_at_once_gets_its_status(client):
    r = client.post("/v1/completions", json={"prompt": "the " * 600, "max_tokens": 0, "echo": True, "stream": True})
    assert r.status_code == 400 and error_of(r)["code"] == "context_length_exceeded"
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "the " * 600}],
                                                  "stream": True})
    assert r.status_code == 400 and error_of(r)["code"] == "context_length_exceeded"
