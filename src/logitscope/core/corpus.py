"""Streaming corpus readers: files become documents, documents become text blocks.

Formats (``fmt``):

* ``"text"``  — the whole file is one document (read in blocks, never whole);
* ``"jsonl"`` — one JSON object per line, the document is its ``"text"`` field;
* ``"lines"`` — one document per non-blank line.

Documents are separate: no context crosses from one to the next. A long
document is handed out as a stream of blocks cut only where the text reads
``<non-space><space><letter>``: byte-level BPE tokenizers (GPT-2, SmolLM2, Llama 3…)
attach the space to the word after it and never merge across that point, so
tokenizing block by block gives the same ids as tokenizing the whole text.
Blocks also carry the counts lm-evaluation-harness uses for byte- and word-level
perplexity: UTF-8 bytes and ``len(re.split(r"\\s+", doc))`` words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

FORMATS = ("text", "jsonl", "lines")
BLOCK_CHARS = 1 << 16  # characters per block of a long document
SNIFF_BYTES = 8192  # bytes inspected to tell text from binary
_SAFE_CUT = re.compile(r"(?<=\S) (?=[^\W\d_])")  # a single space between a non-space and a letter
_WS_RUN = re.compile(r"\s+")


@dataclass(frozen=True)
class Document:
    """One document of a source: ``blocks`` yields its text in order (consumed once)."""

    source: str
    index: int  # 0-based position in its source
    blocks: Iterable[str]


def guess_format(path: str) -> str:
    """``jsonl`` for *.jsonl / *.ndjson files, ``text`` otherwise."""
    return "jsonl" if Path(path).suffix.lower() in (".jsonl", ".ndjson") else "text"


def check_file(path: str) -> Path:
    """The path, if it is a readable non-empty text file; else InputError naming it."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file", hint="check the path")
    if p.is_dir():
        raise InputError(f"{path}: is a directory", hint="give text files (e.g. a shell glob dir/*.txt)")
    with p.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if not head:
        raise InputError(f"{path}: the file is empty", hint="give a file with text in it")
    if b"\x00" in head:
        raise InputError(f"{path}: looks binary (NUL bytes)", hint="give a UTF-8 text, JSONL or one-per-line file")
    return p


def read_documents(path: str, fmt: str | None = None) -> Iterator[Document]:
    """Stream the documents of a file in ``fmt`` (default: guessed from the name)."""
    fmt = fmt or guess_format(path)
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    p = check_file(path)
    if fmt == "text":
        yield Document(path, 0, text_blocks(_read_chunks(p, path)))
        return
    for index, text in enumerate(_line_documents(p, path, fmt)):
        yield Document(path, index, text_blocks([text]))


def text_documents(texts: Iterable[str], source: str = "<text>") -> Iterator[Document]:
    """In-memory texts as documents (one per text)."""
    for index, text in enumerate(texts):
        yield Document(source, index, text_blocks([text]))


def text_blocks(chunks: Iterable[str], block_chars: int = BLOCK_CHARS) -> Iterator[str]:
    """Re-cut a stream of text chunks into blocks of about ``block_chars`` at safe cuts."""
    carry = ""
    for chunk in chunks:
        carry += chunk
        while len(carry) >= block_chars:
            cut = last_safe_cut(carry)
            if cut <= 0:
                break  # no safe point yet: keep reading
            yield carry[:cut]
            carry = carry[cut:]
    if carry:
        yield carry


def last_safe_cut(text: str) -> int:
    """Index of the last ``<non-space>| <letter>`` cut point in ``text``, or -1."""
    for look in (4096, len(text)):  # the tail almost always has one
        tail_start = max(0, len(text) - look)
        cuts = [m.start() for m in _SAFE_CUT.finditer(text, tail_start)]
        if cuts and cuts[-1] > 0:
            return cuts[-1]
    return -1


def count_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def count_whitespace_runs(text: str) -> int:
    """Whitespace runs in a block; a document has 1 + Σ runs lm-eval words (blocks never split a run)."""
    return len(_WS_RUN.findall(text))


def _read_chunks(p: Path, name: str) -> Iterator[str]:
    try:
        with p.open("r", encoding="utf-8", newline="") as fh:
            while chunk := fh.read(BLOCK_CHARS):
                yield chunk
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not UTF-8 text (byte {exc.start} of a block)",
                         hint="convert it to UTF-8 first") from exc


def _line_documents(p: Path, name: str, fmt: str) -> Iterator[str]:
    """Non-blank lines (``lines``) or the ``text`` field of each JSON line (``jsonl``)."""
    try:
        with p.open("r", encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                text = line.rstrip("\n") if fmt == "lines" else _jsonl_text(line, name, number)
                if text.strip():
                    yield text
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not UTF-8 text", hint="convert it to UTF-8 first") from exc


def _jsonl_text(line: str, name: str, number: int) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name}:{number}: not valid JSON ({exc.msg})",
                         hint="use --format lines or text for plain text") from exc
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise InputError(f"{name}:{number}: no string \"text\" field", hint='each line needs {"text": "..."}')
    return record["text"]
