"""Real clients against a real uvicorn on 127.0.0.1: the official ``openai`` package, raw
HTTP garbage, disconnecting clients, a full queue and a concurrent load."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

from logitscope.server import create_app  # noqa: E402
from server_util import Gate, LiveServer, toy_model  # noqa: E402
from tolerances import FLOAT64


@pytest.fixture(scope="module")
def toy():
    return toy_model()


@pytest.fixture(scope="module")
def live(toy):
    with LiveServer(create_app({"toy": toy})) as server:
        yield server


@pytest.fixture(scope="module")
def client(live):
    return openai.OpenAI(base_url=live.base_url + "/v1", api_key="unused", max_retries=0)


# -- the openai package ----------------------------------------------------------------------

def test_openai_completions_echo_logprobs_equal_model_score(client, toy):
    text = "the dog sat on the mat"
    out = client.completions.create(model="toy", prompt=text, echo=True, logprobs=2, max_tokens=0)
    lp = out.choices[0].logprobs
    ref = toy.score(text, top_k=2)
    assert out.choices[0].text == text and lp.tokens == [t.text for t in ref.tokens]
    assert lp.token_logprobs[0] is None
    assert lp.token_logprobs[1:] == FLOAT64.approx([t.logprob for t in ref.tokens[1:]])
    assert lp.text_offset == [t.start for t in ref.tokens]
    assert all(len(top) <= 3 for top in lp.top_logprobs[1:])


def test_openai_completions_stream(client):
    chunks = list(client.completions.create(model="toy", prompt="to be or", max_tokens=6, temperature=0,
                                            stream=True, logprobs=1))
    assert "".join(c.choices[0].text for c in chunks) == "not to be"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert [t for c in chunks for t in c.choices[0].logprobs.tokens] == ["not", "to", "be", "<EOS>"]


def test_openai_chat_logprobs_and_stream(client, toy):
    messages = [{"role": "user", "content": "to be or"}]
    out = client.chat.completions.create(model="toy", messages=messages, logprobs=True, top_logprobs=3,
                                         max_tokens=5, temperature=0)
    assert out.choices[0].message.content == "not to be"
    content = out.choices[0].logprobs.content
    assert [t.token for t in content] == ["not", "to", "be"]  # EOS ends the message, is not content
    assert content[0].bytes == list(b"not") and len(content[0].top_logprobs) == 3
    ref = toy.score("to be or not", top_k=1).tokens[-1]
    assert content[0].logprob == FLOAT64.approx(ref.logprob)
    stream = client.chat.completions.create(model="toy", messages=messages, max_tokens=5, temperature=0,
                                            stream=True, logprobs=True)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "not to be"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_openai_error_types(client, live):
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="toy", prompt="the", logprobs=21, echo=True, max_tokens=0)
    assert e.value.body["param"] == "logprobs"
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="toy", prompt="the " * 600, max_tokens=1)
    assert e.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt="the")
    with pytest.raises(openai.UnprocessableEntityError):
        client.completions.create(model="toy", prompt="the", extra_body={"temperature": "hot"})
    with LiveServer(create_app([toy_model()], api_key="k")) as locked:
        bad = openai.OpenAI(base_url=locked.base_url + "/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
        good = openai.OpenAI(base_url=locked.base_url + "/v1", api_key="k", max_retries=0)
        assert [m.id for m in good.models.list()] == ["toy"]


# -- robustness ----------------------------------------------------------------------------------

BARRAGE = [
    b'{"prompt": "the",', b"not json at all", b"", b"[]", b"null", b'"the"', b'{"prompt": NaN}',
    b'{"prompt": "the", "temperature": Infinity}', b'{"prompt": "the", "max_tokens": 1e400}',
    b'{"prompt": "the", "max_tokens": 99999999999999999999999999}', b'{"prompt": "the", "logprobs": -1}',
    b'{"prompt": ""}', b'{"prompt": []}', b'{"prompt": [[]]}', b'{"prompt": [[], []]}', b'{"prompt": [-1]}',
    b'{"prompt": [123456789]}', b'{"prompt": [1.5]}', b'{"prompt": {"a": 1}}', b'{"prompt": "\\ud800"}',
    b'{"prompt": "the", "n": 0}', b'{"prompt": "the", "seed": 1e30}', b'{"prompt": "the", "stop": 5}',
    b'{"prompt": "the", "logit_bias": {"99999": 5}}', b'{"prompt": "the", "top_p": 0}',
    b'{"prompt": "the", "echo": "yes", "max_tokens": 0}', b'{"prompt": "the cat", "echo": true, "max_tokens": 0, '
    b'"logprobs": 1, "prompt_logprobs": 5, "stream": true}', b'\xff\xfe\x00garbage',
]


def test_malformed_barrage_then_a_normal_request(live, client):
    with httpx.Client(base_url=live.base_url) as http:
        for body in BARRAGE:
            for path in ("/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize"):
                r = http.post(path, content=body, headers={"content-type": "application/json"})
                assert r.status_code < 500, (path, body, r.text)
                if r.status_code >= 400:
                    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    with socket.create_connection(("127.0.0.1", live.port)) as raw:  # not even HTTP
        raw.sendall(b"\x00\x01 GARBAGE / HTTP/9\r\n\r\n")
        raw.recv(100)
    out = client.completions.create(model="toy", prompt="the cat", echo=True, logprobs=0, max_tokens=0)
    assert out.choices[0].logprobs.tokens == ["<BOS>", "the", "cat"]


def test_disconnected_client_cancels_its_queued_work():
    model = toy_model()
    gate = Gate(model.backend)
    app = create_app([model])
    worker = app.state.engine.workers["toy"]
    with LiveServer(app) as server:
        hold = threading.Thread(target=_post, args=(server, {"prompt": "the", "echo": True, "max_tokens": 0,
                                                           "logprobs": 0}, 30))
        hold.start()
        assert gate.entered.wait(10)  # the worker is busy with the first request
        with pytest.raises(httpx.ReadTimeout):  # this client gives up while its job is queued
            _post(server, {"prompt": "the cat", "echo": True, "max_tokens": 0, "logprobs": 0}, 0.5)
        time.sleep(0.3)
        gate.open()
        hold.join(10)
        _wait_for(lambda: worker.outstanding == 0)
    assert worker.stats.cancelled == 1 and gate.calls == [1]  # the abandoned prompt was never scored


def test_full_queue_answers_503_with_retry_after():
    model = toy_model()
    gate = Gate(model.backend)
    app = create_app([model], max_queue=2)
    with LiveServer(app) as server:
        body = {"prompt": "the", "echo": True, "max_tokens": 0, "logprobs": 0}
        held = [threading.Thread(target=_post, args=(server, body, 30)) for _ in range(2)]
        held[0].start()
        assert gate.entered.wait(10)
        held[1].start()
        _wait_for(lambda: app.state.engine.workers["toy"].outstanding == 2)
        r = httpx.post(server.base_url + "/v1/completions", json=body, timeout=10)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "queue_full"
        gate.open()
        for t in held:
            t.join(10)
        assert httpx.post(server.base_url + "/v1/completions", json=body, timeout=10).status_code == 200


def _post(server, body, timeout):
    return httpx.post(server.base_url + "/v1/completions", json=body, timeout=timeout)


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.02)


# -- load ---------------------------------------------------------------------------------------------

def _mixed_requests(toy):
    """(path, body, check) cycles: scoring, short generations, tokenization, lm-eval's id form."""
    texts = ["the cat sat on the mat", "the dog slept", "to be or not to be", "not to be", "the mat sat"]
    scores = {t: [s.logprob for s in toy.score(t).tokens[1:]] for t in texts}
    bare = {t: [s.logprob for s in toy.score(t, bos=False).tokens[1:]] for t in texts}  # ids as given: no BOS
    nxt = {t: toy.next_token(t, top_k=1, bos=False).top[0].token_id for t in texts}
    ids = {t: toy.backend.tokenize(t).ids for t in texts}

    def lm_eval_check(b, t):
        lp = b["choices"][0]["logprobs"]
        return (lp["token_logprobs"][1:-1] == FLOAT64.approx(bare[t])
                and lp["tokens"][-1] == toy.backend.token_text(nxt[t]))

    out = []
    for t in texts:
        out.append(("/v1/completions", {"prompt": t, "echo": True, "logprobs": 1, "max_tokens": 0},
                    lambda b, t=t: b["choices"][0]["logprobs"]["token_logprobs"][1:] == FLOAT64.approx(scores[t])))
        out.append(("/v1/completions", {"prompt": "to be or", "max_tokens": 3, "temperature": 0},
                    lambda b: b["choices"][0]["text"] == "not to be"))
        out.append(("/tokenize", {"prompt": t, "add_special_tokens": False}, lambda b, t=t: b["tokens"] == ids[t]))
        out.append(("/v1/completions", {"prompt": [ids[t]], "echo": True, "logprobs": 1, "max_tokens": 1,
                                        "temperature": 0}, lambda b, t=t: lm_eval_check(b, t)))
    return out


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


@pytest.mark.slow
def test_load_32_clients_x_100_mixed_requests(toy):
    """32 concurrent clients x 100 mixed requests: no errors, every answer right, memory flat."""
    app = create_app({"toy": toy})
    requests = _mixed_requests(toy)

    async def client_run(http, k, rounds):
        bad = 0
        for i in range(rounds):
            path, body, check = requests[(k + i) % len(requests)]
            r = await http.post(path, json=body)
            bad += r.status_code != 200 or not check(r.json())
        return bad

    async def load(rounds):
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=300) as http:
            return await asyncio.gather(*(client_run(http, k, rounds) for k in range(32)))

    with LiveServer(app) as server:
        asyncio.run(load(10))  # warm-up: caches, allocator pools
        before = _rss_mb()
        started = time.perf_counter()
        failures = asyncio.run(load(100))
        elapsed = time.perf_counter() - started
        after = _rss_mb()
    assert sum(failures) == 0
    assert after - before < 50, f"RSS grew {after - before:.1f} MB over 3200 requests"
    print(f"3200 mixed requests in {elapsed:.1f} s ({3200 / elapsed:.0f} req/s), RSS {before:.0f} -> {after:.0f} MB; "
          f"worker stats {app.state.engine.workers['toy'].stats}")
