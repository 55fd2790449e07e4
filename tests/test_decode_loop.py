"""One decode loop: ``Model.generate``, the server's /v1/completions and the web app's Step
give the same tokens and log-probs for the same prompt, seed and sampler — on a
full-vocabulary model and on a top-k-only one (what a remote server gives).

All three drive ``sampling.session.DecodeSession``. Tokens are compared exactly. Log-probs
are compared exactly where the three compute them the same way (no drafts), and within
the float32 budget where generate verifies drafted tokens in one multi-row forward
(a k-row forward and k one-row forwards round differently in the last bits).
"""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

import logitscope  # noqa: E402
from logitscope.backends.hf import HFBackend  # noqa: E402
from logitscope.backends.topk import TopKBackend  # noqa: E402
from logitscope.core.processors import SamplerConfig  # noqa: E402
from logitscope.web import create_ui_app  # noqa: E402
from tiny_models import tiny_model, tiny_tokenizer  # noqa: E402
from tolerances import FLOAT32_VALUES  # noqa: E402

PROMPT = "The cat sat on the mat. The cat"
N = 12
CONFIGS = {"greedy": SamplerConfig.greedy(), "sampled": SamplerConfig(temperature=0.8, top_k=10)}


@pytest.fixture(scope="module", params=["full", "top-20"])
def model(request):
    backend = HFBackend(tiny_model("llama"), tiny_tokenizer(), name="tiny")
    return logitscope.from_backend(backend if request.param == "full" else TopKBackend(backend, 20))


@pytest.fixture(scope="module")
def client(model):
    with TestClient(create_ui_app({"tiny": model})) as c:
        yield c


def post(client, path: str, **body) -> dict:
    r = client.post(path, json=body)
    assert r.status_code == 200, r.text
    return r.json()


def via_server(client, config: SamplerConfig, seed: int) -> tuple[list[int], list[float]]:
    out = post(client, "/v1/completions", model="tiny", prompt=PROMPT, max_tokens=N, temperature=config.temperature,
               top_k=config.top_k or -1, seed=seed, logprobs=1, return_tokens_as_token_ids=True)
    lp = out["choices"][0]["logprobs"]
    return [int(t.removeprefix("token_id:")) for t in lp["tokens"]], lp["token_logprobs"]


def via_web(client, config: SamplerConfig, seed: int) -> tuple[list[int], list[float]]:
    session = post(client, "/api/step", model="tiny", prompt=PROMPT, temperature=config.temperature,
                   top_k=config.top_k, seed=seed)
    for _ in range(N):
        session = post(client, f"/api/step/{session['id']}/step")
        if session["ended"]:
            break
    nodes = {n["id"]: n for n in session["nodes"]}
    path = [nodes[i] for i in session["path"]]
    return [n["token_id"] for n in path], [n["logprob"] for n in path]


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("seed", [0, 7])
def test_generate_server_and_web_step_agree(model, client, name, seed):
    config = CONFIGS[name]
    plain = model.generate(PROMPT, N, config, seed=seed, top_alternatives=1, speculative=False)
    drafted = model.generate(PROMPT, N, config, seed=seed, top_alternatives=1)
    tokens = list(plain.token_ids)
    lps = [s.logprob for s in plain.steps]
    assert list(drafted.token_ids) == tokens
    assert [s.logprob for s in drafted.steps] == FLOAT32_VALUES.approx(lps)  # drafted (multi-row) vs one-row forwards
    web_tokens, web_lps = via_web(client, config, seed)
    assert web_tokens == tokens and web_lps == lps  # the same one-row path: the same numbers
    server_tokens, server_lps = via_server(client, config, seed)
    eos = model.backend.eos_token_id
    assert server_tokens == [t for t in tokens if t != eos] or server_tokens == tokens
    assert server_lps == FLOAT32_VALUES.approx(lps[:len(server_tokens)])  # the server drafts too
