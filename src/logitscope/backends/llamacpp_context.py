"""One llama.cpp model and context: what ``backends/llamacpp.py`` runs on.

    LlamaCppContext(path, n_ctx, threads)
        .feed(tokens, start, out_from)   decode tokens at positions start, start+1, ... in n_batch
                                         chunks, as llama-cpp-python's ``Llama.eval`` does; yield
                                         the logits rows from ``out_from`` on
        .own(sequence) / .clear()        whose cells the KV cache holds
        .tokenize / .piece / .detokenize the GGUF's own tokenizer, in bytes

Why one sequence at a time. llama.cpp's logits depend on how tokens were batched and where
their cells sit in the KV cache: on the bundled Q4_1 model, the same token's top-10
log-probs moved by up to 0.6 nats between a one-batch prompt and the same prompt fed in
pieces, or with another sequence's cells in a shared cache (measured; benchmarks/generation.md).
So the cache holds one sequence, from cell 0, fed the way ``Llama.eval`` feeds it, and
scoring a sequence gives exactly llama-cpp-python's numbers. Each decode state owns a
``Sequence``; when another one needs the cache, the owner's cells are copied to host memory
(``llama_state_seq_get_data``) and put back byte for byte when it is used again, so a state's
logits never depend on what ran in between (beam search, the tree, the server's requests).

Logits are a zero-copy view into llama.cpp's output buffer, valid until the next decode:
``feed`` yields it and the caller reduces or copies it first.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import sys
import weakref
from collections.abc import Iterator, Sequence as Seq

import numpy as np

from ..errors import InputError, ModelLoadError

_initialised = False


def _lib():
    """The llama_cpp module (imported on first use; backend initialised once per process).

    llama.cpp's log lines go through llama-cpp-python's logger, which prints every line while
    its level is unset: like ``Llama(verbose=False)``, keep errors only unless the user set a level."""
    global _initialised
    import llama_cpp

    if not _initialised:
        logger = logging.getLogger("llama-cpp-python")
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.ERROR)
        llama_cpp.llama_log_set(_log_callback(llama_cpp, logger), ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
        atexit.register(_close_null_files)
        _initialised = True
    return llama_cpp


# ggml.h's enum ggml_log_level as built here: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continues the
# previous line). llama-cpp-python's own callback still maps the older enum (INFO 1 ... ERROR 3), so llama.cpp's
# warnings ("control-looking token ...", "using full-size SWA cache") passed its ERROR level and were printed.
_LEVELS = {0: logging.INFO, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}


def _log_callback(llama_cpp, logger: logging.Logger):
    """llama.cpp's log lines to stderr when the logger's level lets them through; continued lines (5)
    take the previous line's level."""
    last = [logging.INFO]

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data) -> None:
        if level in _LEVELS:
            last[0] = _LEVELS[level]
        if logger.isEnabledFor(last[0]):
            print(text.decode("utf-8", "replace"), end="", flush=True, file=sys.stderr)

    _callbacks.append(callback)  # ctypes callbacks must outlive every call from C
    return callback


_callbacks: list = []


def _close_null_files() -> None:
    """llama-cpp-python opens two os.devnull files at import and never closes them: a
    ResourceWarning printed at every exit of a CLI command otherwise."""
    from llama_cpp import _utils

    for name in ("outnull_file", "errnull_file"):
        handle = getattr(_utils, name, None)
        if handle is not None and not handle.closed:
            handle.close()


class Sequence:
    """The KV cells of one decode state: live in the context while it owns it, else saved in host memory."""

    __slots__ = ("ids", "saved", "__weakref__")

    def __init__(self, ids: tuple[int, ...] = (), saved: bytes | None = None):
        self.ids = ids  # the ids whose keys and values the cells hold, in order from position 0
        self.saved = saved  # those cells (llama_state_seq_get_data), while another Sequence owns the cache


class _Batch:
    """A llama_batch whose arrays are numpy arrays: filled with slice assignments, passed by pointer."""

    def __init__(self, lib, size: int):
        self.token = np.zeros(size, np.int32)
        self.pos = np.zeros(size, np.int32)
        self.n_seq_id = np.ones(size, np.int32)
        self.seq_zero = np.zeros(1, np.int32)  # every row's seq_id points here: sequence 0
        self.seq_ptrs = np.full(size, self.seq_zero.ctypes.data, np.uintp)
        self.logits = np.zeros(size, np.int8)
        b = self.struct = lib.llama_batch()
        b.token = self.token.ctypes.data_as(ctypes.POINTER(lib.llama_token))
        b.pos = self.pos.ctypes.data_as(ctypes.POINTER(lib.llama_pos))
        b.n_seq_id = self.n_seq_id.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))
        b.seq_id = self.seq_ptrs.ctypes.data_as(ctypes.POINTER(ctypes.POINTER(lib.llama_seq_id)))
        b.logits = self.logits.ctypes.data_as(ctypes.POINTER(ctypes.c_int8))

    def fill(self, tokens: np.ndarray, start: int, first_output: int) -> int:
        """Rows for ``tokens`` at positions start, start+1, ...; logits from row ``first_output`` on.
        Returns how many rows ask for logits."""
        n = len(tokens)
        self.token[:n] = tokens
        self.pos[:n] = np.arange(start, start + n, dtype=np.int32)
        self.logits[:n] = np.arange(n) >= first_output
        self.struct.n_tokens = n
        return max(0, n - max(first_output, 0))


class LlamaCppContext:
    """A GGUF model loaded by llama.cpp (memory-mapped) and one single-sequence context over it."""

    def __init__(self, path: str, n_ctx: int | None, threads: int, n_batch: int | None = None,
                 flash_attn: bool = False, use_mmap: bool = False):
        lib = self.lib = _lib()
        params = lib.llama_model_default_params()
        # Read, not memory-mapped, by default: llama.cpp repacks most weights for its CPU kernels, and
        # with mmap the file's pages stay resident beside the repacked copy (Qwen2.5-Coder-1.5B Q4_K_M:
        # 1.71x the file's size resident after load, 1.15x read; same speed and numbers)
        params.load_mode = lib.LLAMA_LOAD_MODE_MMAP if use_mmap else lib.LLAMA_LOAD_MODE_NONE
        self.model = lib.llama_model_load_from_file(path.encode(), params)
        if not self.model:
            raise ModelLoadError(f"llama.cpp cannot load {path}",
                                 hint="check that the file is a complete GGUF of a model this llama.cpp supports")
        self._free = weakref.finalize(self, _free, lib, self.model, None)
        self.vocab = lib.llama_model_get_vocab(self.model)
        self.n_vocab = int(lib.llama_vocab_n_tokens(self.vocab))
        self.n_ctx = min(int(n_ctx or self.n_ctx_train), self.n_ctx_train)
        self.n_batch = n_batch or batch_rows(self.n_vocab)
        self.flash_attn = flash_attn
        self._make_context(threads)
        self.batch = _Batch(lib, self.n_batch)
        self._owner: weakref.ref | None = None  # the Sequence whose cells the cache holds

    def _make_context(self, threads: int) -> None:
        lib = self.lib
        p = lib.llama_context_default_params()
        p.n_ctx, p.n_seq_max = self.n_ctx, 1
        p.n_batch = p.n_ubatch = self.n_batch
        p.n_threads = p.n_threads_batch = threads
        # llama-cpp-python's default (flash attention off), so that its numbers and ours agree
        p.flash_attn_type = lib.LLAMA_FLASH_ATTN_TYPE_ENABLED if self.flash_attn else lib.LLAMA_FLASH_ATTN_TYPE_DISABLED
        p.no_perf = True
        self.ctx = lib.llama_init_from_model(self.model, p)
        if not self.ctx:
            raise ModelLoadError("llama.cpp cannot make a context for this model",
                                 hint="try a smaller context (n_ctx) or check free memory")
        self._free.detach()
        self._free = weakref.finalize(self, _free, lib, self.model, self.ctx)
        self.memory = lib.llama_get_memory(self.ctx)

    def close(self) -> None:
        self._free()

    # -- the model's facts --------------------------------------------------------------
    @property
    def n_ctx_train(self) -> int:
        return int(self.lib.llama_model_n_ctx_train(self.model))

    def meta(self, key: str) -> str | None:
        """A GGUF metadata value as text (None if the file has no such key)."""
        buf = ctypes.create_string_buffer(256)
        n = self.lib.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", "replace") if n >= 0 else None

    def file_type(self) -> str:
        """The GGUF's file type as llama.cpp names it without its prefix: "Q4_1", "Q4_K_M", "F16", ..."""
        code = int(self.lib.llama_model_ftype(self.model)) & ~self.lib.LLAMA_FTYPE_GUESSED
        for name, value in vars(self.lib).items():
            if name.startswith("LLAMA_FTYPE_") and value == code and name != "LLAMA_FTYPE_GUESSED":
                return name.removeprefix("LLAMA_FTYPE_").removeprefix("MOSTLY_").removeprefix("ALL_")
        return f"ftype {code}"

    # -- tokenizer ----------------------------------------------------------------------
    def tokenize(self, text: bytes) -> list[int]:
        """Ids of ``text`` with no BOS/EOS added; special tokens written in the text are parsed (as HF does)."""
        n_max = len(text) + 8
        tokens = (self.lib.llama_token * n_max)()
        n = self.lib.llama_tokenize(self.vocab, text, len(text), tokens, n_max, False, True)
        if n < 0:
            tokens = (self.lib.llama_token * -n)()
            n = self.lib.llama_tokenize(self.vocab, text, len(text), tokens, -n, False, True)
        return list(tokens[:n])

    def piece(self, token: int) -> bytes:
        """The bytes token ``token`` stands for (special tokens as their text)."""
        buf = ctypes.create_string_buffer(64)
        n = self.lib.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, True)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self.lib.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, True)
        return buf.raw[:n]

    def detokenize(self, ids: Seq[int]) -> bytes:
        tokens = (self.lib.llama_token * max(1, len(ids)))(*ids)
        size = 16 * len(ids) + 16
        for _ in range(2):
            buf = ctypes.create_string_buffer(size)
            n = self.lib.llama_detokenize(self.vocab, tokens, len(ids), buf, size, False, True)
            if n >= 0:
                return buf.raw[:n]
            size = -n
        raise RuntimeError("llama_detokenize failed")

    # -- who owns the KV cache ----------------------------------------------------------------
    def own(self, sequence: Sequence) -> None:
        """Make the cache hold ``sequence``'s cells: the current owner's are saved to host memory
        (if a state still holds it), ``sequence``'s put back (or none: it recomputes from its ids)."""
        current = self._owner() if self._owner is not None else None
        if current is sequence:
            return
        self.clear()
        if sequence.saved is not None:
            self._restore(sequence.saved)
            self.truncate(len(sequence.ids))  # a rewound sequence keeps fewer ids than it saved
            sequence.saved = None
        else:
            sequence.ids = ()
        self._owner = weakref.ref(sequence)

    def owns(self, sequence: Sequence) -> bool:
        return self._owner is not None and self._owner() is sequence

    def clear(self) -> None:
        """An empty cache (for a one-off pass); the owner's cells are saved first if a state still holds it."""
        current = self._owner() if self._owner is not None else None
        if current is not None and current.ids:
            current.saved = self.snapshot()
        self._owner = None
        self.truncate(0)

    def snapshot(self) -> bytes:
        """The cache's cells as bytes (llama_state_seq_get_data of sequence 0)."""
        size = self.lib.llama_state_seq_get_size(self.ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        n = self.lib.llama_state_seq_get_data(self.ctx, buf, size, 0)
        return bytes(memoryview(buf)[:n])

    def _restore(self, data: bytes) -> None:
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if self.lib.llama_state_seq_set_data(self.ctx, buf, len(data), 0) == 0:
            raise RuntimeError("llama.cpp could not restore a saved KV cache")

    def truncate(self, length: int) -> None:
        """Drop the cells at positions >= length."""
        self.lib.llama_memory_seq_rm(self.memory, 0, length, -1)

    # -- decoding -----------------------------------------------------------------------
    def feed(self, tokens: Seq[int], start: int, out_from: int = 0) -> Iterator[tuple[int, np.ndarray]]:
        """Decode ``tokens`` at positions start, start+1, ... (the cache holds exactly the positions
        before ``start``), n_batch per llama_decode; yield (index in ``tokens`` of the first row,
        logits (n, V) float32) for the rows from ``out_from`` on, a view valid until the next decode."""
        tokens = np.asarray(tokens, np.int32)
        for lo in range(0, len(tokens), self.n_batch):
            chunk = tokens[lo:lo + self.n_batch]
            n_out = self.batch.fill(chunk, start + lo, out_from - lo)
            status = self.lib.llama_decode(self.ctx, self.batch.struct)
            if status != 0:
                raise InputError(f"llama.cpp could not decode {len(chunk)} tokens at position {start + lo} "
                                 f"(status {status})", hint="check that the sequence fits the model's context")
            if n_out:
                pointer = self.lib.llama_get_logits(self.ctx)
                yield lo + len(chunk) - n_out, np.ctypeslib.as_array(pointer, shape=(n_out, self.n_vocab))


def batch_rows(n_vocab: int, budget_bytes: int = 128 << 20) -> int:
    """Tokens per decode: 512 (llama.cpp's and llama-cpp-python's default), fewer for a large
    vocabulary so that one batch's float32 logits stay within ``budget_bytes`` (a power of two, >= 64)."""
    rows = 512
    while rows > 64 and rows * n_vocab * 4 > budget_bytes:
        rows //= 2
    return rows


def _free(lib, model, ctx) -> None:
    if ctx:
        lib.llama_free(ctx)
    if model:
        lib.llama_model_free(model)
