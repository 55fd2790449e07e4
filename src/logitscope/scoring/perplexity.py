"""Corpus perplexity over files, every convention side by side, in bounded memory.

Perplexity is token weighted: exp(Σ NLL / Σ scored tokens), sums in float64.
``window`` counts the ids of one window including its last target (the model is
fed window-1 of them); the windowing rules live in ``boundary``:

    strided   HF perplexity guide: windows of ``window`` ids every ``stride`` ids
              (default window/2); each target scored once, with the most context
              the window allows. With stride == window, consecutive windows share
              one id so no target is skipped (the guide itself skips one there).
    disjoint  lm-evaluation-harness loglikelihood_rolling (its max_length =
              window - 1): stride == window, but the last window is widened to a
              full window of left context (``boundary.plan_disjoint_windows``).
    llamacpp  llama.cpp's perplexity tool (n_ctx = window): disjoint chunks, BOS
              over each chunk's first id, only the second half of a chunk scored,
              a trailing partial chunk dropped.

Prefix (BOS) policy: ``bos=None`` takes each convention's own: strided and
disjoint prepend the prefix token once per document (every token scored, as
lm-eval does); llamacpp follows the tokenizer (llama.cpp's add_bos). The result
records the policy and the prefix token used.

Byte- and word-level numbers follow lm-eval: bits_per_byte = Σ NLL / (bytes·ln 2),
byte_perplexity = exp(Σ NLL / bytes), word_perplexity = exp(Σ NLL / words) with
words = len(re.split(r"\\s+", doc)). They need every token scored, so they are
None otherwise (llamacpp, or no prefix token).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..core import corpus, mathops
from ..backends.base import Backend
from ..core.boundary import (Window, llamacpp_chunk_ids, plan_disjoint_windows, plan_llamacpp_chunks, plan_windows,
                             prefix_ids, resolve_window)
from ..errors import InputError, check_range, check_sequence
from ..results import ResultMixin

CONVENTIONS = ("strided", "disjoint", "llamacpp")
CONVENTION_NOTES = {  # what each convention means, shown beside a side-by-side comparison
    "strided": "overlapping windows: every token scored once, with at least window-stride tokens of context",
    "disjoint": "lm-eval rolling windows: every token scored once, but a window's first tokens see little context",
    "llamacpp": "llama.cpp chunks: only the second half of each chunk is scored (≥ window/2 context), tail dropped",
}


# -- results ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Counts(ResultMixin):
    """Summed NLL (nats) over scored tokens, and the sizes it is normalised by."""

    nll: float
    num_scored: int
    num_tokens: int  # text tokens (the prefix token not counted)
    num_bytes: int  # UTF-8 bytes of the text
    num_words: int  # lm-eval words: len(re.split(r"\s+", text))
    all_tokens_scored: bool

    @property
    def perplexity(self) -> float | None:
        return mathops.perplexity(self.nll, self.num_scored) if self.num_scored else None

    @property
    def mean_nll(self) -> float | None:
        return self.nll / self.num_scored if self.num_scored else None

    @property
    def bits_per_byte(self) -> float | None:
        return mathops.bits_per_byte(self.nll, self.num_bytes) if self._byte_level else None

    @property
    def byte_perplexity(self) -> float | None:
        return math.exp(self.nll / self.num_bytes) if self._byte_level else None

    @property
    def word_perplexity(self) -> float | None:
        return math.exp(self.nll / self.num_words) if self._byte_level and self.num_words else None

    @property
    def _byte_level(self) -> bool:
        return self.all_tokens_scored and self.num_bytes > 0

    def to_dict(self) -> dict:
        out = {f: getattr(self, f) for f in ("nll", "num_scored", "num_tokens", "num_bytes", "num_words",
                                              "all_tokens_scored")}
        return out | {p: getattr(self, p) for p in ("perplexity", "mean_nll", "bits_per_byte",
                                                     "byte_perplexity", "word_perplexity")}

    @staticmethod
    def total(parts: Sequence["Counts"]) -> "Counts":
        return Counts(math.fsum(p.nll for p in parts), sum(p.num_scored for p in parts),
                      sum(p.num_tokens for p in parts), sum(p.num_bytes for p in parts),
                      sum(p.num_words for p in parts), all(p.all_tokens_scored for p in parts))


@dataclass(frozen=True)
class DocumentPerplexity(ResultMixin):
    source: str
    index: int
    counts: Counts
    num_windows: int

    def to_dict(self) -> dict:
        return {"source": self.source, "index": self.index, "num_windows": self.num_windows} | self.counts.to_dict()


@dataclass(frozen=True)
class SourcePerplexity(ResultMixin):
    """One file (or the in-memory texts): totals over its documents, or the error that stopped it."""

    source: str
    counts: Counts | None
    documents: tuple[DocumentPerplexity, ...] = ()
    error: str | None = None

    @property
    def mean_document_perplexity(self) -> float | None:
        """Unweighted mean of per-document perplexities (evaluate's "mean_perplexity"); not corpus perplexity."""
        return _mean_document_perplexity(self.documents)

    @property
    def num_unscored_documents(self) -> int:
        """Documents of which no token was scored: empty ones, or shorter than one llamacpp chunk."""
        return sum(1 for d in self.documents if not d.counts.num_scored)

    def to_dict(self) -> dict:
        if self.error:
            return {"source": self.source, "error": self.error}
        return ({"source": self.source, "num_documents": len(self.documents),
                 "num_unscored_documents": self.num_unscored_documents,
                 "mean_document_perplexity": self.mean_document_perplexity} | self.counts.to_dict()
                | {"documents": [d.to_dict() for d in self.documents]})


@dataclass(frozen=True)
class PerplexityResult(ResultMixin):
    """Corpus perplexity under one convention, per source and in total."""

    model: str
    convention: str
    window: int
    stride: int | None  # strided only
    bos: str  # the prefix policy applied: "always" | "never" | "auto"
    prefix_token_id: int | None  # the token put before each document / chunk, if any
    sources: tuple[SourcePerplexity, ...]

    @property
    def scored_sources(self) -> tuple[SourcePerplexity, ...]:
        return tuple(s for s in self.sources if s.error is None)

    @property
    def errors(self) -> tuple[SourcePerplexity, ...]:
        return tuple(s for s in self.sources if s.error is not None)

    @property
    def warnings(self) -> tuple[str, ...]:
        """One line per source where some documents scored no token (counted in its JSON too)."""
        return tuple(f"{s.source}: {s.num_unscored_documents} of {len(s.documents)} documents scored no token "
                     f"(empty, or shorter than one {self.window}-token {self.convention} window)"
                     for s in self.scored_sources if s.num_unscored_documents)

    @property
    def nothing_scored(self) -> str | None:
        """Why a run whose readable files scored no token at all is not a success (else None)."""
        total = self.total
        if total is None or total.num_scored:
            return None
        longest = max(d.counts.num_tokens for s in self.scored_sources for d in s.documents)
        return str(InputError(f"no token scored: the longest document is {longest} tokens, shorter than one "
                              f"{self.window}-token {self.convention} window",
                              hint="use a smaller --window or another --convention"))

    @property
    def total(self) -> Counts | None:
        ok = self.scored_sources
        return Counts.total([s.counts for s in ok]) if ok else None

    @property
    def mean_document_perplexity(self) -> float | None:
        return _mean_document_perplexity([d for s in self.scored_sources for d in s.documents])

    def to_dict(self) -> dict:
        total = self.total
        return {"model": self.model, "convention": self.convention, "window": self.window, "stride": self.stride,
                "bos": self.bos, "prefix_token_id": self.prefix_token_id,
                "total": None if total is None else total.to_dict(),
                "mean_document_perplexity": self.mean_document_perplexity,
                "sources": [s.to_dict() for s in self.sources]}


@dataclass(frozen=True)
class PerplexityComparison(ResultMixin):
    """Several runs side by side: every model under every convention, models outer."""

    conventions: tuple[str, ...]
    results: tuple[PerplexityResult, ...]

    @property
    def errors(self) -> tuple[str, ...]:
        """Every bad source's error once, not once per model and convention; a run that scored nothing too."""
        return tuple(dict.fromkeys([s.error for r in self.results for s in r.errors] +
                                   [r.nothing_scored for r in self.results if r.nothing_scored]))

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(w for r in self.results for w in r.warnings))

    def convention_notes(self) -> tuple[tuple[str, str], ...]:
        """(convention, what it means) for each compared convention; none when only one is compared."""
        return tuple((c, CONVENTION_NOTES[c]) for c in self.conventions) if len(self.conventions) > 1 else ()

    def to_dict(self) -> dict:
        return {"conventions": list(self.conventions), "results": [r.to_dict() for r in self.results],
                "errors": list(self.errors)}

    def _rows(self) -> list[dict]:
        return [{"model": r.model, "convention": r.convention, "window": r.window, "stride": r.stride, "bos": r.bos}
                | (r.total.to_dict() if r.total is not None else {}) for r in self.results]


def _mean_document_perplexity(docs: Iterable[DocumentPerplexity]) -> float | None:
    values = [d.counts.perplexity for d in docs if d.counts.num_scored]
    return math.fsum(values) / len(values) if values else None


# -- windowing ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Windowing:
    """How one perplexity run cuts documents into windows: the convention, its sizes, the prefix token."""

    convention: str
    window: int
    stride: int | None
    prefix: int | None  # prefix token id, None when no prefix is used
    bos: str

    def plan(self, n_ids: int) -> list[Window]:
        """Windows over a document of ``n_ids`` ids (prefix included); targets start at id 1."""
        if self.convention == "strided":
            return plan_windows(n_ids, 1, self.window, self.stride) if n_ids > 1 else []
        if self.convention == "disjoint":
            return plan_disjoint_windows(n_ids, 1, self.window) if n_ids > 1 else []
        return plan_llamacpp_chunks(n_ids, self.window)

    def window_ids(self, ids: np.ndarray, w: Window) -> list[int]:
        seq = ids[w.begin:w.end].tolist()
        return llamacpp_chunk_ids(seq, self.prefix) if self.convention == "llamacpp" else seq


def make_windowing(backend: Backend, convention: str = "strided", window: int | None = None,
                  stride: int | None = None, bos: str | bool | None = None) -> Windowing:
    """Check the options against the model and resolve defaults (window, stride, bos)."""
    if convention not in CONVENTIONS:
        raise InputError(f"unknown convention {convention!r}", hint=f"use one of {', '.join(CONVENTIONS)}")
    window = resolve_window(backend, window)
    if convention == "llamacpp" and window < 3:
        raise InputError(f"window={window} is too small for the llamacpp convention", param="window",
                         hint="a llamacpp chunk scores only the targets after its first half (window - window//2 - 1 "
                              "of them, none for 2): use a window of 3 or more")
    if stride is not None and convention != "strided":
        raise InputError(f"stride applies to the strided convention, not {convention!r}",
                         hint="drop --stride or use --convention strided")
    if convention == "strided":
        stride = check_range("stride", window // 2 if stride is None else stride, 1, window)
    bos = ("auto" if convention == "llamacpp" else True) if bos is None else bos
    lead = prefix_ids(backend, bos)
    prefix = lead[0] if lead else None
    label = {True: "always", False: "never"}.get(bos, "auto") if isinstance(bos, bool) else bos
    return Windowing(convention, window, stride, prefix, label)


# -- engine ----------------------------------------------------------------------------------
@dataclass
class _OpenDocument:
    """A tokenized document whose windows are being scored."""

    doc: corpus.Document
    ids: np.ndarray  # (n_ids,) int64, prefix included
    num_bytes: int
    num_words: int
    windows_left: int
    num_windows: int
    nll: float = 0.0
    num_scored: int = 0


def tokenize_document(backend: Backend, doc: corpus.Document, prefix: int | None) -> tuple[np.ndarray, int, int]:
    """(ids with the prefix in front, UTF-8 bytes, lm-eval words) of a streamed document."""
    parts, num_bytes, runs = [np.array([] if prefix is None else [prefix], dtype=np.int64)], 0, 0
    for block in doc.blocks:
        parts.append(np.asarray(backend.tokenize(block).ids, dtype=np.int64))  # block-local, then dropped
        num_bytes += corpus.count_bytes(block)
        runs += corpus.count_whitespace_runs(block)
    return np.concatenate(parts), num_bytes, runs + 1


def score_documents(backend: Backend, docs: Iterable[corpus.Document], windowing: Windowing,
                    progress: Callable[[int], None] | None = None) -> Iterator[DocumentPerplexity]:
    """Score documents in order, batching windows across documents ``backend.group_tokens`` ids at a time
    (bounds memory, keeps batches full; a remote backend asks for more in flight)."""
    group: list[tuple[_OpenDocument, list[int], int]] = []
    size, limit = 0, backend.group_tokens
    for doc in docs:
        ids, num_bytes, num_words = tokenize_document(backend, doc, windowing.prefix)
        windows = windowing.plan(len(ids))
        open_doc = _OpenDocument(doc, ids, num_bytes, num_words, len(windows), len(windows))
        if not windows:
            yield _finish(open_doc, windowing)
        for w in windows:
            group.append((open_doc, windowing.window_ids(ids, w), w.first_target - w.begin))
            size += w.end - w.begin
            if size >= limit:
                yield from _score_group(backend, group, windowing, progress)
                group, size = [], 0
    yield from _score_group(backend, group, windowing, progress)


def _score_group(backend, group, windowing, progress) -> Iterator[DocumentPerplexity]:
    """Score one group of windows; yield the documents whose last window was in it."""
    if not group:
        return
    sums = backend.nll_sums([seq for _, seq, _ in group], [start for _, _, start in group])
    for (open_doc, seq, start), nll in zip(group, sums):
        open_doc.nll += nll
        open_doc.num_scored += len(seq) - start
        open_doc.windows_left -= 1
        if open_doc.windows_left == 0:
            yield _finish(open_doc, windowing)
    if progress is not None:
        progress(sum(len(seq) - start for _, seq, start in group))


def _finish(d: _OpenDocument, windowing: Windowing) -> DocumentPerplexity:
    num_tokens = len(d.ids) - (windowing.prefix is not None)
    counts = Counts(d.nll, d.num_scored, num_tokens, d.num_bytes, d.num_words,
                    all_tokens_scored=d.num_scored == num_tokens)
    return DocumentPerplexity(d.doc.source, d.doc.index, counts, d.num_windows)


# -- entry points ------------------------------------------------------------------------------
def score_source(backend: Backend, source: str, docs: Iterable[corpus.Document], windowing: Windowing,
                 progress: Callable[[int], None] | None = None) -> SourcePerplexity:
    """Totals for one source; an InputError while reading it becomes the source's error."""
    try:
        documents = tuple(sorted(score_documents(backend, docs, windowing, progress), key=lambda d: d.index))
    except InputError as exc:
        return SourcePerplexity(source, None, error=str(exc))
    if not any(d.counts.num_tokens for d in documents):
        return SourcePerplexity(source, None, error=str(InputError(f"{source}: contains no text",
                                                                    hint="give a file with non-blank text")))
    return SourcePerplexity(source, Counts.total([d.counts for d in documents]), documents)


def perplexity(backend: Backend, texts: Sequence[str] | None = None, files: Sequence[str] | None = None,
               convention: str = "strided", window: int | None = None, stride: int | None = None,
               bos: str | bool | None = None, fmt: str | None = None,
               progress: Callable[[int], None] | None = None) -> PerplexityResult:
    """Perplexity of ``texts`` (one source, each text a document) or of ``files`` (one
    source per file, read as ``fmt``). A bad file is reported in its source's
    ``error`` while the other files are still scored."""
    if (texts is None) == (files is None):
        raise InputError("give either texts or files", hint="e.g. perplexity(files=['corpus.txt'])")
    check_sequence("texts" if files is None else "files", texts if files is None else files)
    windowing = make_windowing(backend, convention, window, stride, bos)
    if texts is not None:
        sources = [score_source(backend, "<texts>", corpus.text_documents(texts), windowing, progress)]
    else:
        sources = [score_source(backend, f, corpus.read_documents(f, fmt), windowing, progress) for f in files]
    return PerplexityResult(backend.name, windowing.convention, windowing.window, windowing.stride, windowing.bos,
                            windowing.prefix, tuple(sources))


def compare(backends: Iterable[Backend], texts: Sequence[str] | None = None, files: Sequence[str] | None = None,
            conventions: Sequence[str] = CONVENTIONS, window: int | None = None, stride: int | None = None,
            bos: str | bool | None = None, fmt: str | None = None,
            progress: Callable[[int], None] | None = None) -> PerplexityComparison:
    """``perplexity`` for every backend under every convention (backends are consumed one at
    a time, so a generator that loads each model keeps one in memory). With several
    conventions, ``stride`` applies to the strided one only."""
    conventions = tuple(conventions)
    for conv in conventions:
        if conv not in CONVENTIONS:
            raise InputError(f"unknown convention {conv!r}", hint=f"use one of {', '.join(CONVENTIONS)}")
    results = []
    for backend in backends:
        for conv in conventions:
            run_stride = stride if conv == "strided" or len(conventions) == 1 else None
            results.append(perplexity(backend, texts, files, conv, window, run_stride, bos, fmt, progress))
    return PerplexityComparison(conventions, tuple(results))


def expected_scored(convention: str, n_ids: int, window: int) -> int:
    """Scored targets of a document of ``n_ids`` ids (prefix included) under a convention."""
    if convention == "llamacpp":
        return (n_ids // window) * (window - window // 2 - 1)
    return max(n_ids - 1, 0)
