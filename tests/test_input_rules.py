"""Windows and boundaries, lift, CLI options, environment variables, bare strings in the
API and the streamed text of `generate`: one rule each, said plainly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import logitscope
from logitscope import settings
from logitscope.errors import InputError
from logitscope.sampling.generation import _Stream


# -- windows and boundaries ------------------------------------------------------------------------
def test_a_context_longer_than_the_window_says_so(cli):
    res = cli(["score", " cat", "-c", "the cat sat " * 300, "-m", "toy"])
    assert res.exit_code == 2
    assert "the context is 901 tokens (prefix token included) and the window is 512" in res.stderr
    assert "shorten the context to under 512 tokens" in res.stderr and "position" not in res.stderr


@pytest.mark.parametrize("window", ["0", "1", "513"])
def test_one_window_rule_for_score_and_perplexity(cli, tmp_path, window):
    f = tmp_path / "t.txt"
    f.write_text("the cat sat on the mat")
    a = cli(["score", "the cat sat", "-m", "toy", "--window", window])
    b = cli(["perplexity", str(f), "-m", "toy", "--window", window])
    assert a.exit_code == b.exit_code == 2
    assert a.stderr == b.stderr == f"error: --window={window} is out of range (hint: --window must be in [2, 512])\n"


def test_llamacpp_run_that_scores_nothing_fails(cli, tmp_path):
    f = tmp_path / "short.txt"
    f.write_text("the cat sat on the mat")
    res = cli(["perplexity", str(f), "-m", "toy", "--convention", "llamacpp"])
    assert res.exit_code == 2
    assert "error: no token scored: the longest document is 6 tokens, shorter than one 512-token llamacpp" \
        in res.stderr


def test_llamacpp_documents_shorter_than_a_chunk_are_counted(cli, tmp_path):
    f = tmp_path / "docs.txt"
    f.write_text("the cat sat on the mat the cat sat\nthe cat\n")
    res = cli(["perplexity", str(f), "-m", "toy", "--convention", "llamacpp", "--format", "lines",
               "--window", "6", "--json"])
    assert res.exit_code == 0
    assert json.loads(res.stdout)["sources"][0]["num_unscored_documents"] == 1
    assert "warning: " in res.stderr and "1 of 2 documents scored no token" in res.stderr


# -- lift ----------------------------------------------------------------------------------------------
def test_lift_substitutes_the_template_once():
    """Braces inside a context or question are text (chained str.replace substituted them too)."""
    from logitscope.confidence.lift import _fill

    assert _fill("{context}\n\n{question}", "a {question} b", "Q {context}") == "a {question} b\n\nQ {context}"


def test_lift_reports_a_context_that_does_not_fit_and_scores_the_rest(cli):
    res = cli(["lift", "-q", "the", "-a", " cat", "-c", "the cat sat " * 300, "-c", "the cat", "-m", "toy",
               "--json"])
    assert res.exit_code == 2
    data = json.loads(res.stdout)
    assert [c["context"] for c in data["contexts"]] == ["the cat"] and len(data["skipped"]) == 1
    assert res.stderr.startswith("error: context 0 + question + answer is 903 tokens")


# -- CLI options -----------------------------------------------------------------------------------------
def test_model_from_the_environment_is_never_split_at_spaces(cli, tmp_path):
    spec = str(tmp_path / "my models")
    for args in (["perplexity", str(Path(__file__))], ["next", "the"]):
        res = cli(args, env={"LOGITSCOPE_MODEL": spec})
        assert res.exit_code == 2 and f"model path {spec!r} does not exist" in res.stderr, res.stderr


def test_every_model_is_checked_before_any_is_scored(cli, tmp_path, monkeypatch):
    f = tmp_path / "t.txt"
    f.write_text("the cat sat")
    monkeypatch.setattr(logitscope, "load", lambda *a, **k: pytest.fail("loaded a model before checking -m nope"))
    res = cli(["perplexity", str(f), "-m", "toy", "-m", "nope"])
    assert res.exit_code == 2 and "'nope' does not exist" in res.stderr and res.stdout == ""


@pytest.mark.parametrize("args", [["next", "the", "-m", ""], ["perplexity", __file__, "-m", ""]])
def test_an_empty_model_name_is_an_error(cli, args):
    res = cli(args)
    assert res.exit_code == 2 and "--model '': empty model name" in res.stderr


def test_demo_runs_on_the_toy_model(cli):
    res = cli(["demo", "-m", "toy"])
    assert res.exit_code == 0 and "scored 12 tokens" in res.stdout


def test_rank_by_pmi_without_pmi_is_refused(cli):
    res = cli(["rank", "the", "-c", " cat", "--by", "pmi", "--no-pmi", "-m", "toy"])
    assert res.exit_code == 2 and "--by pmi needs the unconditional pass" in res.stderr


# -- environment variables ------------------------------------------------------------------------------------
@pytest.fixture
def clean_env(monkeypatch):
    for name in ("LOGITSCOPE_MODEL", "LOGITSCOPE_CACHE", "LOGITSCOPE_THREADS", "LOGITSCOPE_DEVICE",
                 "LOGITSCOPE_FAST_PATHS", "LOGITSCOPE_FAST_FORWARD", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("name, value, expected", [
    ("LOGITSCOPE_THREADS", "4", 4), ("LOGITSCOPE_THREADS", " ", None), ("LOGITSCOPE_DEVICE", "cuda:1", "cuda:1"),
    ("LOGITSCOPE_MODEL", "/a/my models", "/a/my models"), ("LOGITSCOPE_FAST_PATHS", "0", False),
])
def test_settings_read_good_values(clean_env, name, value, expected):
    clean_env.setenv(name, value)
    read = {"LOGITSCOPE_THREADS": settings.threads, "LOGITSCOPE_DEVICE": settings.device,
            "LOGITSCOPE_MODEL": settings.default_model, "LOGITSCOPE_FAST_PATHS": settings.fast_paths}[name]
    assert read() == expected


def test_old_fast_forward_name_still_works_with_a_warning(clean_env):
    clean_env.delenv("LOGITSCOPE_FAST_FORWARD", raising=False)
    clean_env.setenv("LOGITSCOPE_FAST_FORWARD", "0")
    with pytest.warns(FutureWarning, match="LOGITSCOPE_FAST_PATHS"):
        assert settings.fast_paths() is False
    clean_env.setenv("LOGITSCOPE_FAST_PATHS", "1")  # the new name wins, silently
    assert settings.fast_paths() is True


@pytest.mark.parametrize("name, value, words", [
    ("LOGITSCOPE_THREADS", "abc", "is not a whole number >= 1"), ("LOGITSCOPE_THREADS", "0", "whole number"),
    ("LOGITSCOPE_THREADS", "-2", "whole number"), ("LOGITSCOPE_DEVICE", "garbage", "is not a device"),
    ("LOGITSCOPE_FAST_PATHS", "off", "neither 0 nor 1"),
])
def test_settings_name_the_variable_and_value(clean_env, name, value, words):
    clean_env.setenv(name, value)
    with pytest.raises(InputError) as info:
        settings.check_environment()
    assert info.value.message.startswith(f"{name}={value!r}: ") and words in info.value.message
    assert info.value.hint


def test_cache_pointing_at_a_file_fails_before_any_conversion(clean_env, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    clean_env.setenv("LOGITSCOPE_CACHE", str(f))
    with pytest.raises(InputError, match="LOGITSCOPE_CACHE=.*is a file, not a directory"):
        logitscope.loading.cache_dir()


def test_cuda_asked_for_without_cuda(clean_env, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    clean_env.setenv("LOGITSCOPE_DEVICE", "cuda")
    with pytest.raises(InputError, match="CUDA is not available"):
        settings.check_environment()


# -- bare strings where a sequence is expected ------------------------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda m: m.perplexity(texts="the cat sat on the mat"),
    lambda m: m.perplexity(files="notes.txt"),
    lambda m: m.score_many("the cat"),
    lambda m: m.score_many(["the cat"], contexts="the"),
    lambda m: m.rank("the", " cat"),
    lambda m: m.context_lift("the", " cat", "the cat"),
    lambda m: m.generate("the", 2, stop="."),
])
def test_a_bare_string_for_a_sequence_is_an_input_error(call):
    with pytest.raises(InputError, match="not one string"):
        call(logitscope.load("toy"))


# -- streaming generate ------------------------------------------------------------------------------------------
class _Bytes:
    """A detokenizer over byte tokens: a character split between tokens shows as U+FFFD."""

    eos_token_id = None

    def detokenize(self, ids):
        return bytes(ids).decode("utf-8", "replace")


def test_streaming_flushes_a_held_back_partial_character():
    shown = []
    stream = _Stream(_Bytes(), (), shown.append)
    for b in " 😀".encode()[:3]:  # the space and 2 of the emoji's 4 bytes: generation stopped there
        stream.push(b)
    assert "".join(shown) == " "  # held back while the character may still complete
    stream.finish()
    assert "".join(shown) == _Bytes().detokenize(list(" 😀".encode()[:3])) == " \ufffd"


def test_streaming_then_completing_the_character_shows_it_once():
    shown = []
    stream = _Stream(_Bytes(), (), shown.append)
    for b in " 😀".encode():
        stream.push(b)
    stream.finish()
    assert "".join(shown) == " 😀"


def test_streamed_text_equals_the_result_text(cli):
    res = cli(["generate", "the", "-m", "toy", "-n", "4", "-t", "0"])
    data = json.loads(cli(["generate", "the", "-m", "toy", "-n", "4", "-t", "0", "--json"]).stdout)
    assert res.stdout.startswith(data["text"] + "\n[")



def test_perplexity_keeps_the_good_file_when_another_is_unreadable(cli, tmp_path, monkeypatch):
    good, locked = tmp_path / "good.txt", tmp_path / "locked.txt"
    good.write_text("the cat sat on the mat")
    locked.write_text("the cat sat")
    real_open = Path.open

    def guarded(self, *args, **kwargs):  # root reads chmod-000 files, so refuse at open()
        if self.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", guarded)
    res = cli(["perplexity", str(good), str(locked), "-m", "toy", "--json"])
    assert res.exit_code == 2 and json.loads(res.stdout)["total"]["num_scored"] == 6
    assert res.stderr == (f"error: {locked}: cannot read it (permission denied) "
                          "(hint: check the file's permissions)\n")
