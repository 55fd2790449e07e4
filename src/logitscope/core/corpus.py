"""Streaming corpus readers: files become documents, documents become text blocks.

Formats (``fmt``):

* ``"text"``  — the whole file is one document (read in blocks, never whole);
* ``"jsonl"`` — one JSON object per line (read by ``jsonio.loads``), the document is its
  ``"text"`` field (an empty one included);
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

import codecs
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .jsonio import loads
from .textgate import strip_bom

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


def check_file(path: str | Path) -> Path:
    """The path, if it is a readable non-empty text file; else InputError naming it.

    Every file logitscope reads (texts, corpora, datasets) passes through here, so a
    missing, unreadable, empty or binary file gets the same message everywhere. A path that
    is not a regular file (a pipe such as ``<(...)``, a FIFO) can be read only once: it is
    not opened here, and the one read (``open_checked``) checks its content.
    """
    p = _existing(path)
    if p.is_file():
        with open_checked(p):
            pass
    return p


def _existing(path: str | Path) -> Path:
    p, name = Path(path), str(path)
    if not p.exists():
        raise InputError(f"{name}: does not exist", hint="check the path")
    if p.is_dir():
        raise InputError(f"{name}: is a directory", hint="give a file; for many files use a shell glob such as dir/*.txt")
    return p


def open_checked(path: str | Path):
    """The file opened once for reading (binary), its head checked without consuming it: not
    empty, not binary. Every reader opens through here, so a pipe is read once."""
    p, name = _existing(path), str(path)
    fh = open_binary(p)
    try:
        head = _peek(fh, name)
        if not head:
            raise InputError(f"{name}: the file is empty", hint="give a file with text in it")
        if b"\x00" in head:
            raise InputError(f"{name}: looks binary (NUL bytes)", hint="give a UTF-8 text, JSONL or one-per-line file")
    except BaseException:
        fh.close()
        raise
    return fh


def _peek(fh, name: str) -> bytes:
    try:
        return fh.peek(SNIFF_BYTES)[:SNIFF_BYTES]
    except OSError as exc:
        raise os_input_error(name, exc) from exc


def open_binary(p: Path):
    """``open(p, "rb")`` with an OSError (permissions, a vanished file) turned into InputError."""
    try:
        return p.open("rb")
    except OSError as exc:
        raise os_input_error(str(p), exc) from exc


def read_or_fail(fh, name: str, size: int = -1) -> bytes:
    try:
        return fh.read(size)
    except OSError as exc:
        raise os_input_error(name, exc) from exc


def os_input_error(name: str, exc: OSError) -> InputError:
    """``FILE: why`` for an OSError while reading, with a hint that fits the cause."""
    why = (exc.strerror or type(exc).__name__).lower()
    hint = "check the file's permissions" if isinstance(exc, PermissionError) else "check the path"
    return InputError(f"{name}: cannot read it ({why})", hint=hint)


def not_utf8(name: str, byte: int, line: int | None = None) -> InputError:
    where = f"byte {byte:,}" + (f", line {line}" if line is not None else "")
    return InputError(f"{name}: not UTF-8 text (invalid byte at {where} of the file)",
                      hint="convert it to UTF-8 first, e.g. iconv -f latin1 -t utf-8")


def read_text(path: str) -> str:
    """A whole text file ('-' reads stdin), checked and decoded as strict UTF-8, read once;
    a byte-order mark at its start is dropped (``textgate.strip_bom``)."""
    if path == "-":
        import sys

        data, name = sys.stdin.buffer.read(), "<stdin>"
    else:
        with open_checked(path) as fh:
            data, name = read_or_fail(fh, path), path
    try:
        return strip_bom(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise not_utf8(name, exc.start, data.count(b"\n", 0, exc.start) + 1) from exc


def numbered_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) of every non-blank line, streamed.

    Lines end at "\n" only (JSONL's rule): U+2028, U+2029, \x0b and \x0c inside a
    line are text, not line breaks (``str.splitlines()`` would split there). A byte-order
    mark at the start of the file is dropped.
    """
    name, offset = str(path), 0
    with open_checked(path) as fh:
        for number, raw in enumerate(_lines_or_fail(fh, name), 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise not_utf8(name, offset + exc.start, number) from exc
            line = strip_bom(line) if number == 1 else line
            offset += len(raw)
            if line.strip():
                yield number, line.rstrip("\r\n")


def _lines_or_fail(fh, name: str) -> Iterator[bytes]:
    try:
        yield from fh  # binary files split at b"\n" only
    except OSError as exc:
        raise os_input_error(name, exc) from exc


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
    """Decoded blocks of a file (a byte-order mark at its start dropped); bad UTF-8 is reported
    at its byte offset in the file."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    fed = 0  # bytes handed to the decoder so far
    with open_checked(p) as fh:
        while True:
            data = read_or_fail(fh, name, BLOCK_CHARS)
            try:
                text = decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                pending = len(exc.object) - len(data)  # bytes held back from the previous block
                raise not_utf8(name, fed - pending + exc.start) from exc
            text = strip_bom(text) if fed == 0 else text  # the first block: a BOM is not text
            fed += len(data)
            if text:
                yield text
            if not data:
                return


def _line_documents(p: Path, name: str, fmt: str) -> Iterator[str]:
    """Non-blank lines (``lines``) or the ``text`` field of each JSON line (``jsonl``): an empty
    ``"text"`` is a document too (it scores no token and is counted as such; dropping it would
    shift the index of every later document)."""
    for number, line in numbered_lines(p):
        yield line if fmt == "lines" else _jsonl_text(line, name, number)


def _jsonl_text(line: str, name: str, number: int) -> str:
    record = loads(line, f"{name}:{number}")
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise InputError(f"{name}:{number}: no string \"text\" field", hint='each line needs {"text": "..."}')
    return record["text"]
