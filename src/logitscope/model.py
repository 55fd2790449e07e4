"""``Model``: the user-facing object. Thin methods over the analysis modules."""

from __future__ import annotations

from collections.abc import Sequence

from .backends.base import Backend
from .results import NextTokenResult, ScoreResult, TokenizeResult, TokenPiece
from .scoring import score as scoring


class Model:
    """A loaded model. Every method is a thin call into an analysis module that is
    written against ``self.backend`` (see ``logitscope.backends.base``)."""

    def __init__(self, backend: Backend):
        self.backend = backend

    @property
    def name(self) -> str:
        return self.backend.name

    def __repr__(self) -> str:
        c = self.backend.capabilities
        return f"Model({self.name!r}, vocab={self.backend.vocab_size}, context={c.context_length}, kv_cache={c.kv_cache})"

    # -- tokenization view ---------------------------------------------------------
    def tokenize(self, text: str) -> TokenizeResult:
        """Every token of ``text`` with its id, text and character span (no special tokens)."""
        tok = self.backend.tokenize(text)
        return TokenizeResult(text, tuple(TokenPiece(i, self.backend.token_text(i), s, e)
                                          for i, (s, e) in zip(tok.ids, tok.offsets)))

    # -- next token and scoring ------------------------------------------------------
    def logits(self, text: str, bos: str | bool = False):
        """The raw logits ``[1, T, V]`` (a torch tensor) for the T tokens of ``text``; row t
        predicts token t+1, so ``logits[0, -1]`` is the next-token distribution's logits.
        The tokens are ``self.tokenize(text)``'s, with a BOS in front only if ``bos`` asks."""
        from .scoring.logits import all_logits

        return all_logits(self.backend, text, bos)

    def next_token(self, prompt: str, top_k: int = 10, temperature: float = 1.0,
                   bos: str | bool = "auto") -> NextTokenResult:
        """The next-token distribution after ``prompt`` (top-k table + full distribution)."""
        return scoring.next_token(self.backend, prompt, top_k, temperature, bos)

    def score(self, text: str, context: str | None = None, top_k: int = 5, bos: str | bool = "auto",
              window: int | None = None, stride: int | None = None) -> ScoreResult:
        """Per-token log-probs of ``text`` (only the continuation when ``context`` is given)."""
        return scoring.score_texts(self.backend, [text], [context], top_k, bos, window, stride)[0]

    def score_many(self, texts: Sequence[str], contexts: Sequence[str | None] | None = None, top_k: int = 5,
                   bos: str | bool = "auto", window: int | None = None,
                   stride: int | None = None) -> list[ScoreResult]:
        """Score many texts in batches (right padding; pads never scored)."""
        return scoring.score_texts(self.backend, texts, contexts, top_k, bos, window, stride)

    def perplexity(self, texts: Sequence[str] | None = None, files: Sequence[str] | None = None,
                   convention: str = "strided", window: int | None = None, stride: int | None = None,
                   bos: str | bool | None = None, fmt: str | None = None, progress=None):
        """Token-weighted corpus perplexity of ``texts`` or ``files`` under a windowing
        convention ("strided" | "disjoint" | "llamacpp"); see ``logitscope.perplexity``."""
        from .scoring import perplexity

        return perplexity.perplexity(self.backend, texts, files, convention, window, stride, bos, fmt, progress)

    # -- sampling and generation (logitscope.generation, .beam, .tree) ---------------------
    def chain(self, prompt: str, sampler=None, bos: str | bool = "auto", top: int = 10):
        """The next-token distribution after each stage of a SamplerConfig chain."""
        from .sampling.generation import distribution_chain

        return distribution_chain(self.backend, prompt, sampler, bos, top)

    def sample(self, prompt: str, n: int = 1000, sampler=None, seed: int = 0, bos: str | bool = "auto"):
        """Draw ``n`` next tokens (seeded) and test them against the processed distribution."""
        from .sampling.generation import sample_next

        return sample_next(self.backend, prompt, n, sampler, seed, bos)

    def generate(self, prompt: str, max_new_tokens: int = 50, sampler=None, seed: int | None = 0,
                 stop: Sequence[str] = (), bos: str | bool = "auto", top_alternatives: int = 10,
                 use_cache: bool = True, on_text=None):
        """Traced generation on the backend's KV cache; see ``generation.generate``."""
        from .sampling.generation import generate

        return generate(self.backend, prompt, max_new_tokens, sampler, seed, stop, bos, top_alternatives,
                        use_cache, on_text)

    def beam_search(self, prompt: str, num_beams: int = 4, max_new_tokens: int = 20, alpha: float = 1.0,
                    bos: str | bool = "auto"):
        """Beam search with length normalisation, compared with greedy."""
        from .sampling.beam import beam_search

        return beam_search(self.backend, prompt, num_beams, max_new_tokens, alpha, bos)

    def tree(self, prompt: str, depth: int = 3, branch: int = 3, min_prob: float = 0.0,
             bos: str | bool = "auto", reuse_cache: bool = True):
        """The tree of the top-``branch`` continuations to ``depth`` (KV cache shared by siblings)."""
        from .sampling.tree import expand_tree

        return expand_tree(self.backend, prompt, depth, branch, min_prob, bos, reuse_cache)

    # -- confidence: ranking, context lift, uncertainty, truth, heatmaps --------------------
    def rank(self, prompt: str, candidates: Sequence[str], top_k: int = 0, bos: str | bool = "auto",
             unconditional: bool = True, reuse_prefix: bool = True):
        """Rank candidate continuations of ``prompt`` (prompt run once, KV cache reused)."""
        from .confidence.ranking import rank

        return rank(self.backend, prompt, candidates, top_k, bos, unconditional, reuse_prefix)

    def context_lift(self, question: str, answer: str, contexts: Sequence[str], min_lift: float | None = None,
                     bos: str | bool = "auto"):
        """Log-prob of ``answer`` with and without each context; lift = PMI in nats."""
        from .confidence.lift import DEFAULT_MIN_LIFT, context_lift

        return context_lift(self.backend, question, answer, contexts,
                            min_lift=DEFAULT_MIN_LIFT if min_lift is None else min_lift, bos=bos)

    def uncertain(self, text: str, max_prob_below: float | None = 0.1, entropy_above: float | None = 4.0,
                  bos: str | bool = "auto", top_k: int = 5):
        """Flag tokens where the model was unsure, merged into word/phrase spans."""
        from .confidence.uncertainty import flag_uncertain

        return flag_uncertain(self.score(text, top_k=top_k, bos=bos), max_prob_below, entropy_above)

    def calibrate(self, dataset=None, normalize: str = "sum", bins: int = 10, bos: str | bool = "auto",
                  seed: int = 0, progress: bool = False):
        """Multiple-choice accuracy and calibration (ECE, MCE, Brier, NLL, temperature scaling)."""
        from .evaluation.calibration import evaluate

        return evaluate(self.backend, dataset, normalize, bins, bos, seed, progress)

    def quantization_impact(self, text: str, bits=(16, 8, 4, 3, 2), scheme: str = "per-tensor",
                            symmetric: bool = False, int8: bool = True, top_k: int = 256, window: int = 1024,
                            bos: str | bool = "auto", progress: bool = False):
        """Perplexity and KL/same-top/Δp against this model for quantized weights (llama.cpp's statistics)."""
        from .evaluation.quantization import quantization_impact

        return quantization_impact(self.backend, text, bits, scheme, symmetric, int8, top_k,
                                   min(window, self.backend.capabilities.context_length), bos, progress)

    def truth(self, dataset=None, progress: bool = False):
        """Separate true from false statements of a pair dataset (default: the bundled one)."""
        from .confidence.truth import evaluate, load_pairs

        return evaluate(self.backend, load_pairs(dataset), progress)

    def heatmap_html(self, text: str, path, color_by: str = "prob", context: str | None = None,
                     bos: str | bool = "auto"):
        """Score ``text`` and write a self-contained HTML heatmap to ``path``."""
        from .views.heatmap import write_html

        return write_html(self.score(text, context=context, top_k=5, bos=bos), path, color_by)
