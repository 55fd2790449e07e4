"""The llama.cpp engine: a GGUF file run by llama.cpp (llama-cpp-python), quantized as stored.

The torch engine dequantizes a GGUF to float32 (the exact reference); this engine runs
the file's own quantized kernels, so its numbers are the ones llama.cpp users see, at
llama.cpp's speed and memory. It honours the whole contract with full-vocabulary logits;
it has no torch weights, so quantization analysis (which transforms them) needs the
torch engine.

    load_llamacpp(path, threads)   -> LlamaCppBackend      engine = "llamacpp", dtype = "Q4_1", ...

* Tokenization is the GGUF's own tokenizer (special tokens written in the text are parsed,
  as transformers does). llama.cpp gives no offsets: they come from the bytes of the token
  pieces (``piece_offsets``).
* Scoring feeds each sequence alone from an empty cache, n_batch tokens per decode, as
  llama-cpp-python's ``Llama.eval`` does (llama.cpp's numbers depend on the batching: see
  llamacpp_context), and reduces each decode's logits rows straight from llama.cpp's buffer.
* Decoding: a DecodeState's cache is a ``Sequence`` (its KV cells). ``extend`` feeds the new
  tokens only, ``rewind`` drops cells, ``fork`` copies them; the context holds one sequence
  at a time and saves the others' cells byte for byte. A state whose sequence was moved on
  by another state (``extend`` consumes it) recomputes what its cells lack.

Install the engine with ``bash scripts/install_llamacpp.sh`` (builds llama-cpp-python for this CPU).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import lru_cache

import numpy as np
import torch

from ..core.boundary import check_fits
from ..errors import InputError, ModelLoadError
from .base import Backend, Capabilities, DecodeState, PositionScores, Tokenized, check_start
from .llamacpp_context import LlamaCppContext, Sequence

INSTALL_HINT = "install the llama.cpp engine: bash scripts/install_llamacpp.sh (or pip install 'logitscope[llamacpp]')"
MAX_DEFAULT_CONTEXT = 8192  # KV-cache cells are allocated up front: longer contexts are asked for with n_ctx
REDUCE_FLOATS = 1 << 21  # logits reduced at once in scoring (rows x V): the size of the kept workspace


def load_llamacpp(path: str | os.PathLike, threads: int | None = None, n_ctx: int | None = None,
                  name: str | None = None, use_mmap: bool = False) -> "LlamaCppBackend":
    """A llama.cpp backend for the GGUF file ``path``: ``threads`` CPU threads (default: all cores),
    a context of ``n_ctx`` tokens (default: the model's own, at most MAX_DEFAULT_CONTEXT); the file
    is read into memory unless ``use_mmap`` (see ``LlamaCppContext``)."""
    try:
        import llama_cpp  # noqa: F401  (only to fail early with the install hint)
    except ImportError as exc:
        raise ModelLoadError("the llama.cpp engine needs llama-cpp-python, which is not installed",
                             hint=INSTALL_HINT) from exc
    path = os.fspath(path)
    if not (os.path.isfile(path) and path.lower().endswith(".gguf")):
        raise ModelLoadError(f"the llama.cpp engine runs .gguf files, and {path} is not one",
                             hint="use the torch engine (--engine torch) for Hugging Face directories, toy and remote models")
    context = LlamaCppContext(path, n_ctx or MAX_DEFAULT_CONTEXT, threads or os.cpu_count() or 1, use_mmap=use_mmap)
    return LlamaCppBackend(context, name or os.path.splitext(os.path.basename(path))[0])


class LlamaCppBackend(Backend):
    """The backend contract over one ``LlamaCppContext``."""

    engine = "llamacpp"

    def __init__(self, context: LlamaCppContext, name: str):
        lib, vocab = context.lib, context.vocab
        self.context = context
        self.name = name
        self.dtype = context.file_type()
        self.vocab_size = context.n_vocab
        self.bos_token_id = _token_or_none(lib.llama_vocab_bos(vocab))
        self.eos_token_id = _token_or_none(lib.llama_vocab_eos(vocab))
        self.adds_bos_by_default = bool(lib.llama_vocab_get_add_bos(vocab))
        # verify_rows stays off although extend_rows/rewind work: llama.cpp's logits depend on the
        # batching, so verifying drafts several rows at a time changes greedy text against llama.cpp's
        # own one-token decoding (3 of 5 prompts differed within 100 tokens on the bundled model)
        self.capabilities = Capabilities(full_vocab=True, context_length=context.n_ctx, kv_cache=True,
                                         weights=False, verify_rows=False)
        self.piece = lru_cache(maxsize=65536)(context.piece)
        self._workspace: Workspace | None = None
        self.token_text = lru_cache(maxsize=65536)(self._token_text)

    def __repr__(self) -> str:
        return f"LlamaCppBackend({self.name!r}, dtype={self.dtype!r}, n_ctx={self.context.n_ctx})"

    # -- tokenization -------------------------------------------------------------
    def tokenize(self, text: str) -> Tokenized:
        ids = self.context.tokenize(text.encode("utf-8")) if text else []
        return Tokenized(text, ids, piece_offsets(text, [self.piece(i) for i in ids]))

    def detokenize(self, ids: list[int]) -> str:
        return self.context.detokenize([int(i) for i in ids]).decode("utf-8", "replace")

    def _token_text(self, token_id: int) -> str:
        return self.piece(int(token_id)).decode("utf-8", "replace")

    @property
    def workspace(self) -> "Workspace":
        """Scoring's buffers, made on first use and kept (freeing and remaking them grows the heap)."""
        if self._workspace is None:
            self._workspace = Workspace(max(1, REDUCE_FLOATS // self.vocab_size), self.vocab_size)
        return self._workspace

    def _check_length(self, n_tokens: int) -> None:
        check_fits(self, n_tokens, "a sequence", "score it in windows")

    # -- scoring --------------------------------------------------------------------
    # Each sequence is fed alone from an empty cache, n_batch tokens per decode, as
    # llama-cpp-python's Llama.eval feeds it: the same numbers, bit for bit.
    def _rows(self, seq: list[int], out_from: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, logits (n, V)) of ``seq`` fed from an empty cache, rows >= out_from (row t predicts t+1)."""
        self.context.clear()
        return self.context.feed(seq, 0, out_from)

    def next_logits(self, prefixes: list[list[int]]) -> torch.Tensor:
        out = torch.empty(len(prefixes), self.vocab_size)  # (B, V)
        for b, prefix in enumerate(prefixes):
            if not prefix:
                raise InputError("cannot predict after an empty prefix", hint="start from at least one token")
            self._check_length(len(prefix))
            for _, rows in self._rows(prefix, len(prefix) - 1):
                out[b] = torch.from_numpy(rows[-1])
        return out

    def position_logits(self, ids: list[int]) -> torch.Tensor:
        """(T, V) float32 logits of every position: ``ids`` fed once from an empty cache, as scoring feeds them
        (the contract's default would feed one prefix per row)."""
        if not ids:
            return torch.empty(0, self.vocab_size)
        self._check_length(len(ids))
        out = torch.empty(len(ids), self.vocab_size)  # (T, V)
        for first, rows in self._rows(list(ids), 0):
            out[first:first + len(rows)] = torch.from_numpy(rows)
        return out

    def _reduce(self, sequences: list[list[int]], starts: list[int], reduce) -> list[list]:
        """``reduce(rows (n, V), targets (n,))`` over the scored rows of every sequence, in pieces of n_batch."""
        for seq, start in zip(sequences, starts):
            check_start(seq, start)
            self._check_length(len(seq))
        step = len(self.workspace.mask)  # rows reduced at once
        parts: list[list] = []
        for seq, start in zip(sequences, starts):
            pieces = []
            for first, rows in self._rows(seq[:-1] if start < len(seq) else [], start - 1):
                for a in range(0, len(rows), step):
                    block = rows[a:a + step]  # (n, V); row i predicts seq[first + a + i + 1]
                    targets = torch.tensor(seq[first + a + 1:first + a + 1 + len(block)])
                    pieces.append(reduce(torch.from_numpy(block), targets))
            parts.append(pieces)
        return parts

    def score_positions(self, sequences: list[list[int]], starts: list[int], top_k: int = 0) -> list[PositionScores]:
        empty = position_scores(torch.zeros(0, self.vocab_size), torch.zeros(0, dtype=torch.long), top_k)
        ws = self.workspace
        parts = self._reduce(sequences, starts, lambda rows, targets: position_scores(rows, targets, top_k, ws))
        return [PositionScores.concat(p) if p else empty for p in parts]

    def token_logprobs(self, sequences: list[list[int]], starts: list[int]) -> list[torch.Tensor]:
        ws = self.workspace
        parts = self._reduce(sequences, starts, lambda rows, targets: target_logprobs(rows, targets, ws))
        return [torch.cat(p) if p else torch.zeros(0, dtype=torch.float64) for p in parts]

    def nll_sums(self, sequences: list[list[int]], starts: list[int]) -> list[float]:
        return [-float(values.sum()) for values in self.token_logprobs(sequences, starts)]

    # -- incremental decoding ----------------------------------------------------------
    # A DecodeState's cache is a ``Sequence``; the context holds one at a time and saves
    # and restores the others' cells (llamacpp_context.LlamaCppContext.own).
    @staticmethod
    def _sequence(state: DecodeState) -> Sequence:
        return state.cache if isinstance(state.cache, Sequence) else Sequence()

    def prefill(self, ids: list[int]) -> DecodeState:
        if not ids:
            raise InputError("cannot decode from an empty prefix", hint="start from at least one token")
        return self._advance(Sequence(), (), ids, rows=1)[0]

    def extend(self, state: DecodeState, new_ids: list[int]) -> DecodeState:
        return self.extend_rows(state, new_ids, all_rows=False)[0]

    def extend_rows(self, state: DecodeState, new_ids: list[int],
                    all_rows: bool = True) -> tuple[DecodeState, torch.Tensor]:
        """As ``extend``, plus the logits after each new token: (T, V) float32 (only the last row
        unless ``all_rows``). Consumes ``state``'s sequence (``fork`` first to keep it)."""
        if not new_ids:
            return state, state.logits[None]
        return self._advance(self._sequence(state), state.ids, new_ids, rows=len(new_ids) if all_rows else 1)

    def _advance(self, sequence: Sequence, ids: tuple[int, ...], new_ids: list[int],
                 rows: int) -> tuple[DecodeState, torch.Tensor]:
        """Feed what ``sequence``'s cells lack of ids + new_ids; the logits of the last ``rows`` tokens (rows, V)."""
        ids = tuple(ids) + tuple(int(i) for i in new_ids)
        self._check_length(len(ids))
        cached = self._hold(sequence, ids, keep_back=rows)  # never reuse a row we must output
        logits = torch.empty(rows, self.vocab_size)  # (rows, V)
        skip = len(ids) - cached - rows  # fed rows before the ones we keep
        for first, view in self.context.feed(ids[cached:], cached, skip):
            logits[first - skip:first - skip + len(view)] = torch.from_numpy(view)
        sequence.ids = ids
        return DecodeState(ids, logits[-1], sequence), logits

    def _hold(self, sequence: Sequence, ids: tuple[int, ...], keep_back: int = 0) -> int:
        """Make the cache hold ``sequence``'s cells, cut to the longest prefix of ``ids`` they share
        (at most len(ids) - keep_back); returns that length."""
        self.context.own(sequence)
        cached = min(common_prefix(sequence.ids, ids), len(ids) - keep_back)
        self.context.truncate(cached)
        sequence.ids = ids[:cached]
        return cached

    def rewind(self, state: DecodeState, length: int, logits: torch.Tensor) -> DecodeState:
        """The state of the first ``length`` ids of ``state`` (consumes its sequence); ``logits`` (V,)
        are the logits after those ids, which the caller has (from ``extend_rows``)."""
        sequence = self._sequence(state)
        keep = min(common_prefix(sequence.ids, state.ids), length)
        if self.context.owns(sequence):
            self.context.truncate(keep)
        sequence.ids = sequence.ids[:keep]
        return DecodeState(state.ids[:length], logits, sequence)

    def fork(self, state: DecodeState) -> DecodeState:
        """An independent copy: its own saved copy of the cells (shared bytes when already saved)."""
        source = self._sequence(state)
        keep = common_prefix(source.ids, state.ids)
        saved = self.context.snapshot() if self.context.owns(source) else source.saved
        copy = Sequence(source.ids[:keep] if saved is not None else (), saved)
        return DecodeState(state.ids, state.logits.clone(), copy)

    def score_continuations(self, state: DecodeState, continuations: list[list[int]],
                            top_k: int = 0) -> list[PositionScores]:
        """Score continuations after the decoded prefix: each is fed after its cells, which stay."""
        if not isinstance(state.cache, Sequence) or not continuations:
            return super().score_continuations(state, continuations, top_k)
        for cont in continuations:
            if not cont:
                raise InputError("an empty continuation has nothing to score", hint="give at least one token")
            self._check_length(len(state.ids) + len(cont))
        n, sequence = len(state.ids), state.cache
        cached = self._hold(sequence, state.ids)
        for _ in self.context.feed(state.ids[cached:], cached, out_from=n):  # what the cells lack, no logits
            pass
        out = []
        for cont in continuations:
            rows = [state.logits.float()[None]] + [torch.from_numpy(v.copy())
                                                   for _, v in self.context.feed(cont[:-1], n)]
            self.context.truncate(n)
            out.append(PositionScores.from_logits(torch.cat(rows), torch.tensor(cont, dtype=torch.long), top_k))
        sequence.ids = state.ids
        return out


class Workspace:
    """Two float32 buffers and a mask of ``rows`` x V, reused by every ``position_scores`` of a call."""

    def __init__(self, rows: int, vocab: int):
        self.shifted, self.weights = torch.empty(rows, vocab), torch.empty(rows, vocab)
        self.mask = torch.empty(rows, vocab, dtype=torch.bool)


def position_scores(logits: torch.Tensor, targets: torch.Tensor, top_k: int,
                    workspace: Workspace | None = None) -> PositionScores:
    """``PositionScores.from_logits`` for finite logits (n, V), computed in a reused ``workspace``.

    The generic path, safe for ±inf, makes a dozen (n, V) temporaries; freed and made again
    block after block they grew a 1.5B model's resident memory by 0.5-1.4 GB (glibc keeps the
    holes). Here: z = logits - max, w = exp(z), log Z = max + log Σw, H = log Σw - Σwz / Σw,
    log p(target) = z[target] - log Σw, rank = 1 + #{z > z[target]}. Tested equal to the generic path."""
    n = len(logits)
    ws = workspace or Workspace(n, logits.shape[-1])
    peak = logits.amax(dim=-1, keepdim=True)  # (n, 1)
    z = torch.sub(logits, peak, out=ws.shifted[:n])  # (n, V), max 0
    w = torch.exp(z, out=ws.weights[:n])  # (n, V) unnormalised probabilities
    total = w.sum(dim=-1)  # (n,)
    log_total = total.log()  # log Z - max
    spread = torch.mul(w, z, out=w).sum(dim=-1)  # Σ w z
    chosen = logits.gather(-1, targets[:, None])  # (n, 1)
    # ranks and the top k from the logits themselves: subtracting the max can round two close logits equal
    top = logits.topk(min(top_k, logits.shape[-1]), dim=-1)  # (n, k), k may be 0
    return PositionScores(logprob=((chosen - peak)[:, 0] - log_total).double(),
                          rank=torch.gt(logits, chosen, out=ws.mask[:n]).sum(dim=-1) + 1,
                          entropy=(log_total - spread / total).clamp_min(0).double(), top_ids=top.indices,
                          top_logprobs=((top.values - peak) - log_total[:, None]).double())


def target_logprobs(logits: torch.Tensor, targets: torch.Tensor, workspace: Workspace | None = None) -> torch.Tensor:
    """log p(target) per row of raw logits (n, V): (n,) float64, computed in ``workspace``."""
    n = len(logits)
    ws = workspace or Workspace(n, logits.shape[-1])
    z = torch.sub(logits, logits.amax(dim=-1, keepdim=True), out=ws.shifted[:n])  # (n, V), max 0
    log_total = torch.exp(z, out=ws.weights[:n]).sum(dim=-1).log()  # log Z - max
    return (z.gather(-1, targets[:, None])[:, 0] - log_total).double()


def common_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """How many leading ids ``a`` and ``b`` share (O(1) when one is the other)."""
    if a is b:
        return len(a)
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    return next(i for i in range(n) if a[i] != b[i])


def piece_offsets(text: str, pieces: list[bytes]) -> list[tuple[int, int]]:
    """Character spans of tokens whose byte pieces spell ``text`` (llama.cpp gives no offsets).

    A piece that ends inside a multi-byte character spans the whole character; the space a
    SentencePiece tokenizer puts in front of the text is not in it and spans nothing."""
    data = text.encode("utf-8")
    joined = b"".join(pieces)
    skip = len(joined) - len(data) if joined.endswith(data) else 0  # a leading space the text lacks
    char_of = [i for i, ch in enumerate(text) for _ in range(len(ch.encode("utf-8")))]  # byte -> char
    spans, end = [], -skip
    for piece in pieces:
        start, end = end, end + len(piece)
        lo, hi = min(max(start, 0), len(data)), min(max(end, 0), len(data))
        first = char_of[lo] if lo < len(data) else len(text)
        spans.append((first, char_of[hi - 1] + 1 if hi > lo else first))
    return spans


def _token_or_none(token: int) -> int | None:
    return None if token < 0 else int(token)
