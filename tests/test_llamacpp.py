"""The llama.cpp engine (backends/llamacpp.py) on the bundled GGUF.

Its numbers are held to llama-cpp-python's own (``Llama.eval`` + ``scores`` on the same file),
its tokenization to the torch engine's, and its decode states (prefill, extend, fork,
rewind, states used out of order, more states than sequence ids) to full passes. Skipped
with a reason when llama-cpp-python is not installed (scripts/install_llamacpp.sh).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import logitscope
from logitscope import CapabilityError, InputError, ModelLoadError
from logitscope.backends.base import PositionScores
from logitscope.backends.llamacpp import common_prefix, piece_offsets, position_scores, target_logprobs
from logitscope.core import mathops

HAVE_ENGINE = importlib.util.find_spec("llama_cpp") is not None
needs_engine = pytest.mark.skipif(not HAVE_ENGINE, reason="llama-cpp-python is not installed "
                                                          "(bash scripts/install_llamacpp.sh installs it)")
THREADS = int(os.environ.get("LOGITSCOPE_THREADS", "0") or 0) or 1
TEXTS = ["To be or not to be, that is the question.", "The capital of France is Paris.",
         "def add(a, b):\n    return a + b\n\n" * 3]
# fed the same way, llama.cpp gives the same float32 logits; our log-softmax is float64 like the reference's
EXACT = 1e-9


@pytest.fixture(scope="module")
def lcpp():
    from logitscope.backends.llamacpp import load_llamacpp
    from logitscope.loading import bundled_gguf_path

    return load_llamacpp(bundled_gguf_path(), threads=THREADS)


@pytest.fixture(scope="module")
def reference():
    """log-probs (T, V) float64 of every row of ``ids`` from llama-cpp-python's own eval loop, the ids
    fed in ``pieces`` (successive Llama.eval calls; a piece (n,) rewinds to n ids first, as Llama.eval
    drops the cells past n_tokens)."""
    import llama_cpp

    from logitscope.loading import bundled_gguf_path

    llm = llama_cpp.Llama(str(bundled_gguf_path()), n_ctx=1024, n_threads=THREADS, n_threads_batch=THREADS,
                          logits_all=True, verbose=False)

    def logprobs(ids: list[int], pieces: list = ()) -> torch.Tensor:
        llm.reset()
        for piece in list(pieces) or [len(ids)]:
            if isinstance(piece, tuple):
                llm.n_tokens = piece[0]
            else:
                llm.eval(ids[llm.n_tokens:llm.n_tokens + piece])
        return mathops.log_softmax(torch.from_numpy(llm.scores[:llm.n_tokens].copy()).double())

    logprobs.llm = llm
    return logprobs


def ids_of(b, text: str) -> list[int]:
    return [b.bos_token_id] + b.tokenize(text).ids


# -- pure pieces (no engine) ------------------------------------------------------------------

@given(st.text(max_size=40), st.lists(st.integers(1, 6), max_size=40))
def test_piece_offsets_of_any_byte_split_are_ordered_spans_that_cover_the_text(text, cuts):
    data, pieces, at = text.encode(), [], 0
    for n in cuts:
        if at < len(data):
            pieces.append(data[at:at + n])
            at += n
    pieces.append(data[at:])
    spans = piece_offsets(text, pieces)
    assert len(spans) == len(pieces)
    assert all(0 <= s <= e <= len(text) for s, e in spans)
    assert [s for s, _ in spans] == sorted(s for s, _ in spans)
    for piece, (s, e) in zip(pieces, spans):
        if piece:
            assert piece in text[s:e].encode()  # a piece that splits a character spans the whole character


def test_piece_offsets_drop_the_leading_space_a_sentencepiece_tokenizer_adds():
    assert piece_offsets("Hi there", [b" Hi", b" there"]) == [(0, 2), (2, 8)]
    assert piece_offsets("é!", [b"\xc3", b"\xa9", b"!"]) == [(0, 1), (0, 1), (1, 2)]


@given(st.integers(1, 6), st.integers(2, 300), st.integers(0, 5), st.floats(0.1, 30), st.integers(0, 2**31 - 1))
def test_lean_position_scores_and_target_logprobs_equal_the_generic_path(rows, vocab, top_k, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, vocab, generator=gen) * scale
    targets = torch.randint(0, vocab, (rows,), generator=gen)
    ours, ref = position_scores(logits, targets, top_k), PositionScores.from_logits(logits, targets, top_k)
    for name in ("logprob", "entropy", "top_logprobs"):
        torch.testing.assert_close(getattr(ours, name), getattr(ref, name), atol=1e-5, rtol=1e-5)
    # ranks and top ids by their definition on the logits: the reference ranks float32 log-softmax values,
    # where two logits 1 ulp apart can round equal (hypothesis found one: rank 33 there, 32 in the reference)
    assert ours.rank.tolist() == mathops.rank_of(logits.double(), targets).tolist()
    assert ours.top_ids.tolist() == logits.double().topk(min(top_k, vocab), dim=-1).indices.tolist()
    torch.testing.assert_close(target_logprobs(logits, targets), ref.logprob, atol=1e-5, rtol=1e-5)


def test_common_prefix():
    a = (1, 2, 3)
    assert common_prefix(a, a) == 3 and common_prefix(a, (1, 2)) == 2 and common_prefix(a, (1, 5, 3)) == 1
    assert common_prefix((), a) == 0


def test_without_llama_cpp_python_loading_says_how_to_install_it(monkeypatch):
    from logitscope.backends.llamacpp import load_llamacpp

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp raises ImportError
    with pytest.raises(ModelLoadError, match="needs llama-cpp-python") as err:
        load_llamacpp("model.gguf")
    assert "install_llamacpp.sh" in err.value.hint


# -- parity with llama-cpp-python's own logits --------------------------------------------------

@needs_engine
def test_next_token_top5_equals_llama_cpp_python(lcpp, reference):
    got = logitscope.from_backend(lcpp).next_token("To be or not to", top_k=5)
    ref = reference(list(got.input_ids))[-1].topk(5)
    assert [c.token_id for c in got.top] == ref.indices.tolist()
    torch.testing.assert_close(torch.tensor([c.logprob for c in got.top], dtype=torch.float64), ref.values,
                               atol=1e-4, rtol=0)


@needs_engine
def test_score_positions_equal_llama_cpp_python_rows(lcpp, reference):
    for text in TEXTS:
        seq = ids_of(lcpp, text)
        got = lcpp.score_positions([seq], [1], top_k=4)[0]
        ref = reference(seq)[:-1]  # (T-1, V): row t-1 scores target t
        targets = torch.tensor(seq[1:])
        # the same float32 logits; PositionScores takes the log-softmax in float32
        torch.testing.assert_close(got.logprob, ref.gather(-1, targets[:, None])[:, 0], atol=1e-5, rtol=0)
        assert got.rank.tolist() == mathops.rank_of(ref, targets).tolist()
        torch.testing.assert_close(got.entropy, mathops.entropy(ref), atol=1e-5, rtol=0)
        assert got.top_ids.tolist() == ref.topk(4).indices.tolist()


@needs_engine
def test_position_logits_are_llama_cpp_python_rows_in_one_pass(lcpp, reference):
    seq = ids_of(lcpp, " ".join(TEXTS))
    calls = []
    lcpp.next_logits = lambda prefixes: calls.append(prefixes)  # the contract's slow default must not run
    rows = lcpp.position_logits(seq)  # (T, V)
    del lcpp.next_logits
    assert rows.shape == (len(seq), lcpp.vocab_size) and not calls
    torch.testing.assert_close(mathops.log_softmax(rows.double()), reference(seq).double(), atol=1e-5, rtol=0)


@needs_engine
def test_scoring_values_and_sums_agree(lcpp, reference):
    seqs = [ids_of(lcpp, t) for t in TEXTS] * 3
    starts = [1, 3, 5, 2, 4, 6, 1, len(seqs[7]), 9]  # one scores nothing
    scores = lcpp.score_positions(seqs, starts, top_k=2)
    values = lcpp.token_logprobs(seqs, starts)
    sums = lcpp.nll_sums(seqs, starts)
    for seq, start, s, v, total in zip(seqs, starts, scores, values, sums):
        ref = reference(seq)[start - 1:-1].gather(-1, torch.tensor(seq[start:])[:, None])[:, 0]
        assert len(s) == len(v) == len(seq) - start
        torch.testing.assert_close(s.logprob, ref, atol=1e-5, rtol=0)  # log-softmax in float32, then float64
        torch.testing.assert_close(v, s.logprob, atol=1e-5, rtol=0)
        assert total == pytest.approx(-float(v.sum()), abs=1e-9)


@needs_engine
def test_next_logits_are_the_last_row_of_each_prefix(lcpp, reference):
    prefixes = [ids_of(lcpp, t) for t in TEXTS]
    got = mathops.log_softmax(lcpp.next_logits(prefixes).double())
    for row, prefix in zip(got, prefixes):
        torch.testing.assert_close(row, reference(prefix)[-1], atol=EXACT, rtol=0)


# -- decode states on the KV cache ---------------------------------------------------------------
# Each is compared with llama-cpp-python fed the same pieces: llama.cpp's numbers depend on the
# batching (tens of a nat on this model), so only the same feeding can be held to equality.

def _equal(state, expected: torch.Tensor, ids: list[int]):
    torch.testing.assert_close(mathops.log_softmax(state.logits.double()), expected, atol=EXACT, rtol=0)
    assert state.ids == tuple(ids)


@needs_engine
def test_prefill_extend_rewind_equal_llama_cpp_python_fed_the_same_pieces(lcpp, reference):
    ids = ids_of(lcpp, TEXTS[0])
    state = lcpp.prefill(ids[:3])
    for t in ids[3:8]:
        state = lcpp.extend(state, [t])
    _equal(state, reference(ids[:8], [3, 1, 1, 1, 1, 1])[-1], ids[:8])
    state, rows = lcpp.extend_rows(state, ids[8:12])  # (4, V): the logits after each fed token
    expected = reference(ids[:12], [3, 1, 1, 1, 1, 1, 4])
    torch.testing.assert_close(mathops.log_softmax(rows.double()), expected[8:12], atol=EXACT, rtol=0)
    state = lcpp.rewind(state, 10, rows[1])
    _equal(lcpp.extend(state, ids[10:14]), reference(ids[:14], [3, 1, 1, 1, 1, 1, 4, (10,), 4])[-1], ids[:14])


@needs_engine
def test_forks_keep_their_cells_whatever_runs_in_between(lcpp, reference):
    ids = ids_of(lcpp, TEXTS[0])
    root = lcpp.prefill(ids[:6])
    a, b = lcpp.fork(root), lcpp.fork(root)
    a = lcpp.extend(a, ids[6:8])
    lcpp.score_positions([ids], [1])  # scoring in between empties the cache
    b = lcpp.extend(b, [ids[9]])
    a = lcpp.extend(a, [ids[8]])  # a's cells are put back byte for byte
    _equal(a, reference(ids[:9], [6, 2, 1])[-1], ids[:9])
    _equal(b, reference(ids[:6] + [ids[9]], [6, 1])[-1], ids[:6] + [ids[9]])
    _equal(lcpp.extend(root, [ids[6]]), reference(ids[:7], [6, 1])[-1], ids[:7])  # the root survived its forks


@needs_engine
def test_a_consumed_state_used_again_recomputes_what_its_cells_lack(lcpp, reference):
    ids = ids_of(lcpp, TEXTS[0])
    start = lcpp.prefill(ids[:4])
    ahead = lcpp.extend(start, ids[4:8])  # consumes start's cells
    _equal(lcpp.extend(start, ids[4:6]), reference(ids[:6], [4, 4, (5,), 1])[-1], ids[:6])
    _equal(lcpp.extend(ahead, ids[8:9]), reference(ids[:9], [4, 4, (5,), 1, 3])[-1], ids[:9])


@needs_engine
def test_score_continuations_feed_each_after_the_prefix_cells(lcpp, reference):
    prefix = ids_of(lcpp, "The capital of France is")
    conts = [lcpp.tokenize(c).ids for c in (" Paris.", " a small town in the south", " 1 2 3")]
    state = lcpp.prefill(prefix)
    got = lcpp.score_continuations(state, conts, top_k=3)
    for g, cont in zip(got, conts):
        seq = prefix + cont
        expected = reference(seq, [len(prefix), len(cont) - 1])[len(prefix) - 1:]  # (len(cont), V)
        torch.testing.assert_close(g.logprob, expected.gather(-1, torch.tensor(cont)[:, None])[:, 0], atol=1e-5,
                                   rtol=0)
        assert g.top_ids.tolist() == expected.topk(3).indices.tolist()
    _equal(lcpp.extend(state, conts[0][:1]), reference(prefix + conts[0][:1], [len(prefix), 1])[-1],
           prefix + conts[0][:1])  # the prefix's cells are still there


@needs_engine
def test_greedy_generation_equals_llama_cpp_python_generate(lcpp, reference):
    from logitscope.core.processors import SamplerConfig
    from logitscope.sampling.generation import generate

    got = generate(lcpp, "Once upon a time", max_new_tokens=40, sampler=SamplerConfig.greedy(), speculative=False)
    theirs = []
    for token in reference.llm.generate(list(got.input_ids), temp=0.0, top_k=1, reset=True):
        theirs.append(token)
        if len(theirs) == len(got.token_ids):
            break
    assert list(got.token_ids) == theirs


# -- the same tokenizer and facts as the torch engine ----------------------------------------------

TOKENIZER_TEXTS = ["To be or not to", "  two  spaces\tand a tab\n\nnew lines", "héllo wörld — ünïcödé",
                   "emoji 🙂🚀 and 中文字符", "<|im_start|>user\nHi<|im_end|>", "1234567 + 89 = ?", "", " ", "a"]


@needs_engine
@pytest.mark.slow
def test_tokenization_equals_the_torch_engine(lcpp, smol):
    torch_backend = smol.backend
    for text in TOKENIZER_TEXTS:
        ours, theirs = lcpp.tokenize(text), torch_backend.tokenize(text)
        assert ours.ids == theirs.ids, text
        assert ours.offsets == theirs.offsets, text
        assert lcpp.detokenize(ours.ids) == torch_backend.detokenize(theirs.ids)
        assert [lcpp.token_text(i) for i in ours.ids] == [torch_backend.token_text(i) for i in theirs.ids]
    for name in ("bos_token_id", "eos_token_id", "adds_bos_by_default", "vocab_size"):
        assert getattr(lcpp, name) == getattr(torch_backend, name), name
    assert lcpp.capabilities.context_length == torch_backend.capabilities.context_length


@needs_engine
def test_engine_facts_and_what_it_cannot_do(lcpp):
    assert (lcpp.engine, lcpp.dtype) == ("llamacpp", "Q4_1")
    c = lcpp.capabilities
    assert c.full_vocab and c.kv_cache and not c.weights
    assert not c.verify_rows  # generation decodes one token at a time, as llama.cpp does (see the backend)
    with pytest.raises(CapabilityError, match="quantization needs weights") as err:
        logitscope.from_backend(lcpp).quantization_impact("To be or not to be")
    assert "--engine torch" in err.value.hint


@needs_engine
def test_load_with_engine_llamacpp_and_what_it_refuses(tmp_path):
    model = logitscope.load("bundled", engine="llamacpp", threads=THREADS)
    assert model.backend.engine == "llamacpp" and model.name == "SmolLM2-135M-Instruct"
    with pytest.raises(InputError, match="do not apply to the toy model"):
        logitscope.load("toy", engine="llamacpp")
    with pytest.raises(ModelLoadError, match="not a .gguf file") as err:
        logitscope.load(str(tmp_path), engine="llamacpp")
    assert "--engine torch" in err.value.hint
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF not really")
    with pytest.raises(ModelLoadError, match="llama.cpp cannot load"):
        logitscope.load(str(broken), engine="llamacpp")


@needs_engine
def test_perplexity_conventions_run_on_the_engine(lcpp):
    model = logitscope.from_backend(lcpp)
    text = " ".join(TEXTS) * 4
    for convention in ("strided", "disjoint", "llamacpp"):
        result = model.perplexity(texts=[text], convention=convention, window=64)
        assert 1 < result.total.perplexity < 1e4, convention


@needs_engine
def test_a_catalogue_model_keeps_its_name(tmp_path, monkeypatch):
    from logitscope.catalog import MODELS, gguf_path
    from logitscope.loading import bundled_gguf_path

    monkeypatch.setenv("LOGITSCOPE_CACHE", str(tmp_path))
    target = gguf_path(MODELS["qwen2.5-coder-1.5b"])  # a stand-in file at the catalogue's place
    target.parent.mkdir(parents=True)
    target.symlink_to(bundled_gguf_path())
    model = logitscope.load("qwen2.5-coder-1.5b", engine="llamacpp", threads=THREADS)
    assert model.name == "qwen2.5-coder-1.5b"  # the server's model id and every header, not the file's stem


@needs_engine
def test_cli_next_on_the_engine_equals_llama_cpp_python(cli, reference):
    out = cli(["next", "To be or not to", "--engine", "llamacpp", "-k", "5", "--json"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.output)
    assert got["produced_by"] == {"model": "SmolLM2-135M-Instruct", "engine": "llamacpp", "dtype": "Q4_1"}
    ref = reference(got["input_ids"])[-1].topk(5)
    assert [t["token_id"] for t in got["top"]] == ref.indices.tolist()
    assert [t["logprob"] for t in got["top"]] == pytest.approx(ref.values.tolist(), abs=1e-4)


def test_llama_cpp_log_lines_follow_ggml_levels_and_the_logger(capsys):
    import logging
    import types

    from logitscope.backends.llamacpp_context import _log_callback

    fake = types.SimpleNamespace(llama_log_callback=lambda f: f)  # the ctypes decorator, as identity
    logger = logging.getLogger("logitscope-test-llama")
    logger.setLevel(logging.ERROR)
    log = _log_callback(fake, logger)
    # ggml.h: DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continues the previous line)
    for level, text in [(2, b"info\n"), (3, b"load: control-looking token\n"), (5, b"...\n"), (4, b"failed: "),
                        (5, b"details\n"), (0, b"no level\n")]:
        log(level, text, None)
    assert capsys.readouterr().err == "failed: details\n"
    logger.setLevel(logging.WARNING)
    log(3, b"warned\n", None)
    assert capsys.readouterr().err == "warned\n"
