"""The server on the bundled SmolLM2 through the official ``openai`` client: parity with the library."""

from __future__ import annotations

import pytest

openai = pytest.importorskip("openai")

from logitscope.core.processors import SamplerConfig  # noqa: E402
from logitscope.server import create_app  # noqa: E402
from server_util import LiveServer  # noqa: E402
from tolerances import FLOAT32_TOKEN

pytestmark = [pytest.mark.slow, pytest.mark.parity]

PROMPTS = ["The capital of France is Paris.", "Water boils at 100 degrees Celsius at sea level, while ice melts at 0."]


@pytest.fixture(scope="module")
def live(smol):
    with LiveServer(create_app([smol])) as server:
        yield server


@pytest.fixture(scope="module")
def client(live):
    return openai.OpenAI(base_url=live.base_url + "/v1", api_key="unused", max_retries=0)


def test_echo_logprobs_match_model_score(client, smol):
    out = client.completions.create(model=smol.name, prompt=PROMPTS, echo=True, logprobs=5, max_tokens=0,
                                    extra_body={"prompt_logprobs": 1})
    for choice, text in zip(out.choices, PROMPTS):  # two prompts of different lengths: one padded batch
        ref = smol.score(text, top_k=5)
        lp = choice.logprobs
        assert lp.tokens == [t.text for t in ref.tokens] and choice.text == text
        assert lp.token_logprobs[0] is None  # SmolLM2 adds no BOS: nothing predicts the first token
        assert lp.token_logprobs[1:] == FLOAT32_TOKEN.approx([t.logprob for t in ref.tokens[1:]])
        assert lp.text_offset == [t.start for t in ref.tokens]
        for top, tok in zip(lp.top_logprobs[1:], ref.tokens[1:]):
            assert max(top.values()) == FLOAT32_TOKEN.approx(tok.alternatives[0].logprob)
        ranks = [next(iter(e.values()))["rank"] for e in choice.model_extra["prompt_logprobs"][1:]]
        assert ranks == [t.rank for t in ref.tokens[1:]]


def test_lm_eval_form_and_greedy_generation_match_the_library(client, smol):
    out = client.completions.create(model=smol.name, prompt=PROMPTS[0], echo=True, logprobs=1, max_tokens=1,
                                    temperature=0)
    nxt = smol.next_token(PROMPTS[0], top_k=1).top[0]
    lp = out.choices[0].logprobs
    assert lp.tokens[-1] == nxt.text and lp.token_logprobs[-1] == FLOAT32_TOKEN.approx(nxt.logprob)
    ref = smol.generate("Once upon a time", max_new_tokens=12, sampler=SamplerConfig.greedy())
    gen = client.completions.create(model=smol.name, prompt="Once upon a time", max_tokens=12, temperature=0,
                                    logprobs=0)
    assert gen.choices[0].text == ref.text
    assert gen.choices[0].logprobs.token_logprobs == FLOAT32_TOKEN.approx([s.logprob for s in ref.steps])


def test_chat_logprobs_bytes_and_stream(client, smol):
    messages = [{"role": "user", "content": "Say hi with an emoji"}]  # SmolLM2 answers with emoji pieces
    out = client.chat.completions.create(model=smol.name, messages=messages, logprobs=True, top_logprobs=2,
                                         max_tokens=24, temperature=0)
    content = out.choices[0].logprobs.content
    raw = b"".join(bytes(t.bytes) for t in content)
    assert raw.decode("utf-8", errors="replace") == out.choices[0].message.content
    assert any(t.token == "\ufffd" and b"\xef\xbf\xbd" not in bytes(t.bytes) for t in content)  # raw bytes, not U+FFFD
    assert all(len(t.top_logprobs) == 2 for t in content)
    stream = client.chat.completions.create(model=smol.name, messages=messages, max_tokens=24, temperature=0,
                                            stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream) == out.choices[0].message.content
