"""Perplexity conventions: window plans against lm-eval's and llama.cpp's rules,
token accounting, agreement with score(), padding invariance, bad input via the CLI.

BOS policy in these tests: bos=True (the prefix token once per document) unless a
test says otherwise, so strided and disjoint score every text token.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import logitscope
from logitscope.scoring import perplexity as ppl
from logitscope.backends.toy import ToyBackend
from logitscope.core.boundary import plan_disjoint_windows, plan_llamacpp_chunks
from logitscope.core.corpus import Document, text_blocks
from tolerances import FLOAT32_RELATIVE, FLOAT64

WORDS = "the cat sat on mat dog slept".split()


@pytest.fixture
def counting_model():
    """A toy bigram model over WORDS with a long context, for token accounting."""
    return logitscope.from_backend(ToyBackend.from_ngrams([" ".join(WORDS)] * 2, order=2, alpha=0.5,
                                                          context_length=4096))


def words(n: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(n))


def lmeval_rolling_windows(token_list, prefix_token, max_seq_len):
    """Reference: lm-evaluation-harness utils.get_rolling_token_windows (context_len=1)."""
    predicted, first = 0, min(max_seq_len, len(token_list))
    yield [prefix_token] + token_list[: first - 1], token_list[:first]
    predicted += first
    while predicted < len(token_list):
        pred_len = min(len(token_list) - predicted, max_seq_len)
        end = predicted + pred_len
        yield token_list[end - max_seq_len - 1: end - 1], token_list[end - pred_len: end]
        predicted += pred_len


@pytest.mark.parametrize("n_tokens, max_len", [(1, 4), (9, 10), (10, 10), (11, 10), (34, 10), (37, 10)])
def test_disjoint_windows_are_lm_evals(n_tokens, max_len):
    tokens = list(range(100, 100 + n_tokens))
    ids = [-1] + tokens  # the prefix token in front
    ours = [(ids[w.begin:w.end][:-1], ids[w.first_target:w.end])
            for w in plan_disjoint_windows(len(ids), 1, max_len + 1)]
    assert ours == list(lmeval_rolling_windows(tokens, -1, max_len))


def test_llamacpp_chunks_follow_perplexity_cpp():
    """n_ctx=8: chunks [0,8) [8,16); logits first..n_ctx-2 (first=4) score ids 5..7 of each chunk."""
    chunks = plan_llamacpp_chunks(19, 8)
    assert [(w.begin, w.end, w.first_target) for w in chunks] == [(0, 8, 5), (8, 16, 13)]


@pytest.mark.parametrize("convention", ppl.CONVENTIONS)
@pytest.mark.parametrize("n_text", [1, 15, 16, 17, 3 * 16 + 7])
def test_scored_token_counts_match_the_formula(counting_model, convention, n_text):
    """Window 16 ids: text of 1, window-1, window, window+1 and 3*window+7 tokens."""
    window = 16
    r = counting_model.perplexity(texts=[words(n_text)], convention=convention, window=window, bos=True)
    doc = r.sources[0].documents[0]
    n_ids = n_text + 1  # prefix token
    assert doc.counts.num_scored == ppl.expected_scored(convention, n_ids, window)
    assert doc.counts.num_tokens == n_text
    if convention != "llamacpp":
        assert doc.counts.num_scored == n_text  # every token exactly once


def test_each_target_scored_once_by_the_plans():
    for n_ids in range(2, 60):
        for conv, plan in [("strided", lambda n: ppl.plan_windows(n, 1, 8, 3)),
                           ("disjoint", lambda n: plan_disjoint_windows(n, 1, 8))]:
            targets = [t for w in plan(n_ids) for t in range(w.first_target, w.end)]
            assert sorted(targets) == list(range(1, n_ids)), (conv, n_ids)
            assert all(w.end - w.begin <= 8 and w.first_target > w.begin for w in plan(n_ids))


def test_one_window_text_agrees_across_conventions_and_with_score(counting_model):
    text = words(12)
    score = counting_model.score(text, bos=True)
    for conv in ("strided", "disjoint"):
        r = counting_model.perplexity(texts=[text], convention=conv, window=32, bos=True)
        assert r.total.num_scored == score.num_scored
        assert r.total.perplexity == FLOAT64.approx(score.perplexity)


def test_strided_with_stride_equal_window_is_disjoint(counting_model):
    """Identical when the text fills whole windows; otherwise only lm-eval's widened last window differs."""
    window = 9
    for n_text in (8, 16, 24, 40):  # n_ids - 1 = n_text targets, 8 per window
        a = counting_model.perplexity(texts=[words(n_text)], convention="strided", window=window, stride=window)
        b = counting_model.perplexity(texts=[words(n_text)], convention="disjoint", window=window)
        assert a.total.num_scored == b.total.num_scored == n_text
        assert a.total.nll == FLOAT64.approx(b.total.nll)
    a = counting_model.perplexity(texts=[words(19)], convention="strided", window=window, stride=window)
    b = counting_model.perplexity(texts=[words(19)], convention="disjoint", window=window)
    assert a.total.num_scored == b.total.num_scored == 19


def test_documents_are_separate_and_corpus_is_token_weighted(counting_model):
    texts = [words(5), words(30)]
    r = counting_model.perplexity(texts=texts, window=8)
    singles = [counting_model.perplexity(texts=[t], window=8).total for t in texts]
    assert r.total.nll == FLOAT64.approx(sum(s.nll for s in singles))
    assert r.total.perplexity == pytest.approx(math.exp(r.total.nll / r.total.num_scored))
    assert r.mean_document_perplexity == pytest.approx(np.mean([s.perplexity for s in singles]))


def test_byte_and_word_levels_follow_lm_eval(counting_model):
    text = "the cat  sat\non the mat"
    c = counting_model.perplexity(texts=[text], convention="disjoint", window=64).total
    assert (c.num_bytes, c.num_words) == (len(text.encode()), 6)
    assert c.bits_per_byte == pytest.approx(c.nll / c.num_bytes / math.log(2))
    assert c.word_perplexity == pytest.approx(math.exp(c.nll / 6))
    half = counting_model.perplexity(texts=[words(40)], convention="llamacpp", window=8, bos=True).total
    assert half.bits_per_byte is None  # not every token scored


def test_block_cutting_keeps_the_text_and_word_count():
    text = ("Lorem ipsum, dolor sit amet.\n\n  Über 42 days  " * 300).strip()
    blocks = list(text_blocks([text[i:i + 777] for i in range(0, len(text), 777)], block_chars=1000))
    assert "".join(blocks) == text and len(blocks) > 5
    assert all(b.startswith(" ") and b[1].isalpha() for b in blocks[1:])


def test_options_out_of_range(counting_model):
    for kwargs in ({"window": 1}, {"window": 5000}, {"window": 8, "stride": 9}, {"convention": "nope"},
                   {"convention": "disjoint", "stride": 4}):
        with pytest.raises(logitscope.InputError) as exc:
            counting_model.perplexity(texts=["the cat"], **kwargs)
        assert exc.value.hint


# -- bundled model -------------------------------------------------------------------------
@pytest.mark.parity
@pytest.mark.slow
def test_smol_one_window_matches_score_and_lm_eval_windows(smol):
    text = "The quick brown fox jumps over the lazy dog. It was not amused, and neither was the cat."
    score = smol.score(text, bos=True)
    for conv in ("strided", "disjoint"):
        r = smol.perplexity(texts=[text], convention=conv, window=64, bos=True)
        assert r.total.num_scored == score.num_scored
        assert r.total.perplexity == FLOAT32_RELATIVE.approx(score.perplexity)
    n_text = len(smol.backend.tokenize(text).ids)  # 3 * 6 + 3 ids with the prefix: awkward for window 6
    for conv in ppl.CONVENTIONS:
        r = smol.perplexity(texts=[text], convention=conv, window=6, bos=True)
        assert r.total.num_scored == ppl.expected_scored(conv, n_text + 1, 6)


@pytest.mark.parity
@pytest.mark.slow
def test_smol_padding_invariance(smol):
    """Adding a much longer document to the batch changes no other document's NLL beyond 1e-5."""
    short = ["A small cat sat on the warm mat.", "Numbers: 3, 1, 4, 1, 5, 9, 2, 6."]
    long = " ".join(["The history of the river valley is long and full of floods."] * 6)
    alone = smol.perplexity(texts=short, window=256).sources[0].documents
    mixed = smol.perplexity(texts=short + [long], window=256).sources[0].documents
    for a, b in zip(alone, mixed[:2]):
        assert abs(a.counts.nll - b.counts.nll) < 1e-5


@pytest.mark.slow
def test_smol_streamed_tokenization_equals_whole(smol):
    text = (logitscope.__doc__ + " " + ppl.__doc__) * 4
    doc = Document("t", 0, text_blocks([text], block_chars=300))
    ids, _, _ = ppl.tokenize_document(smol.backend, doc, None)
    assert ids.tolist() == smol.backend.tokenize(text).ids


@pytest.mark.slow
def test_smol_strided_matches_a_naive_per_window_loop(smol):
    """HF-guide loop (stride < window), one forward per window, full logits: same number."""
    import torch

    text = " ".join(["Perplexity is the exponential of the mean negative log-likelihood."] * 4)
    r = smol.perplexity(texts=[text], convention="strided", window=24, stride=8, bos=False)
    b = smol.backend
    ids = torch.tensor([b.tokenize(text).ids])
    nll, count, prev_end = 0.0, 0, 0
    for begin in range(0, ids.shape[1], 8):
        end = min(begin + 24, ids.shape[1])
        labels = ids[:, begin:end].clone()
        labels[:, : -(end - prev_end)] = -100
        with torch.no_grad():
            loss = b.model(ids[:, begin:end], labels=labels).loss
        n = int((labels[:, 1:] != -100).sum())  # targets after the shift (the guide's "- 1" is off here)
        nll, count, prev_end = nll + float(loss) * n, count + n, end
        if end == ids.shape[1]:
            break
    assert r.total.num_scored == count
    assert r.total.perplexity == FLOAT32_RELATIVE.approx(math.exp(nll / count))


# -- CLI -----------------------------------------------------------------------------------
def test_cli_bad_files_are_reported_and_others_scored(cli, tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("the cat sat on the mat\n")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("  \n\n")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02the")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 the cat".encode("latin-1"))
    bad = ["empty.txt", "blank.txt", "blob.bin", "latin1.txt", "missing.txt"]
    args = ["perplexity", str(good), *(str(tmp_path / b) for b in bad), str(tmp_path), "-m", "toy", "--json"]
    result = cli(args)
    assert result.exit_code == 2
    out = json.loads(result.stdout)
    assert out["total"]["num_scored"] == 6 and out["total"]["perplexity"] > 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == len(bad) + 1 and all(("hint:" in e) for e in errors)


@pytest.mark.parametrize("opts", [["--window", "1"], ["--window", "100000"], ["--window", "8", "--stride", "9"]])
def test_cli_bad_options_one_line(cli, tmp_path, opts):
    good = tmp_path / "good.txt"
    good.write_text("the cat sat\n")
    result = cli(["perplexity", str(good), "-m", "toy", *opts])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "window" in result.stderr or "stride" in result.stderr


def test_cli_compare_conventions_and_formats(cli, tmp_path):
    data = tmp_path / "docs.jsonl"
    data.write_text("\n".join(json.dumps({"text": t}) for t in ["the cat sat", "the dog sat on the mat"]) + "\n")
    result = cli(["perplexity", str(data), "-m", "toy", "--window", "4", "--compare-conventions", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [r["convention"] for r in rows] == list(ppl.CONVENTIONS)
    assert rows[0]["sources"][0]["num_documents"] == 2
    text = cli(["perplexity", str(data), "-m", "toy", "--window", "4", "--compare-conventions"]).stdout
    assert "lm-eval rolling windows" in text and "disjoint" in text


# -- several models and conventions ------------------------------------------------------------
def test_compare_runs_every_model_under_every_convention_and_reports_each_bad_file_once(tmp_path):
    good, missing = tmp_path / "good.txt", tmp_path / "missing.txt"
    good.write_text("the cat sat on the mat the dog sat\n")
    toy = logitscope.load("toy").backend
    files = [str(good), str(missing)]
    result = ppl.compare([toy, toy], files=files, window=4, stride=1)
    assert [(r.convention, r.stride) for r in result.results] == [(c, 1 if c == "strided" else None)
                                                                  for _ in range(2) for c in ppl.CONVENTIONS]
    for r in result.results:  # the same numbers as one run on its own
        alone = ppl.perplexity(toy, files=files, convention=r.convention, window=4, stride=r.stride)
        assert r.total.nll == alone.total.nll and r.total.num_scored == alone.total.num_scored
    assert len(result.errors) == 1 and "missing.txt" in result.errors[0]  # 6 runs, one line
    assert [row["convention"] for row in result.to_dict()["results"]] == list(ppl.CONVENTIONS) * 2
    with pytest.raises(logitscope.InputError, match="stride applies to the strided convention"):
        ppl.compare([toy], files=[str(good)], conventions=["disjoint"], window=4, stride=1)  # one convention: no rule


def test_model_compare_conventions_matches_the_cli_table(cli, tmp_path):
    data = tmp_path / "zen.txt"
    data.write_text("the cat sat on the mat\nthe dog slept\n")
    result = logitscope.load("toy").compare_conventions(files=[str(data)], window=4)
    assert result.conventions == ppl.CONVENTIONS and not result.errors
    table = cli(["perplexity", str(data), "-m", "toy", "--window", "4", "--compare-conventions"]).stdout
    for r in result.results:
        assert f"{r.total.perplexity:.4f}" in table
