"""Issue 22's root causes in the Python API: the argument layer (validation.py), the text gate
(textgate.py), the strict JSON reader (jsonio.py), the output writer (output.py) and the
edges' own values (ports, timeouts, server URLs, API keys, token ids)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import logitscope
from logitscope.core.processors import SamplerConfig
from logitscope.errors import InputError


def _calls(text):
    """Every text-taking API call, with ``text`` in one text argument (its name second)."""
    return [
        ("tokenize", "text", lambda m: m.tokenize(text)), ("logits", "text", lambda m: m.logits(text)),
        ("next_token", "prompt", lambda m: m.next_token(text)), ("score", "text", lambda m: m.score(text)),
        ("score", "context", lambda m: m.score("the cat", context=text)),
        ("score_many", "texts[1]", lambda m: m.score_many(["the", text])),
        ("perplexity", "texts[0]", lambda m: m.perplexity(texts=[text])),
        ("chain", "prompt", lambda m: m.chain(text)), ("sample", "prompt", lambda m: m.sample(text, 10)),
        ("generate", "prompt", lambda m: m.generate(text, 2)),
        ("generate", "stop[0]", lambda m: m.generate("the", 2, stop=[text])),
        ("beam_search", "prompt", lambda m: m.beam_search(text, 2, 2)), ("tree", "prompt", lambda m: m.tree(text, 1)),
        ("rank", "prompt", lambda m: m.rank(text, [" cat"])), ("rank", "candidates[0]", lambda m: m.rank("the", [text])),
        ("context_lift", "question", lambda m: m.context_lift(text, " cat", ["the cat"])),
        ("context_lift", "contexts[0]", lambda m: m.context_lift("the", " cat", [text])),
        ("uncertain", "text", lambda m: m.uncertain(text)),
        ("heatmap_html", "text", lambda m: m.heatmap_html(text, "/nonexistent/x.html")),
        ("quantization_impact", "text", lambda m: m.quantization_impact(text)),
    ]


@pytest.mark.parametrize("index", range(len(_calls(""))), ids=[f"{c[0]}-{c[1]}" for c in _calls("")])
def test_a_lone_surrogate_is_refused_by_every_text_argument(index):
    """C: the text gate, before any tokenizer (a transformers tokenizer would raise TypeError)."""
    _, name, call = _calls("the \ud800 cat")[index]
    with pytest.raises(InputError, match=rf"^{re.escape(name)} holds a lone surrogate U\+D800 at character 4"):
        call(logitscope.load("toy"))


@pytest.mark.parametrize("value, kind", [(b"the cat", "bytes"), (["the"], "a list"), (5, "an int"), (None, "None")])
@pytest.mark.parametrize("index", range(len(_calls(""))), ids=[f"{c[0]}-{c[1]}" for c in _calls("")])
def test_a_text_of_the_wrong_type_says_its_type(index, value, kind):
    """I: bytes, a list or a number where a text goes: named with its type, never "the text is empty"."""
    method, name, call = _calls(value)[index]
    if name in ("context", "stop[0]") and value is None:
        pytest.skip(f"None is a valid {name} list item / default")
    with pytest.raises(InputError, match=rf"{re.escape(name)}=.* is {kind}, not a string"):
        call(logitscope.load("toy"))


@pytest.mark.parametrize("call, words", [
    (lambda m: m.next_token("the", top_k=1.5), "top_k=1.5 is a float, not a whole number"),
    (lambda m: m.score("the cat", window=2.5), "window=2.5 is a float, not a whole number"),
    (lambda m: m.score_many([None]), "texts[0]=None is None, not a string"),
    (lambda m: m.generate("the", stop=None), "stop=None is None, not a list of strings"),
    (lambda m: m.generate("the", max_new_tokens=2.5), "max_new_tokens=2.5 is a float, not a whole number"),
    (lambda m: m.sample("the", n=2.5), "n=2.5 is a float, not a whole number"),
    (lambda m: m.next_token("the", temperature="hot"), "temperature='hot' is a str, not a number"),
    (lambda m: m.next_token("the", bos="yes"), "bos='yes' is not a prefix policy"),
    (lambda m: m.tree("the", reuse_cache="no"), "reuse_cache='no' is a str, not True or False"),
    (lambda m: m.chain("the", SamplerConfig(top_k=2.5)), "top_k=2.5 is a float, not a whole number"),
    (lambda m: m.chain("the", SamplerConfig(top_p=float("nan"))), "top_p=nan is not a number"),
])
def test_arguments_of_the_wrong_type_are_input_errors(call, words):
    """I: never a TypeError from deep inside (a tokenizer, torch.topk, range())."""
    with pytest.raises(InputError, match=re.escape(words)):
        call(logitscope.load("toy"))


def test_numpy_scalars_are_numbers_and_results_stay_json():
    """H: numpy scalars in arguments are accepted as numbers and stored as Python numbers."""
    import numpy as np

    m = logitscope.load("toy")
    r = m.next_token("the", top_k=np.int64(3), temperature=np.float32(0.5))
    assert type(r.temperature) is float and len(r.top) == 3
    sampler = SamplerConfig(temperature=np.float64(0.7), top_k=np.int32(5), top_p=np.float32(0.9),
                            bias=((np.int64(3), np.float32(1.5)),))
    chain = m.chain("the", sampler)
    assert json.loads(chain.to_json())["sampler"] == {"temperature": 0.7, "top_k": 5, "top_p": pytest.approx(0.9),
                                                      "min_p": 0.0, "repetition_penalty": 1.0, "bias": [[3, 1.5]]}
    assert m.generate("the", np.int64(2)).to_json()


def test_an_iterable_of_texts_is_read_once_into_a_list():
    m = logitscope.load("toy")
    assert [r.text for r in m.score_many(t for t in ["the cat", "the dog"])] == ["the cat", "the dog"]


def test_a_jsonl_document_with_empty_text_is_counted(tmp_path):
    """H: {"text": ""} is a document that scores no token, counted and warned about, not dropped silently."""
    data = tmp_path / "docs.jsonl"
    data.write_text('{"text": "the cat sat"}\n{"text": ""}\n{"text": "the dog sat"}\n')
    source = logitscope.load("toy").perplexity(files=[str(data)]).sources[0]
    assert [d.index for d in source.documents] == [0, 1, 2] and source.num_unscored_documents == 1


@pytest.mark.parametrize("line, words", [
    ('{"question": "q", "question": "r", "choices": ["a", "b"], "answer": 0}', "the key 'question' appears twice"),
    ("[" * 100_000 + "]" * 100_000, "JSON nested deeper than 64 levels"),
    ('{"question": "q", "choices": ["a", "b"], "answer": NaN}', "NaN is not a JSON number"),
])
def test_datasets_read_through_the_strict_json_reader(tmp_path, line, words):
    """D, H: load_mcq, load_pairs and JSONL corpora refuse what json.loads would take silently or crash on."""
    from logitscope.confidence.truth import load_pairs
    from logitscope.evaluation.calibration import load_mcq

    data = tmp_path / "d.jsonl"
    data.write_text(line + "\n")
    for read in (lambda: load_mcq(data, skip_bad=False), lambda: load_pairs(data)):
        with pytest.raises(InputError) as info:
            read()
        assert words in str(info.value) + " ".join(info.value.problems)
    assert words in logitscope.load("toy").perplexity(files=[str(data)]).sources[0].error


def test_a_byte_order_mark_starts_no_line(tmp_path):
    """H: a BOM at the start of a JSONL dataset or a text file is the encoding's mark, not text."""
    from logitscope.core.corpus import numbered_lines, read_documents, read_text

    data = tmp_path / "d.jsonl"
    data.write_bytes(b'\xef\xbb\xbf{"text": "the cat"}\n')
    assert list(numbered_lines(data)) == [(1, '{"text": "the cat"}')]
    text = tmp_path / "t.txt"
    text.write_bytes(b"\xef\xbb\xbfthe cat")
    assert read_text(str(text)) == "the cat"
    assert "".join(next(read_documents(str(text))).blocks) == "the cat"


def test_a_failed_write_leaves_no_file_and_names_the_target(tmp_path, monkeypatch):
    """F: output.write_file: temporary file in the folder, renamed on success, removed on failure."""
    import errno

    from logitscope.core import output

    target = tmp_path / "x.html"
    target.write_text("the earlier good file")

    def half_then_full(tmp):
        tmp.write_text("half a pa")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(InputError, match=rf"^{re.escape(str(target))}: cannot write it \(no space left on device\)"):
        output.write_file(target, half_then_full)
    assert [p.name for p in tmp_path.iterdir()] == ["x.html"] and target.read_text() == "the earlier good file"
    assert output.write_text(target, "new") == target and target.read_text() == "new"


def test_a_cache_that_cannot_be_written_is_named_before_any_conversion(tmp_path, monkeypatch):
    """F: a read-only (or full) cache fails at once, naming LOGITSCOPE_CACHE, and leaves no .tmp folder."""
    import errno

    from logitscope import loading
    from logitscope.core import output

    monkeypatch.setenv("LOGITSCOPE_CACHE", str(tmp_path))
    real = Path.write_bytes

    def read_only(self, data):
        if self.name.endswith(".tmp"):
            raise OSError(errno.EROFS, "Read-only file system")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", read_only)
    monkeypatch.setattr(loading, "_quiet_transformers", lambda: pytest.fail("converted before checking the cache"))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(InputError, match="read-only file system.*set LOGITSCOPE_CACHE to a folder you can write to"):
        loading.convert_gguf(gguf)
    with pytest.raises(InputError, match="no space left.*LOGITSCOPE_CACHE"):
        with output.staged_folder(tmp_path / "converted" / "m", "LOGITSCOPE_CACHE") as folder:
            (folder / "model.safetensors").write_bytes(b"half")
            raise output.rust_io_error(RuntimeError("I/O error: No space left on device (os error 28)"))
    assert list((tmp_path / "converted").iterdir()) == []


def test_a_full_disk_leaves_no_half_copied_notebook(tmp_path, monkeypatch):
    """F: `workshop` on a full disk names the notebook it was writing (not the source) and leaves none half
    written, so a rerun is not blocked by a 0-byte copy."""
    import errno

    from logitscope.core import output
    from logitscope.workshop import copy_lessons

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(output.os, "replace", full)
    with pytest.raises(InputError, match=rf"{re.escape(str(tmp_path))}/01_logits_to_probabilities.ipynb: cannot write"):
        copy_lessons(tmp_path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert len(copy_lessons(tmp_path)) == 8


@pytest.mark.parametrize("call, words", [
    (lambda v: v.port("--port", 70000), "--port=70000 is out of range"),
    (lambda v: v.port("--port", -1), "--port=-1 is out of range"),
    (lambda v: v.timeout("LOGITSCOPE_TIMEOUT", float("inf")), "LOGITSCOPE_TIMEOUT=inf is out of range"),
    (lambda v: v.timeout("--timeout", float("nan")), "--timeout=nan is not a number"),
    (lambda v: v.server_url("http://127.0.0.1:abc/v1"), "is not a valid server URL"),
    (lambda v: v.server_url("http://u:pw@127.0.0.1:99999/v1"), "'http://u:***@127.0.0.1:99999/v1'"),
    (lambda v: v.api_key("--api-key", "   "), "the key is blank"),
    (lambda v: v.token_ids("ids", [0, -1], 13), "token id -1 in ids is outside the vocabulary"),
    (lambda v: v.token_ids("ids", [13], 13), "token id 13 in ids is outside the vocabulary"),
])
def test_the_edges_values_have_one_rule_each(call, words):
    """E: one function per kind of value, shared by the CLI, the environment and the HTTP routes."""
    from logitscope.core import validation

    with pytest.raises(InputError, match=re.escape(words)) as info:
        call(validation)
    assert "pw" not in str(info.value)


def test_remote_settings_are_checked_by_one_rule_however_they_arrive(monkeypatch):
    """E: the environment, ``load(url, remote={...})`` and the CLI options meet validation.remote_settings."""
    from logitscope.backends.remote import RemoteSettings

    monkeypatch.setenv("LOGITSCOPE_TIMEOUT", "inf")
    with pytest.raises(InputError, match=r"LOGITSCOPE_TIMEOUT=inf is out of range"):
        RemoteSettings.resolve()
    monkeypatch.setenv("LOGITSCOPE_TIMEOUT", "30")
    monkeypatch.setenv("LOGITSCOPE_API_KEY", "   ")  # blank: unset, as every LOGITSCOPE_* variable
    assert RemoteSettings.resolve().api_key is None and RemoteSettings.resolve(timeout=5).timeout == 5.0
    assert RemoteSettings.resolve(max_logprobs=5).max_logprobs == 5
    for bad, words in ((dict(timeout=-1.0), r"^timeout=-1\.0 is out of range"), (dict(timeout=float("nan")), "nan"),
                       (dict(concurrency=2.5), "concurrency=2.5 is a float"), (dict(api_key=" k "), "spaces")):
        with pytest.raises(InputError, match=words):
            RemoteSettings(**bad)


def test_loading_a_bad_server_url_is_an_input_error():
    with pytest.raises(InputError, match="is not a valid server URL"):
        logitscope.load("http://127.0.0.1:abc/v1")


def test_error_messages_cap_echoes_escape_controls_and_hide_passwords():
    """I: one gate for every message: a 50 MB word, an ESC, a URL's password."""
    err = InputError(f"word {'x' * 50_000_000!r} in http://me:pw@host/v1 \x1b[2J", hint="h")
    assert len(err.message) < 300 and "(+49,999,942 characters)" in err.message and "pw@" not in err.message
    assert "\x1b" not in err.message and "\\x1b[2J" in err.message
