"""End-to-end CLI: `next`, `score`, `tokenize`, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def test_next_json_shape_on_toy(cli):
    res = cli(["next", "the", "-m", "toy", "-k", "3", "--json"])
    assert res.exit_code == 0
    data = json.loads(res.output)
    assert set(data) >= {"input_ids", "entropy", "top"}
    assert len(data["top"]) == 3
    assert set(data["top"][0]) >= {"token_id", "text", "logit", "logprob", "prob", "rank"}
    assert sum(t["prob"] for t in data["top"]) <= 1.0 + 1e-9


def test_score_json_shape_on_toy(cli):
    res = cli(["score", "the cat sat", "-m", "toy", "--json"])
    data = json.loads(res.output)
    assert data["input_ids"][0] == 0  # the toy model's <BOS> prefix is part of what the model saw
    assert [t["logprob"] is None for t in data["tokens"]] == [True, False, False, False]
    assert data["num_scored"] == 3
    assert data["total_logprob"] == pytest.approx(sum(t["logprob"] for t in data["tokens"][1:]))
    for key in ("position", "token_id", "text", "logprob", "rank", "entropy"):
        assert key in data["tokens"][1]
    assert data["perplexity"] > 1 and data["bits_per_byte"] > 0


def test_score_reads_files_and_prints_heatmap_totals(cli, tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("the cat sat on the mat", encoding="utf-8")
    res = cli(["score", "-f", str(f), "-m", "toy", "--table"])
    assert res.exit_code == 0
    assert "scored 6 tokens" in res.output and "perplexity" in res.output and "per-token scores" in res.output


@pytest.mark.parametrize("args, message", [
    (["score", "   ", "-m", "toy"], "empty"),
    (["score", "", "-m", "toy"], "empty"),
    (["next", "the", "-m", "toy", "-k", "0"], "--show=0 is out of range"),  # the option, not the library's top_k
    (["next", "the", "-m", "toy", "--temperature", "0"], "temperature"),
    (["next", "the", "-m", "toy", "--temperature", "-1"], "temperature"),
    (["score", "-f", "/no/such/file.txt", "-m", "toy"], "does not exist"),
    (["score", "-m", "toy"], "give either TEXT or -f FILE"),
    (["score", "the cat", "-m", "/no/such/model"], "does not exist"),
    (["score", "the cat", "-m", "toy", "--window", "1"], "window"),
])
def test_bad_input_is_one_line_and_exit_2(cli, args, message):
    res = cli(args)
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0 and res.output.startswith("error:")
    assert message in res.output and "hint:" in res.output


def test_non_utf8_file_is_refused(cli, tmp_path):
    f = tmp_path / "latin1.txt"
    f.write_bytes("café au lait".encode("latin-1"))
    res = cli(["score", "-f", str(f), "-m", "toy"])
    assert res.exit_code == 2 and "not UTF-8" in res.output


def test_no_traceback_reaches_the_user_from_a_real_process():
    proc = subprocess.run([sys.executable, "-m", "logitscope", "next", "", "-m", "toy"], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: the prompt is empty")


@pytest.mark.slow
def test_next_and_score_on_the_bundled_model(cli):
    data = json.loads(cli(["next", "To be or not to", "--json", "-k", "3"]).output)
    assert data["top"][0]["text"] == " be" and data["top"][0]["prob"] == pytest.approx(0.916, abs=0.005)
    data = json.loads(cli(["score", " Paris", "--context", "The capital of France is", "--json"]).output)
    scored = [t for t in data["tokens"] if t["logprob"] is not None]
    assert [t["text"] for t in scored] == [" Paris"]
    assert data["num_scored"] == 1 and data["perplexity"] == pytest.approx(1 / 0.7725, rel=0.02)


@pytest.mark.slow
def test_tokenize_shows_spans(cli):
    res = cli(["tokenize", "To be or not to be", "--json"])
    rows = json.loads(res.output)
    assert "".join(r["text"] for r in rows) == "To be or not to be"
    assert rows[1] == {"token_id": 325, "text": " be", "start": 2, "end": 5}


def test_k_is_how_many_rows_to_show_and_top_k_is_the_samplers(cli):
    rows = [line for line in cli(["next", "the", "-m", "toy", "-k", "5"]).output.splitlines() if line.startswith("│")]
    assert len(rows) == 5
    assert cli(["next", "the", "-m", "toy", "--top-k", "5"]).exit_code == 2  # no sampler in `next`
    dist = cli(["dist", "the", "-m", "toy", "--top-k", "2", "-k", "3"]).output
    assert "top-k 2" in dist and "cat 0.363  mat 0.274  dog 0.274" in dist  # 3 rows per stage, a top-k=2 stage
    for command in ("next", "dist", "score", "quantize"):
        options = [line.split()[0] for line in cli([command, "--help"]).output.splitlines()
                   if line.lstrip().startswith("-")]
        assert ("-k," in options) == (command in ("next", "dist"))
        assert ("--top-k" in options) == (command == "dist")
