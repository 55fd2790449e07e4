"""``Model``: the user-facing object. Thin methods over the analysis modules."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .backends.base import Backend
from .results import ModelInfo, NextTokenResult, ScoreResult, TokenizeResult, TokenPiece
from .scoring import score as scoring
from .core.validation import bos_policy, checked, flag, number, optional, text, texts, texts_or_none, whole

if TYPE_CHECKING:
    from .confidence.lift import LiftResult
    from .confidence.ranking import RankResult
    from .confidence.truth import TruthResult
    from .confidence.uncertainty import UncertaintyResult
    from .core.processors import SamplerConfig
    from .evaluation.calibration import CalibrationReport
    from .evaluation.compare import EngineComparison
    from .evaluation.quantization import QuantizationReport
    from .sampling.beam import BeamResult
    from .sampling.chain import ChainResult, SampleResult
    from .sampling.generation import GenerationResult
    from .sampling.tree import TreeResult
    from .scoring.perplexity import PerplexityComparison, PerplexityResult


def _stamped(method):
    """Mark the result(s) of an analysis method with the model, engine and dtype that computed them."""
    @functools.wraps(method)
    def run(self: "Model", *args, **kwargs):
        out = method(self, *args, **kwargs)
        for result in out if isinstance(out, list) else [out]:
            if hasattr(result, "stamped"):
                result.stamped(self.producer)
        return out
    return run


class _StampAll(type):
    """Every public method of ``Model`` that returns a result gets ``_stamped``."""

    def __new__(mcs, name, bases, namespace):
        for key, value in list(namespace.items()):
            if callable(value) and not key.startswith("_") and key not in ("logits", "info", "compare"):
                namespace[key] = _stamped(value)
        return super().__new__(mcs, name, bases, namespace)


class Model(metaclass=_StampAll):
    """A loaded model. Every method is a thin call into an analysis module that is
    written against ``self.backend`` (see ``logitscope.backends.base``); every result it
    returns says which model, engine and dtype produced it (``result.produced_by``)."""

    def __init__(self, backend: Backend):
        self.backend = backend

    @property
    def name(self) -> str:
        return self.backend.name

    def __repr__(self) -> str:
        c = self.backend.capabilities
        vocab = "full" if c.full_vocab else f"top-{c.top_k_only} only"
        return (f"Model({self.name!r}, vocab={self.backend.vocab_size} ({vocab}), context={c.context_length}, "
                f"kv_cache={c.kv_cache})")

    @property
    def producer(self) -> dict:
        """{"model", "engine", "dtype"}: what computes this model's numbers."""
        return self.backend.producer()

    @property
    def capabilities(self):
        """What the backend can do (``Capabilities``): full vocabulary or top-k only, context, KV cache, weights."""
        return self.backend.capabilities

    def info(self) -> ModelInfo:
        """What this model is (backend, engine, dtype, special tokens) and what it can do (capabilities)."""
        b = self.backend
        return ModelInfo(b.name, type(b).__name__, b.engine, b.dtype, b.vocab_size, b.bos_token_id, b.eos_token_id,
                         b.adds_bos_by_default, b.capabilities.describe())

    # -- tokenization view ---------------------------------------------------------
    @checked(text=text)
    def tokenize(self, text: str) -> TokenizeResult:
        """Every token of ``text`` with its id, text and character span (no special tokens)."""
        tok = self.backend.tokenize(text)
        return TokenizeResult(text, tuple(TokenPiece(i, self.backend.token_text(i), s, e)
                                          for i, (s, e) in zip(tok.ids, tok.offsets)))

    # -- next token and scoring ------------------------------------------------------
    @checked(text=text, bos=bos_policy)
    def logits(self, text: str, bos: str | bool = False):
        """The raw logits ``[1, T, V]`` (a torch tensor) for the T tokens of ``text``; row t
        predicts token t+1, so ``logits[0, -1]`` is the next-token distribution's logits.
        The tokens are ``self.tokenize(text)``'s, with a BOS in front only if ``bos`` asks."""
        from .scoring.logits import all_logits

        return all_logits(self.backend, text, bos)

    @checked(prompt=text, top_k=whole, temperature=number, bos=bos_policy)
    def next_token(self, prompt: str, top_k: int = 10, temperature: float = 1.0,
                   bos: str | bool = "auto") -> NextTokenResult:
        """The next-token distribution after ``prompt`` (top-k table + full distribution)."""
        return scoring.next_token(self.backend, prompt, top_k=top_k, temperature=temperature, bos=bos)

    @checked(text=text, context=optional(text))
    def score(self, text: str, context: str | None = None, top_k: int = 5, bos: str | bool = "auto",
              window: int | None = None, stride: int | None = None) -> ScoreResult:
        """Per-token log-probs of ``text`` (only the continuation when ``context`` is given)."""
        return self.score_many([text], [context], top_k=top_k, bos=bos, window=window, stride=stride)[0]

    @checked(texts=texts, contexts=optional(texts_or_none), top_k=whole, bos=bos_policy, window=optional(whole),
             stride=optional(whole))
    def score_many(self, texts: Sequence[str], contexts: Sequence[str | None] | None = None, top_k: int = 5,
                   bos: str | bool = "auto", window: int | None = None,
                   stride: int | None = None) -> list[ScoreResult]:
        """Score many texts in batches (right padding; pads never scored)."""
        return scoring.score_texts(self.backend, texts, contexts, top_k=top_k, bos=bos, window=window, stride=stride)

    @checked(texts=optional(texts), files=optional(texts), convention=text, window=optional(whole),
             stride=optional(whole), bos=optional(bos_policy), fmt=optional(text))
    def perplexity(self, texts: Sequence[str] | None = None, files: Sequence[str] | None = None,
                   convention: str = "strided", window: int | None = None, stride: int | None = None,
                   bos: str | bool | None = None, fmt: str | None = None, progress=None) -> "PerplexityResult":
        """Token-weighted corpus perplexity of ``texts`` or ``files`` under a windowing
        convention ("strided" | "disjoint" | "llamacpp"); see ``logitscope.scoring.perplexity``."""
        from .scoring import perplexity

        return perplexity.perplexity(self.backend, texts=texts, files=files, convention=convention, window=window,
                                     stride=stride, bos=bos, fmt=fmt, progress=progress)

    @checked(texts=optional(texts), files=optional(texts), conventions=optional(texts), window=optional(whole),
             stride=optional(whole), bos=optional(bos_policy), fmt=optional(text))
    def compare_conventions(self, texts: Sequence[str] | None = None, files: Sequence[str] | None = None,
                            conventions: Sequence[str] | None = None, window: int | None = None,
                            stride: int | None = None, bos: str | bool | None = None, fmt: str | None = None,
                            progress=None) -> "PerplexityComparison":
        """Perplexity under every convention (default: all three), side by side."""
        from .scoring import perplexity

        return perplexity.compare([self.backend], texts=texts, files=files,
                                  conventions=conventions or perplexity.CONVENTIONS, window=window, stride=stride,
                                  bos=bos, fmt=fmt, progress=progress)

    # -- sampling and generation (logitscope.sampling) ----------------------------------------
    @checked(prompt=text, bos=bos_policy, top=whole)
    def chain(self, prompt: str, sampler: "SamplerConfig | None" = None, bos: str | bool = "auto",
              top: int = 10) -> "ChainResult":
        """The next-token distribution after each stage of a SamplerConfig chain."""
        from .sampling.chain import distribution_chain

        return distribution_chain(self.backend, prompt, sampler=sampler, bos=bos, top=top)

    @checked(prompt=text, n=whole, seed=whole, bos=bos_policy)
    def sample(self, prompt: str, n: int = 1000, sampler: "SamplerConfig | None" = None, seed: int = 0,
               bos: str | bool = "auto") -> "SampleResult":
        """Draw ``n`` next tokens (seeded) and test them against the processed distribution."""
        from .sampling.chain import sample_next

        return sample_next(self.backend, prompt, n=n, sampler=sampler, seed=seed, bos=bos)

    @checked(prompt=text, max_new_tokens=whole, seed=optional(whole), stop=texts, bos=bos_policy,
             top_alternatives=whole, use_cache=flag)
    def generate(self, prompt: str, max_new_tokens: int = 50, sampler: "SamplerConfig | None" = None,
                 seed: int | None = 0, stop: Sequence[str] = (), bos: str | bool = "auto",
                 top_alternatives: int = 10, use_cache: bool = True, on_text=None,
                 speculative: bool = True) -> "GenerationResult":
        """Traced generation on the backend's KV cache (prompt-lookup drafts verified in one forward unless
        ``speculative=False``: the same tokens either way); see ``sampling.generation.generate``."""
        from .sampling.generation import generate

        return generate(self.backend, prompt, max_new_tokens=max_new_tokens, sampler=sampler, seed=seed, stop=stop,
                        bos=bos, top_alternatives=top_alternatives, use_cache=use_cache, on_text=on_text,
                        speculative=speculative)

    @checked(prompt=text, num_beams=whole, max_new_tokens=whole, alpha=number, bos=bos_policy)
    def beam_search(self, prompt: str, num_beams: int = 4, max_new_tokens: int = 20, alpha: float = 1.0,
                    bos: str | bool = "auto") -> "BeamResult":
        """Beam search with length normalisation, compared with greedy."""
        from .sampling.beam import beam_search

        return beam_search(self.backend, prompt, num_beams=num_beams, max_new_tokens=max_new_tokens, alpha=alpha,
                           bos=bos)

    @checked(prompt=text, depth=whole, branch=whole, min_prob=number, bos=bos_policy, reuse_cache=flag)
    def tree(self, prompt: str, depth: int = 3, branch: int = 3, min_prob: float = 0.0,
             bos: str | bool = "auto", reuse_cache: bool = True) -> "TreeResult":
        """The tree of the top-``branch`` continuations to ``depth`` (KV cache shared by siblings)."""
        from .sampling.tree import expand_tree

        return expand_tree(self.backend, prompt, depth=depth, branch=branch, min_prob=min_prob, bos=bos,
                           reuse_cache=reuse_cache)

    # -- confidence: ranking, context lift, uncertainty, truth, heatmaps --------------------
    @checked(prompt=text, candidates=texts, top_k=whole, bos=bos_policy, unconditional=flag, reuse_prefix=flag)
    def rank(self, prompt: str, candidates: Sequence[str], top_k: int = 0, bos: str | bool = "auto",
             unconditional: bool = True, reuse_prefix: bool = True) -> "RankResult":
        """Rank candidate continuations of ``prompt`` (prompt run once, KV cache reused)."""
        from .confidence.ranking import rank

        return rank(self.backend, prompt, candidates, top_k=top_k, bos=bos, unconditional=unconditional,
                    reuse_prefix=reuse_prefix)

    @checked(question=text, answer=text, contexts=texts, min_lift=optional(number), bos=bos_policy)
    def context_lift(self, question: str, answer: str, contexts: Sequence[str], min_lift: float | None = None,
                     bos: str | bool = "auto") -> "LiftResult":
        """Log-prob of ``answer`` with and without each context; lift = PMI in nats."""
        from .confidence.lift import DEFAULT_MIN_LIFT, context_lift

        return context_lift(self.backend, question, answer, contexts,
                            min_lift=DEFAULT_MIN_LIFT if min_lift is None else min_lift, bos=bos)

    @checked(text=text, max_prob_below=optional(number), entropy_above=optional(number), bos=bos_policy,
             top_k=optional(whole))
    def uncertain(self, text: str, max_prob_below: float | None = 0.1, entropy_above: float | None = 4.0,
                  bos: str | bool = "auto", top_k: int | None = None) -> "UncertaintyResult":
        """Flag tokens where the model was unsure, merged into word/phrase spans. ``top_k``
        alternatives are kept per token (default 5, or all a top-k-only backend has when fewer)."""
        from .confidence.uncertainty import flag_uncertain

        if top_k is None:
            cap = self.backend.capabilities.top_k_only
            top_k = 5 if cap is None else min(5, cap)
        return flag_uncertain(self.score(text, top_k=top_k, bos=bos), max_prob_below=max_prob_below,
                              entropy_above=entropy_above)

    @checked(progress=flag, limit=optional(whole))
    def truth(self, dataset=None, progress: bool = False, limit: int | None = None) -> "TruthResult":
        """Separate true from false statements of a pair dataset: a JSONL path, a list of
        ``StatementPair`` or None (the bundled one); ``limit`` keeps only the first ``limit`` pairs."""
        from .confidence.truth import evaluate, load_pairs
        from .errors import check_range

        if limit is not None:
            check_range("limit", limit, 1, None)
        pairs = list(dataset) if isinstance(dataset, (list, tuple)) else load_pairs(dataset)  # pairs or a path
        return evaluate(self.backend, pairs[:limit], progress=progress)

    @checked(text=text, color_by=text, context=optional(text), bos=bos_policy)
    def heatmap_html(self, text: str, path, color_by: str = "prob", context: str | None = None,
                     bos: str | bool = "auto"):
        """Score ``text`` and write a self-contained HTML heatmap to ``path``."""
        from .views.html import write_html

        return write_html(self.score(text, context=context, top_k=5, bos=bos), path, color_by)

    # -- evaluation: engines side by side, calibration, quantization ------------------------------
    def compare(self, other: "Model", text: str, window: int = 512, bos: str | bool = "auto",
                progress: bool = False) -> "EngineComparison":
        """``other`` against this model on the same tokens of ``text``: per-token Δlog-prob, KL, same top
        token, rank changes, perplexity of each (e.g. float32 vs llama.cpp vs bfloat16 of one GGUF)."""
        from .evaluation.compare import compare_engines

        return compare_engines(self.backend, other.backend, text, window=window, bos=bos,
                               progress=progress)

    # -- evaluation: calibration, quantization --------------------------------------------------
    @checked(normalize=text, bins=whole, bos=bos_policy, seed=whole, progress=flag, template=optional(text),
             delimiter=text)
    def calibrate(self, dataset=None, normalize: str = "sum", bins: int = 10, bos: str | bool = "auto",
                  seed: int = 0, progress: bool = False, template: str | None = None,
                  delimiter: str = " ") -> "CalibrationReport":
        """Multiple-choice accuracy and calibration (ECE, MCE, Brier, NLL, temperature scaling).
        ``template`` (with {question}) and ``delimiter`` build each prompt + choice, as lm-eval's
        doc_to_text and target_delimiter; default "Question: {question}\\nAnswer:" and " "."""
        from .evaluation.calibration import PROMPT_TEMPLATE, evaluate

        return evaluate(self.backend, dataset, normalize=normalize, bins=bins, bos=bos, seed=seed, progress=progress,
                        template=template or PROMPT_TEMPLATE, delimiter=delimiter)

    @checked(text=text, scheme=text, symmetric=flag, int8=flag, top_k=whole, window=whole, bos=bos_policy,
             progress=flag, which=text)
    def quantization_impact(self, text: str, bits=(16, 8, 4, 3, 2), scheme: str = "per-tensor",
                            symmetric: bool = False, int8: bool = True, top_k: int = 256, window: int = 1024,
                            bos: str | bool = "auto", progress: bool = False,
                            which: str = "matrices") -> "QuantizationReport":
        """Perplexity and KL/same-top/Δp against this model for quantized weights (llama.cpp's statistics);
        ``which="all"`` rounds every parameter, not only the weight matrices (seed 003's sweep)."""
        from .evaluation.quantization import quantization_impact

        return quantization_impact(self.backend, text, bits=bits, scheme=scheme, symmetric=symmetric, int8=int8,
                                   top_k=top_k, window=min(window, self.backend.capabilities.context_length),
                                   bos=bos, progress=progress, which=which)
