"""The remote backend against `logitscope serve` of the bundled SmolLM2 (slow): the local
numbers where the chosen token's log-prob is all an analysis needs, the labelled top-k
variant elsewhere; llama-cpp-python's real server when the contenders environment exists."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi")

import logitscope  # noqa: E402
from logitscope.backends.remote import connect  # noqa: E402
from logitscope.backends.topk import TopKBackend  # noqa: E402
from logitscope.evaluation.calibration import bundled_dataset_path  # noqa: E402
from logitscope.server import create_app  # noqa: E402
from server_util import LiveServer  # noqa: E402
from tolerances import FLOAT32_RELATIVE, FLOAT32_TOKEN

pytestmark = pytest.mark.slow
TEXT = "The quick brown fox jumps over the lazy dog. Logitscope shows what a model believes, token by token."


@pytest.fixture(scope="module")
def remote(smol):
    with LiveServer(create_app({"smol": smol}, max_logprobs=20)) as srv:
        b = connect(srv.base_url + "/v1", concurrency=4)
        yield logitscope.from_backend(b)
        b.close()


def test_capabilities_and_tokenizer_round_trip(remote, smol):
    caps = remote.backend.capabilities
    assert caps.top_k_only == 20 and caps.prompt_logprobs and caps.token_id_prompts
    assert caps.context_length == smol.capabilities.context_length
    b = remote.backend
    assert (b.bos_token_id, b.eos_token_id, b.vocab_size) == (smol.backend.bos_token_id, smol.backend.eos_token_id,
                                                              smol.backend.vocab_size)
    local, got = smol.backend.tokenize(TEXT), b.tokenize(TEXT)
    assert got.ids == local.ids and got.offsets == local.offsets


@pytest.mark.parity
def test_score_is_the_top_20_variant_of_the_local_scores(remote, smol):
    a = logitscope.from_backend(TopKBackend(smol.backend, 20)).score(TEXT, top_k=5)
    full, b = smol.score(TEXT, top_k=5), remote.score(TEXT, top_k=5)
    assert b.top_k_only == 20 and b.input_ids == a.input_ids
    for x, y, f in zip(a.scored_tokens, b.scored_tokens, full.scored_tokens):
        assert y.logprob == FLOAT32_TOKEN.approx(x.logprob)
        assert y.entropy == FLOAT32_TOKEN.approx(x.entropy) and y.rank == f.rank
        assert y.alternatives[0].token_id == x.alternatives[0].token_id


@pytest.mark.parity
def test_perplexity_in_every_convention_equals_local(remote, smol):
    texts = [TEXT * 3, "A second document, shorter.", TEXT]
    for conv in ("strided", "disjoint", "llamacpp"):
        a = smol.perplexity(texts=texts, convention=conv, window=32)
        b = remote.perplexity(texts=texts, convention=conv, window=32)
        assert b.total.num_scored == a.total.num_scored
        assert b.total.perplexity == FLOAT32_RELATIVE.approx(a.total.perplexity)


def test_ranking_and_calibration_equal_local(remote, smol, tmp_path):
    ra = smol.rank("The capital of France is", [" Paris", " London", " a city"])
    rb = remote.rank("The capital of France is", [" Paris", " London", " a city"])
    assert rb.order("sum") == ra.order("sum")
    for x, y in zip(ra.candidates, rb.candidates):
        assert y.score("sum") == FLOAT32_TOKEN.approx(x.score("sum"))
    items = [json.loads(line) for line in open(bundled_dataset_path())][:12]
    path = tmp_path / "mcq.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    ca, cb = smol.calibrate(path), remote.calibrate(path)
    assert cb.metrics.accuracy == ca.metrics.accuracy
    assert cb.metrics.ece == FLOAT32_TOKEN.approx(ca.metrics.ece)


# -- llama-cpp-python's real server (the contenders environment) ------------------------------------

CONTENDERS = "/work/venv-contenders/bin/python"


def _llama_cpp_server_available() -> str | None:
    import subprocess
    from pathlib import Path

    if not Path(CONTENDERS).exists():
        return "no /work/venv-contenders (benchmarks/setup_contenders.sh not run)"
    ok = subprocess.run([CONTENDERS, "-c", "import llama_cpp.server.app"], capture_output=True).returncode == 0
    return None if ok else "llama-cpp-python's server is not installed in /work/venv-contenders"


@pytest.fixture(scope="module")
def llama_cpp_python():
    reason = _llama_cpp_server_available()
    if reason:
        pytest.skip(reason)
    import subprocess
    import time

    import httpx

    from logitscope.loading import bundled_gguf_path
    from logitscope.server.launch import free_port

    port = free_port()
    proc = subprocess.Popen([CONTENDERS, "-m", "llama_cpp.server", "--model", str(bundled_gguf_path()),
                             "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--logits_all", "true"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        # its labels are token texts (a dict: two tokens that decode alike collide, and byte pieces decode
        # to ""), so the fewer alternatives asked, the fewer ambiguous labels: 5, as OpenAI's cap
        b = connect(f"http://127.0.0.1:{port}/v1", concurrency=1, timeout=300, max_logprobs=5)
        yield logitscope.from_backend(b)
        b.close()
    finally:
        proc.terminate()
        proc.wait(30)


def test_llama_cpp_python_capabilities_and_its_shifted_echo_refused(llama_cpp_python):
    caps = llama_cpp_python.backend.capabilities
    # its echo gives each prompt token the log-prob of the distribution *after* it: detected, never used
    assert caps.tokenizer == "/extras/tokenize" and not caps.echo and not caps.prompt_logprobs
    assert not caps.token_id_prompts and not caps.token_id_labels and caps.top_k_only == 5
    assert any("shifted by one position" in note for note in caps.notes)
    with pytest.raises(logitscope.CapabilityError, match="prompt log-probs"):
        llama_cpp_python.score("The quick brown fox jumps over the lazy dog.")
    with pytest.raises(logitscope.CapabilityError, match="prompt log-probs"):
        llama_cpp_python.perplexity(texts=[TEXT], bos=False)
