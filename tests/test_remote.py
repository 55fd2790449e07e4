"""The remote backend against `logitscope serve` (real uvicorn on 127.0.0.1), fake vLLM and
llama.cpp servers speaking their documented wire formats, and broken servers."""

from __future__ import annotations

import json
import math
import os
import socket

import pytest
import torch

pytest.importorskip("fastapi")
from click.testing import CliRunner  # noqa: E402

import logitscope  # noqa: E402
from logitscope import CapabilityError, ModelLoadError  # noqa: E402
from logitscope.backends.remote import RemoteBackend, RemoteSettings, connect, split_url  # noqa: E402
from logitscope.backends.topk import TopKBackend  # noqa: E402
from logitscope.cli import main  # noqa: E402
from logitscope.core import mathops  # noqa: E402
from logitscope.core.processors import SamplerConfig  # noqa: E402
from logitscope.server import create_app  # noqa: E402
from remote_fakes import CLAMP_BELOW, TOY, LlamaCppFake, VLLMFake  # noqa: E402
from server_util import LiveServer, toy_model  # noqa: E402
from tolerances import FLOAT32_ROUNDING, FLOAT32_TOKEN, FLOAT64

TEXTS = ["the cat sat on the mat", "the dog slept on the mat or the cat sat", "to be or not to be"]


@pytest.fixture(scope="module")
def toy():
    return toy_model(chat=False)


@pytest.fixture(scope="module")
def full_server(toy):
    """max_logprobs above the toy's 13-token vocabulary: the top k is the whole distribution."""
    with LiveServer(create_app({"toy": toy}, max_logprobs=20)) as srv:
        yield srv


@pytest.fixture(scope="module")
def topk_server(toy):
    with LiveServer(create_app({"toy": toy}, max_logprobs=3)) as srv:
        yield srv


@pytest.fixture(scope="module")
def remote_full(full_server):
    b = connect(full_server.base_url + "/v1", concurrency=4)
    yield logitscope.from_backend(b)
    b.close()


@pytest.fixture(scope="module")
def remote_topk(topk_server):
    b = connect(topk_server.base_url + "/v1#toy", concurrency=2)
    yield logitscope.from_backend(b)
    b.close()


# -- capabilities, detected ------------------------------------------------------------------------

def test_logitscope_serve_capabilities_are_detected(remote_full, remote_topk, toy):
    caps = remote_full.backend.capabilities
    assert (caps.server, caps.prompt_logprobs, caps.echo, caps.token_id_prompts, caps.token_id_labels,
            caps.max_tokens_zero, caps.logprob_values, caps.tokenizer) == \
        ("logitscope", True, True, True, True, True, "raw", "/tokenize")
    assert caps.top_k_only == toy.backend.vocab_size == 13  # asked for 20, the vocabulary holds 13
    assert not caps.full_vocab and caps.context_length == 512
    assert remote_topk.backend.capabilities.top_k_only == 3  # --max-logprobs 3, read from the refusal
    b = remote_full.backend
    assert (b.bos_token_id, b.eos_token_id, b.vocab_size, b.adds_bos_by_default) == (0, 1, 13, True)


def test_url_forms():
    assert split_url("http://h:8000/v1") == ("http://h:8000", "/v1", None)
    assert split_url("https://h/api/v1/#m#x") == ("https://h/api", "/api/v1", "m#x")
    assert split_url("http://h:1") == ("http://h:1", "/v1", None)


# -- every analysis: the local numbers where the top k covers the vocabulary ----------------------------

def test_score_equals_local(remote_full, toy):
    for text in TEXTS:
        a, b = toy.score(text, top_k=5), remote_full.score(text, top_k=5)
        assert b.top_k_only == 13 and b.input_ids == a.input_ids
        for x, y in zip(a.tokens, b.tokens):
            assert (y.text, y.start, y.end, y.rank) == (x.text, x.start, x.end, x.rank)
            if x.logprob is not None:
                assert y.logprob == FLOAT64.approx(x.logprob)
                assert y.entropy == FLOAT64.approx(x.entropy)
                assert [c.logprob for c in y.alternatives] == pytest.approx([c.logprob for c in x.alternatives])
                assert y.alternatives[0].token_id == x.alternatives[0].token_id  # (later ones may tie)


def test_next_token_perplexity_ranking_lift_uncertainty_equal_local(remote_full, toy):
    a, b = toy.next_token("the cat", top_k=4), remote_full.next_token("the cat", top_k=4)
    assert a.top[0].token_id == b.top[0].token_id  # (later ones tie in the toy model)
    assert [c.logprob for c in b.top] == FLOAT32_TOKEN.approx([c.logprob for c in a.top])  # local: float32
    assert b.entropy == FLOAT32_TOKEN.approx(a.entropy)
    for conv in ("strided", "disjoint", "llamacpp"):
        pa = toy.perplexity(texts=TEXTS * 3, convention=conv, window=6)
        pb = remote_full.perplexity(texts=TEXTS * 3, convention=conv, window=6)
        assert pb.total.perplexity == FLOAT64.approx(pa.total.perplexity)
        assert pb.total.num_scored == pa.total.num_scored
    ra, rb = (m.rank("the cat", [" sat on the mat", " slept", " be"]) for m in (toy, remote_full))
    for x, y in zip(ra.candidates, rb.candidates):
        assert y.score("sum") == FLOAT64.approx(x.score("sum"))
    la, lb = (m.context_lift("the cat", " sat", ["the dog sat", "to be or not"]) for m in (toy, remote_full))
    assert lb.total_without == FLOAT64.approx(la.total_without) and lb.supported == la.supported
    assert len(lb.contexts) == len(la.contexts) == 2 and not la.skipped and not lb.skipped
    for x, y in zip(la.contexts, lb.contexts):
        assert x.tokens and y.lift == FLOAT64.approx(x.lift)
        assert [t.lift for t in y.tokens] == FLOAT64.approx([t.lift for t in x.tokens])
    ua, ub = (m.uncertain("the cat sat on the mat", max_prob_below=0.4) for m in (toy, remote_full))
    assert [(x["text"], x["token_positions"]) for x in ub.to_dict()["spans"]] == \
        [(x["text"], x["token_positions"]) for x in ua.to_dict()["spans"]]
    assert [x["max_entropy"] for x in ub.to_dict()["spans"]] == \
        FLOAT64.approx([x["max_entropy"] for x in ua.to_dict()["spans"]])


def test_top_k_variant_is_labelled(remote_topk, toy):
    local = logitscope.from_backend(TopKBackend(toy.backend, 3))
    text = "mat the be to not cat sat"
    a, b = local.score(text, top_k=3), remote_topk.score(text, top_k=3)
    full = toy.score(text, top_k=3)
    assert b.top_k_only == 3
    for x, y, f in zip(a.scored_tokens, b.scored_tokens, full.scored_tokens):
        assert y.logprob == FLOAT64.approx(x.logprob)
        assert y.entropy == FLOAT64.approx(x.entropy) and y.entropy <= f.entropy + 1e-9  # the bound
        assert y.rank == f.rank  # prompt_logprobs give the exact rank even beyond the top 3
    assert any(f.rank > 3 for f in full.scored_tokens)
    with pytest.raises(CapabilityError, match="at most 3"):
        remote_topk.score(TEXTS[0], top_k=4)
    with pytest.raises(CapabilityError, match="full vocab"):
        remote_topk.next_token("the cat", temperature=0.5)
    with pytest.raises(CapabilityError, match="full vocab"):
        remote_topk.generate("the cat", max_new_tokens=2)
    assert remote_topk.perplexity(texts=TEXTS).total.perplexity == FLOAT64.approx(toy.perplexity(texts=TEXTS).total.perplexity)  # exact from the chosen tokens


def test_greedy_traced_generation_and_the_tree_from_a_top_k_server(remote_topk, topk_server, toy):
    greedy = SamplerConfig.greedy()
    for prompt in ("the cat", "to be or", ""):
        a, b = toy.generate(prompt, 6, greedy), remote_topk.generate(prompt, 6, greedy)
        assert (b.token_ids, b.text, b.stop_reason, b.top_k_only) == (a.token_ids, a.text, a.stop_reason, 3)
        for x, y in zip(a.steps, b.steps):
            assert y.logprob == FLOAT64.approx(x.logprob) and y.rank == x.rank == 1
            assert y.entropy <= x.entropy + 1e-6 and len(y.alternatives) == 3  # the bound; at most k alternatives
            assert y.remaining_mass == FLOAT64.approx(1 - sum(c.prob for c in y.alternatives))
    ta, tb = toy.tree("the cat", 2, 2), remote_topk.tree("the cat", 2, 2)  # (deeper, ties pick other words)
    assert tb.top_k_only == 3 and [len(p) for p, _ in tb.nodes()] == [len(p) for p, _ in ta.nodes()]
    assert [n.cum_logprob for _, n in tb.nodes()] == FLOAT64.approx([n.cum_logprob for _, n in ta.nodes()])
    with pytest.raises(CapabilityError, match="at most 3"):
        remote_topk.tree("the cat", 2, 4)
    with pytest.raises(CapabilityError, match="needs full vocab"):
        remote_topk.generate("the cat", 3, SamplerConfig(top_p=0.99))
    r = run_cli("generate", "to be or", "-m", topk_server.base_url + "/v1", "-t", "0", "-n", "4", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["top_k_only"] == 3 and out["text"] == toy.generate("to be or", 4, greedy).text


def test_many_prompts_are_packed_into_concurrent_requests(full_server, toy):
    b = RemoteBackend(full_server.base_url + "/v1", RemoteSettings(concurrency=3, request_tokens=20, max_prompts=4))
    seqs = [[0] + TOY.tokenize(t).ids for t in TEXTS * 10]
    assert len(b._plan(seqs)) > 5  # several requests, several prompts in each
    got = b.nll_sums(seqs, [1] * len(seqs))
    want = toy.backend.nll_sums(seqs, [1] * len(seqs))
    assert got == FLOAT64.approx(want)
    b.close()


# -- vLLM and llama.cpp wire formats -------------------------------------------------------------------

def test_vllm_shapes_prompt_logprobs_token_id_keys_clamps_and_int_error_codes(toy):
    with VLLMFake() as fake:
        b = connect(fake.url)
        caps = b.capabilities
        assert (caps.server, caps.prompt_logprobs, caps.token_id_prompts, caps.token_id_labels,
                caps.max_tokens_zero, caps.top_k_only, caps.context_length) == ("vllm", True, True, True, False, 13, 512)
        assert b.model == VLLMFake.model and b.bos_token_id == 0 and b.eos_token_id is None
        assert any("EOS token" in n for n in caps.notes)
        m = logitscope.from_backend(b)
        a, r = toy.score(TEXTS[0], top_k=13), m.score(TEXTS[0], top_k=13)
        for x, y in zip(a.scored_tokens, r.scored_tokens):
            assert y.rank == x.rank
            for cx, cy in [(x, y), *zip(x.alternatives, y.alternatives)]:  # -9999.0 on the wire is log(0)
                assert cy.logprob == (-math.inf if cx.logprob < CLAMP_BELOW else FLOAT64.approx(cx.logprob))
        assert any(c.logprob == -math.inf for t in r.scored_tokens for c in t.alternatives)
        body = next(b for m_, p, b in fake.requests if p == "/v1/completions" and b.get("prompt_logprobs") == 13)
        assert isinstance(body["prompt"], list) and body["max_tokens"] == 1  # ids sent; vLLM refuses 0
        b.close()


def test_llamacpp_shapes_chat_logprobs_and_echo_refusal(toy):
    with LlamaCppFake() as fake:
        b = connect(fake.url)
        caps = b.capabilities
        assert (caps.server, caps.echo, caps.prompt_logprobs, caps.token_id_prompts, caps.context_length) == \
            ("llama.cpp", False, False, True, 512)
        assert b.vocab_size == 13 and (b.bos_token_id, b.eos_token_id) == (0, 1)
        assert any("Only no echo is supported" in n for n in caps.notes)
        m = logitscope.from_backend(b)
        a, r = toy.next_token("the cat", top_k=5), m.next_token("the cat", top_k=5)
        assert r.top[0].token_id == a.top[0].token_id and r.top_k_only == 13  # the whole toy vocabulary
        assert [c.logprob for c in r.top] == FLOAT32_ROUNDING.approx([c.logprob for c in a.top])
        with pytest.raises(CapabilityError, match="prompt log-probs"):
            m.score(TEXTS[0])
        with pytest.raises(CapabilityError, match="prompt log-probs"):
            m.perplexity(texts=TEXTS)
        b.close()


def test_text_only_server_round_trip_is_checked(toy):
    with VLLMFake(text_only=True) as fake:
        m = logitscope.load(fake.url)  # the URL form of load()
        caps = m.backend.capabilities
        assert (caps.token_id_prompts, caps.token_id_labels, caps.prompt_logprobs, caps.echo) == (False, False, False, True)
        assert any("token-id prompts refused" in n for n in caps.notes)
        since = len(fake.requests)
        a, b = toy.score(TEXTS[0], top_k=2), m.score(TEXTS[0], top_k=2)
        assert [t.logprob for t in b.scored_tokens] == \
            [(-math.inf if t.logprob < CLAMP_BELOW else FLOAT64.approx(t.logprob)) for t in a.scored_tokens]
        assert all(isinstance(p, str) for _, path, body in fake.requests[since:] if path == "/v1/completions"
                   for p in ([body["prompt"]] if isinstance(body["prompt"], str) else body["prompt"]))
        fake.fault = "retokenize"
        with pytest.raises(ModelLoadError, match="tokenized the text prompt differently: token 2 is 'ca'"):
            m.score(TEXTS[0])
        m.backend.close()


# -- bad servers: one clear error line, nothing partial ---------------------------------------------------

def run_cli(*args):
    return CliRunner().invoke(main, list(args))


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def test_connection_refused_is_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = one_error_line(run_cli("score", "the cat", "-m", f"http://127.0.0.1:{port}/v1"))
    assert "cannot reach" in line and "connection refused" in line


@pytest.mark.parametrize("fault,message", [("500", "HTTP 500: CUDA out of memory"), ("hang", "did not answer within"),
                                           ("garbage", "other than a JSON object"),
                                           ("short", "the server returned")])
def test_bad_servers_are_one_line_without_a_partial_result(fault, message, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(" ".join(TEXTS))
    with VLLMFake() as fake:
        b = connect(fake.url, timeout=1.0)
        fake.fault = fault
        with pytest.raises(ModelLoadError, match=message):
            logitscope.from_backend(b).perplexity(texts=TEXTS)
        fake.fault = None
        b.close()
        fake.fault = fault
        line = one_error_line(run_cli("perplexity", str(corpus), "-m", fake.url, "--timeout", "1"))
        assert message in line
    assert "LOGITSCOPE_TIMEOUT" not in os.environ  # the option lasted for that command only


def test_503_is_retried_and_a_wrong_model_name_is_named():
    with VLLMFake() as fake:
        b = connect(fake.url)
        fake.fault = "503-once"
        assert logitscope.from_backend(b).perplexity(texts=TEXTS[:1]).total.num_scored == 6
        assert fake.fault is None
        with pytest.raises(ModelLoadError, match="does not serve 'nope'.*meta-llama"):
            connect(fake.url + "#nope")


def test_info_command_shows_what_the_server_supports(full_server):
    r = run_cli("info", "-m", full_server.base_url + "/v1", "--json")
    assert r.exit_code == 0, r.output
    assert '"prompt_logprobs": true' in r.output and '"top_k_only": 13' in r.output
    r = run_cli("perplexity", "--help")
    assert "--concurrency" in r.output and "--api-key" in r.output


def test_api_key_is_sent(toy):
    with LiveServer(create_app({"toy": toy}, api_key="s3cret")) as srv:
        with pytest.raises(ModelLoadError, match="401"):
            connect(srv.base_url + "/v1", api_key="wrong")
        b = connect(srv.base_url + "/v1", api_key="s3cret")
        assert b.capabilities.prompt_logprobs
        b.close()
        r = run_cli("next", "the cat", "-m", srv.base_url + "/v1", "--api-key", "s3cret", "--json")
        assert r.exit_code == 0, r.output


def test_entropy_bound_matches_mathops(remote_topk):
    ids, lps = remote_topk.backend.next_top_k([[0, 11, 3]], 3)
    r = remote_topk.next_token("the cat", top_k=3)
    assert r.entropy == FLOAT64.approx(float(mathops.entropy_lower_bound(lps[0])))
    assert ids.shape == (1, 3) and torch.all(lps[0, :-1] >= lps[0, 1:])
