"""Issue 22's root causes on the HTTP edges: the OpenAI-compatible server and the web app's API.

Every case answers with the ``{"error": ...}`` envelope and a 4xx naming the field, or a correct
200; none may answer 500 (``no_500`` fails the test when the server logs an unexpected error).
"""

from __future__ import annotations

import json
import logging

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from logitscope.server import create_app  # noqa: E402
from logitscope.web import create_ui_app  # noqa: E402
from server_util import toy_model  # noqa: E402

SURROGATE = "the \ud800 cat"  # json.dumps sends it as the escape "\ud800", as a broken client would


@pytest.fixture(scope="module")
def server():
    with TestClient(create_app({"toy": toy_model()})) as c:
        yield c


@pytest.fixture(scope="module")
def web():
    with TestClient(create_ui_app({"toy": toy_model()})) as c:
        yield c


@pytest.fixture(autouse=True)
def no_500(caplog):
    """An unexpected error is logged by the server before its 500: none may happen."""
    yield
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "the server answered 500"


def post(client, path, body):
    """POST ``body`` as JSON, lone surrogates as escapes (httpx's own encoder refuses them)."""
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


def refused(client, path, body, status, param, *words):
    r = post(client, path, body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["param"] == param, err
    for word in words:
        assert word in err["message"], err["message"]
    return err


# -- C: lone surrogates -----------------------------------------------------------------------------
@pytest.mark.parametrize("path, body, param", [
    ("/v1/completions", {"prompt": SURROGATE}, "prompt"),
    ("/v1/completions", {"prompt": ["the cat", SURROGATE]}, "prompt"),
    ("/v1/completions", {"prompt": "the", "stop": [SURROGATE]}, "stop"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": SURROGATE}]}, "messages"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "text", "text": SURROGATE}]}]},
     "messages"),
    ("/tokenize", {"prompt": SURROGATE}, "prompt"),
    ("/tokenize", {"messages": [{"role": "user", "content": SURROGATE}]}, "messages"),
])
def test_server_refuses_lone_surrogates(server, path, body, param):
    refused(server, path, body, 422, param, "lone surrogate U+D800 at character 4")


@pytest.mark.parametrize("path, body, param", [
    ("/api/read", {"text": SURROGATE}, "text"), ("/api/read", {"text": "the cat", "context": SURROGATE}, "context"),
    ("/api/read/html", {"text": SURROGATE}, "text"),
    ("/api/lab/chain", {"prompt": SURROGATE}, "prompt"), ("/api/lab/chain", {"prompt": "the", "bias": [[SURROGATE, 1]]},
                                                            "bias"),
    ("/api/lab/sample", {"prompt": SURROGATE}, "prompt"), ("/api/step", {"prompt": SURROGATE}, "prompt"),
    ("/api/beam", {"prompt": SURROGATE}, "prompt"), ("/api/rank", {"prompt": SURROGATE, "candidates": [" cat"]}, "prompt"),
    ("/api/rank", {"prompt": "the", "candidates": [SURROGATE]}, "candidates"),
    ("/api/rank", {"prompt": "the", "candidates": [" cat"], "context": SURROGATE}, "context"),
])
def test_web_refuses_lone_surrogates(web, path, body, param):
    refused(web, path, body, 422, param, "lone surrogate U+D800 at character 4")


# -- B: a top-p below the tolerance keeps the most likely token ------------------------------------------------
def test_server_top_p_below_the_tolerance_is_greedy(server):
    def text(**sampling):
        body = {"prompt": "the cat", "max_tokens": 4, "seed": 3, **sampling}
        r = server.post("/v1/completions", json=body)
        assert r.status_code == 200, r.text
        return r.json()["choices"][0]["text"]

    assert text(top_p=1e-10, temperature=1.0) == text(temperature=0.0)
    chat = server.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "the"}],
                                                     "top_p": 1e-12, "max_tokens": 2})
    assert chat.status_code == 200, chat.text


def test_web_top_p_below_the_tolerance_keeps_one_survivor(web):
    chain = web.post("/api/lab/chain", json={"prompt": "the", "top_p": 1e-10}).json()
    assert chain["stages"][-1]["survivors"] == 1
    sample = web.post("/api/lab/sample", json={"prompt": "the", "top_p": 1e-10, "n": 50}).json()
    assert [r["count"] for r in sample["rows"] if r["count"]] == [50]
    sid = web.post("/api/step", json={"prompt": "the", "top_p": 1e-10}).json()["id"]
    assert web.post(f"/api/step/{sid}/step", json={}).status_code == 200


# -- E: token ids out of range, negative ones included ----------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/position", "/api/continue"])
@pytest.mark.parametrize("ids, bad", [([0, 99_999], 99_999), ([-1], -1), ([3, -13], -13)])
def test_web_ids_outside_the_vocabulary_are_refused(web, path, ids, bad):
    """A negative id never counts from the end of the vocabulary (it used to score the last token)."""
    err = refused(web, path, {"ids": ids}, 400, None, f"token id {bad} in ids is outside the vocabulary")
    assert "[0, 12]" in err["message"]


# -- H: blank texts, biases that clash ---------------------------------------------------------------------------
def test_server_empty_and_blank_prompts(server):
    """The empty prompt is the prefix token alone (OpenAI's default prompt); a prompt of spaces is refused."""
    assert server.post("/v1/completions", json={"prompt": "", "max_tokens": 1}).status_code == 200
    refused(server, "/v1/completions", {"prompt": "   ", "max_tokens": 1}, 400, "prompt", "only whitespace")


@pytest.mark.parametrize("path, body", [
    ("/api/rank", {"prompt": "the", "candidates": [" cat"], "context": ""}),
    ("/api/rank", {"prompt": "the", "candidates": [" cat"], "context": "   "}),
    ("/api/read", {"text": "the cat", "context": ""}),
])
def test_web_a_blank_context_is_refused_not_ignored(web, path, body):
    refused(web, path, body, 422, "context", "give null for no context")


def test_web_bias_plus_and_minus_inf_on_one_token_is_refused(web):
    refused(web, "/api/lab/chain", {"prompt": "the", "bias": [["cat", "inf"], ["cat", "-inf"]]}, 400, None,
            "the logit bias gives 'cat' (token id 3) both +inf and -inf")
    body = {"prompt": "the", "bias": [["cat", 1e300], ["cat", -1e300], ["cat", 1e300]]}
    assert web.post("/api/lab/chain", json=body).status_code == 200


# -- I: requests the tokenizer cannot take ----------------------------------------------------------------------
def test_tokenize_a_message_without_content(server):
    refused(server, "/tokenize", {"messages": [{"role": "user"}]}, 400, "prompt", "no tokens")
