"""The one contract every model backend implements, over token ids.

A backend knows how to tokenize and how to turn token ids into next-token
log-probabilities. Everything else (scoring, perplexity, sampling, ranking,
calibration…) is written once against this class in the analysis modules.

    tokenize(text)            -> Tokenized(ids, offsets)     no special tokens added
    detokenize(ids)           -> str
    next_logits(prefixes)     -> (B, V) raw scores after each prefix          [full_vocab]
    next_top_k(prefixes, k)   -> (ids (B, k), log-probs (B, k)), most likely first
    score_positions(seqs, starts, top_k)
                              -> one PositionScores per sequence: for every target
                                 seq[t], t >= start, log p(seq[t] | seq[:t]), its
                                 rank, the entropy at t, and the top-k alternatives
    scores_without_ranks(seqs, starts, top_k)
                              -> as score_positions, without ranks or entropies (cheaper)
    nll_sums(seqs, starts)    -> Σ -log p per sequence (perplexity's hot path)
    position_logits(ids)      -> (T, V) raw scores of every position (one forward's logits)  [full_vocab]
    prefill(ids) / extend(state, ids) / fork(state)
                              -> DecodeState: incremental decoding (KV cache when
                                 capabilities.kv_cache, otherwise recomputation)
    extend_rows(state, ids)   -> (DecodeState, logits (T, V) after each new id)
    rewind(state, length)     -> DecodeState of the first ``length`` ids
                                 (one forward for all rows when capabilities.verify_rows)
    token_bytes(id)           -> the token's raw bytes (a piece of a UTF-8 character stays bytes)
    chat_template / render_chat(messages)
                              -> the model's chat template, applied (CapabilityError without one)
    special_tokens()          -> the tokenizer's class and its BOS/EOS/pad strings
    hidden_states / project / torch_module / with_module          [weights]
                              -> the local network itself, for analyses that change
                                 its weights (quantization)

Capabilities are declared in ``capabilities`` and checked with ``require``:

    full_vocab   next_logits covers the whole vocabulary: exact entropy, the sampler
                 chain, sampling, KL between models. A backend without it (a remote
                 server that returns top-k log-probs) sets ``top_k_only = k``; its
                 PositionScores carry rank k+1 for "beyond the top k" and an entropy
                 that is a lower bound (``mathops.entropy_lower_bound``), and results
                 computed from it say so (``top_k_only`` on the result).
    kv_cache     extend() reuses past computation instead of recomputing.
    weights      the backend runs local torch weights that an analysis may transform.
    verify_rows  extend_rows runs one forward for several new tokens (worth drafting).

Every method above has a slow but correct default here or raises CapabilityError, so
analyses and edges call them directly: nothing outside ``backends/`` probes a backend
with ``getattr``. ``engine`` and ``dtype`` name what computes the numbers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch

from ..core import mathops
from ..errors import CapabilityError, InputError

GROUP_TOKENS = 1 << 14  # ids per nll_sums call: windows of several documents share forward batches


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, declared by the backend and checked by the analyses (``require``)."""

    full_vocab: bool = True  # next_logits covers the whole vocabulary
    top_k_only: int | None = None  # without full_vocab: this many alternatives are known per position
    context_length: int = 2048  # longest sequence one forward pass accepts (prefix token included)
    kv_cache: bool = False  # extend() reuses past computation instead of recomputing
    weights: bool = False  # local torch weights: hidden_states/project/torch_module/with_module work
    verify_rows: bool = False  # extend_rows/rewind: logits of several fed tokens in one forward (speculative)

    def __post_init__(self):
        if self.full_vocab == (self.top_k_only is not None):
            raise ValueError("declare either full_vocab=True or top_k_only=k (a backend that sees only top-k)")

    def describe(self) -> dict:
        """The capabilities as plain values (for `logitscope info`, JSON and repr)."""
        return {"full_vocab": self.full_vocab, "top_k_only": self.top_k_only, "context_length": self.context_length,
                "kv_cache": self.kv_cache, "weights": self.weights, "verify_rows": self.verify_rows}


_NEEDS_HINT = {
    "full_vocab": "use a local model, or a server that returns full distributions (e.g. vLLM with logprobs=-1)",
    "weights": "load a local Hugging Face directory or .gguf file on the torch engine (--engine torch; "
               "not a toy, remote or llama.cpp model)",
    "kv_cache": "use a backend with a KV cache (a local transformers model)",
}


def missing_capability(backend: "Backend", capability: str, what: str) -> CapabilityError:
    """The error for ``what`` needing ``capability`` (a Capabilities flag) that ``backend`` lacks."""
    return CapabilityError(f"{what} needs {capability.replace('_', ' ')}, which {backend.name} does not have",
                           hint=_NEEDS_HINT[capability])


def require(backend: "Backend", capability: str, what: str) -> None:
    """Raise CapabilityError unless ``backend`` declares ``capability``."""
    if not getattr(backend.capabilities, capability):
        raise missing_capability(backend, capability, what)


@dataclass(frozen=True)
class Tokenized:
    text: str
    ids: list[int]
    offsets: list[tuple[int, int]]  # character span of each token in ``text``


@dataclass
class PositionScores:
    """Scores of N target positions of one sequence (rows in sequence order)."""

    logprob: torch.Tensor  # (N,) float64: log p(target | prefix)
    rank: torch.Tensor  # (N,) int64: 1 = the target was the argmax
    entropy: torch.Tensor  # (N,) float64: entropy (nats) of the predictive distribution
    top_ids: torch.Tensor  # (N, k) int64 alternatives, most likely first
    top_logprobs: torch.Tensor  # (N, k) float64

    @staticmethod
    def from_logits(logits: torch.Tensor, targets: torch.Tensor, top_k: int) -> "PositionScores":
        """Build from raw logits (N, V) and target ids (N,) — the reference path."""
        logp = mathops.log_softmax(logits if logits.dtype == torch.float64 else logits.float(), dim=-1)  # (N, V)
        targets = targets.to(logp.device)
        k = min(top_k, logp.shape[-1])
        top = logp.topk(k, dim=-1) if k > 0 else None
        return PositionScores(  # results live on the CPU whatever device computed them
            logprob=logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1).double().cpu(),
            rank=mathops.rank_of(logp, targets).cpu(),
            entropy=mathops.entropy(logp).double().cpu(),
            top_ids=top.indices.cpu() if top is not None else torch.zeros(len(targets), 0, dtype=torch.long),
            top_logprobs=top.values.double().cpu() if top is not None else torch.zeros(len(targets), 0,
                                                                                         dtype=torch.float64),
        )

    @staticmethod
    def values_only(logprob: torch.Tensor) -> "PositionScores":
        """Scores that carry log-probs alone: rank 0 and entropy NaN mean "not computed"."""
        n = len(logprob)
        return PositionScores(logprob=logprob.double(), rank=torch.zeros(n, dtype=torch.long),
                              entropy=torch.full((n,), float("nan"), dtype=torch.float64),
                              top_ids=torch.zeros(n, 0, dtype=torch.long),
                              top_logprobs=torch.zeros(n, 0, dtype=torch.float64))

    def split(self, sizes: list[int]) -> list["PositionScores"]:
        """Consecutive pieces of ``sizes`` rows (the inverse of ``concat``)."""
        pieces = [torch.split(getattr(self, f), sizes) for f in ("logprob", "rank", "entropy", "top_ids", "top_logprobs")]
        return [PositionScores(*fields) for fields in zip(*pieces)]

    @staticmethod
    def concat(parts: list["PositionScores"]) -> "PositionScores":
        return PositionScores(*(torch.cat([getattr(p, f) for p in parts]) for f in
                                ("logprob", "rank", "entropy", "top_ids", "top_logprobs")))

    def __len__(self) -> int:
        return int(self.logprob.shape[0])


@dataclass
class DecodeState:
    """Where incremental decoding stands: the ids so far and the next-token logits."""

    ids: tuple[int, ...]
    logits: torch.Tensor  # (V,) raw scores for the token after ``ids``
    cache: object = field(default=None, repr=False)  # backend-specific (e.g. a KV cache)

    @property
    def logprobs(self) -> torch.Tensor:
        return mathops.log_softmax(self.logits.float())


class Backend(ABC):
    """Base class for model backends. Subclasses set the attributes and implement
    the abstract methods; the defaults below are correct but slow fallbacks.

    Every tensor the contract hands out lives on the CPU (logits, scores, decode-state
    logits), whatever device computes it, so analyses and samplers never see a device.
    The exceptions are ``hidden_states`` and ``project``: they stay on the model's device
    for the hot loops that chain them; a caller moves what it keeps with ``.cpu()``."""

    name: str = "backend"
    engine: str = "python"  # what computes the numbers: "torch", "llamacpp", "remote", "python" (toy models)
    dtype: str = "float64"  # the arithmetic of the logits (e.g. "float32", "bfloat16", "Q4_1")
    capabilities: Capabilities = Capabilities()
    vocab_size: int
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    adds_bos_by_default: bool = False  # the tokenizer's own convention for a prefix token
    chat_template: str | None = None  # a Jinja chat template (messages, add_generation_prompt), if the model has one
    group_tokens: int = GROUP_TOKENS  # ids per nll_sums call that keep this backend busy (perplexity's batches)
    demo_texts: tuple[str, str] | None = None  # (prompt, text) for `logitscope demo` when the defaults do not fit

    def producer(self) -> dict:
        """{"model", "engine", "dtype"}: what computes this backend's numbers (stamped on every result)."""
        return {"model": self.name, "engine": self.engine, "dtype": self.dtype}

    # -- tokenization -------------------------------------------------------
    @abstractmethod
    def tokenize(self, text: str) -> Tokenized:
        """Split ``text`` into ids with character offsets; no special tokens added."""

    @abstractmethod
    def detokenize(self, ids: list[int]) -> str:
        """Inverse of tokenize for display."""

    def token_text(self, token_id: int) -> str:
        return self.detokenize([int(token_id)])

    def token_bytes(self, token_id: int) -> bytes:
        """The token's raw bytes. Default: its text as UTF-8 (a backend whose tokens can split a
        character overrides this, so a piece of a multi-byte character is its bytes, not U+FFFD)."""
        return self.token_text(token_id).encode("utf-8")

    def render_chat(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        """``messages`` through the model's chat template. Default: ``chat_template`` rendered with
        Jinja; CapabilityError when the model has none."""
        if not self.chat_template:
            raise CapabilityError(f"model {self.name!r} has no chat template",
                                  hint="use /v1/completions with a plain prompt, or serve an instruct model")
        import jinja2

        return jinja2.Environment().from_string(self.chat_template).render(
            messages=messages, add_generation_prompt=add_generation_prompt)

    def special_tokens(self) -> dict:
        """The tokenizer's class name and its BOS, EOS and pad tokens as text (None when absent)."""
        text = lambda tid: None if tid is None else self.token_text(tid)  # noqa: E731
        return {"tokenizer_class": type(self).__name__, "bos_token": text(self.bos_token_id),
                "eos_token": text(self.eos_token_id), "pad_token": None}

    # -- scoring ------------------------------------------------------------
    @abstractmethod
    def next_logits(self, prefixes: list[list[int]]) -> torch.Tensor:
        """(B, V) raw next-token scores after each non-empty prefix (full_vocab backends;
        a top-k-only backend raises CapabilityError through ``require``)."""

    def next_top_k(self, prefixes: list[list[int]], k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The k most likely next tokens after each prefix: ids (B, k) int64 and their
        log-probabilities (B, k) float64, most likely first. Default: from next_logits."""
        logp = mathops.log_softmax(as_float(self.next_logits(prefixes)))  # (B, V)
        top = logp.topk(min(k, logp.shape[-1]), dim=-1)
        return top.indices, top.values.double()

    def score_positions(self, sequences: list[list[int]], starts: list[int], top_k: int = 0) -> list[PositionScores]:
        """Default: one next_logits call per target position (correct, slow)."""
        out = []
        for seq, start in zip(sequences, starts):
            check_start(seq, start)
            logits = self.next_logits([seq[:t] for t in range(start, len(seq))])  # (N, V)
            out.append(PositionScores.from_logits(logits, torch.tensor(seq[start:]), top_k))
        return out

    def scores_without_ranks(self, sequences: list[list[int]], starts: list[int], top_k: int = 0) -> list[PositionScores]:
        """As ``score_positions`` without ranks or entropies (rank 0 and entropy NaN: "not computed"), for
        callers that read only log-probs and alternatives (the server's echo). Default: score_positions."""
        return self.score_positions(sequences, starts, top_k)

    def nll_sums(self, sequences: list[list[int]], starts: list[int]) -> list[float]:
        """Σ -log p(seq[t] | seq[:t]) over t >= start, per sequence, in float64 (perplexity's
        hot path: no ranks, entropies or top-k). Default: through score_positions."""
        return [-float(s.logprob.sum()) for s in self.score_positions(sequences, starts, 0)]

    def position_logits(self, ids: list[int]) -> torch.Tensor:
        """(T, V) float32 raw scores of every position: row t follows ids[:t+1] (one forward pass's logits)
        [full_vocab]. Default: hidden states through the LM head for local weights, else one next_logits
        row per prefix. Keep T moderate: this is T x V floats."""
        require(self, "full_vocab", "the logits of every position")
        if self.capabilities.weights:
            return self.project(self.hidden_states(torch.tensor([list(ids)]))[0]).float().cpu()  # (T, V)
        return as_float(self.next_logits([list(ids[:t + 1]) for t in range(len(ids))]))

    def token_logprobs(self, sequences: list[list[int]], starts: list[int]) -> list[torch.Tensor]:
        """log p(seq[t] | seq[:t]) for t >= start, per sequence: (len(seq) - start,) float64 each —
        the values alone, no ranks, entropies or top-k. Default: through score_positions."""
        return [s.logprob for s in self.score_positions(sequences, starts, 0)]

    # -- incremental decoding -------------------------------------------------
    def prefill(self, ids: list[int]) -> DecodeState:
        if not ids:
            raise InputError("cannot decode from an empty prefix", hint="start from at least one token")
        return DecodeState(tuple(ids), self.next_logits([list(ids)])[0])

    def extend(self, state: DecodeState, new_ids: list[int]) -> DecodeState:
        """State after appending ``new_ids``. May reuse (and so consume) ``state``'s
        cache: call ``fork`` first to keep ``state`` usable."""
        return self.prefill(list(state.ids) + list(new_ids))

    def fork(self, state: DecodeState) -> DecodeState:
        """An independent copy of ``state`` (its cache is not shared)."""
        return DecodeState(state.ids, state.logits.clone(), state.cache)

    def extend_rows(self, state: DecodeState, new_ids: list[int]) -> tuple[DecodeState, torch.Tensor]:
        """As ``extend``, plus the logits after each new id: (T, V). Default: one ``extend`` per id
        (correct; a backend that declares ``verify_rows`` runs one forward for all of them)."""
        rows = []
        for token in new_ids:
            state = self.extend(state, [token])
            rows.append(state.logits)
        return state, torch.stack(rows)

    def rewind(self, state: DecodeState, length: int, logits: torch.Tensor | None = None) -> DecodeState:
        """The state of the first ``length`` ids of ``state`` (may consume its cache). ``logits`` (V,)
        are the logits after those ids when the caller has them. Default: recomputation (a state
        without a cache, which ``extend`` must accept)."""
        ids = list(state.ids[:length])
        return self.prefill(ids) if logits is None else DecodeState(tuple(ids), logits)

    # -- the network itself (capabilities.weights) ---------------------------------
    def hidden_states(self, ids: torch.Tensor) -> torch.Tensor:
        """Final-layer hidden states (B, T, H) of a right-padded id batch (B, T), on the model's device."""
        require(self, "weights", "hidden states")
        raise NotImplementedError

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """(N, H) hidden rows -> (N, V) float32 logits through the LM head, on the rows' device."""
        require(self, "weights", "the LM head")
        raise NotImplementedError

    @property
    def torch_module(self):
        """The torch.nn.Module whose weights an analysis may change in place (and restore)."""
        require(self, "weights", "the model's weights")
        raise NotImplementedError

    def with_module(self, module) -> "Backend":
        """A backend like this one that runs ``module`` (e.g. an int8 copy) instead."""
        require(self, "weights", "swapping the model's weights")
        raise NotImplementedError

    def score_continuations(self, state: DecodeState, continuations: list[list[int]],
                            top_k: int = 0) -> list[PositionScores]:
        """Score each continuation after the decoded prefix ``state``. Default: full
        passes; backends with a KV cache override this to reuse the prefix."""
        seqs = [list(state.ids) + list(c) for c in continuations]
        return self.score_positions(seqs, [len(state.ids)] * len(seqs), top_k)


def as_float(logits: torch.Tensor) -> torch.Tensor:
    """float32, or float64 when the backend gives it (toy backends are exact)."""
    return logits if logits.dtype == torch.float64 else logits.float()


def check_start(seq: list[int], start: int) -> None:
    if not 1 <= start <= len(seq):
        raise InputError(f"cannot score from position {start} of a {len(seq)}-token sequence",
                         hint="a target needs at least one token before it")
