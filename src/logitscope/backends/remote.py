"""A model behind an OpenAI-compatible HTTP server (vLLM, llama.cpp, llama-cpp-python,
logitscope serve) as a top-k-only backend.

    logitscope perplexity -m http://gpu-box:8000/v1 --concurrency 32 corpus.jsonl
    logitscope.load("http://127.0.0.1:8000/v1#my-model")          # URL#model-name

What the server can do is probed on connect (``probe``) and recorded in
``RemoteCapabilities`` (``logitscope info -m URL`` prints it); nothing is assumed:

    prompt scores   vLLM's prompt_logprobs (exact ranks), else echo + logprobs;
                    neither (llama.cpp refuses echo): scoring raises CapabilityError
    token ids       prompts are sent as token ids when the server takes them, so its
                    tokenizer cannot re-split them or add a BOS; otherwise as text, and
                    the echoed tokens are checked against the ids meant
    top-k cap       the most alternatives per position it returns (max_logprobs)
    values          raw log-probs, or processed ones (after temperature etc.)
    tokenizer       /tokenize + /detokenize (vLLM, llama.cpp, logitscope serve shapes)
                    or /extras/tokenize (llama-cpp-python)

Scoring maps onto the contract: ``score_positions`` (labelled top-k: rank k+1 = "> k"
unless the server gives exact ranks, entropy a lower bound), ``nll_sums`` (sums only),
``next_top_k``; ``next_logits`` raises CapabilityError (full_vocab). Work is split into
requests of about ``request_tokens`` tokens (several prompts per request) with
``concurrency`` of them in flight.
"""

from __future__ import annotations

import math
import re
from functools import cached_property

import torch

from ..errors import CapabilityError, InputError, ModelLoadError
from .base import Backend, PositionScores, Tokenized, check_start, missing_capability
from .remote_http import Http, Refused, RemoteSettings  # noqa: F401  (RemoteSettings: part of this API)
from .remote_probe import probe
from .remote_protocol import (RemoteError, choices_in_order, echo_rows, generated_top, position_scores,
                              prompt_logprob_rows)
from .topk import check_top_k

NO_PROMPT_SCORES = ("scoring the prompt's tokens needs prompt log-probs (echo or prompt_logprobs), "
                    "which {name} does not return")


def is_url(spec) -> bool:
    return isinstance(spec, str) and spec.lower().startswith(("http://", "https://"))


def split_url(url: str) -> tuple[str, str, str | None]:
    """``http://h:p/v1#name`` -> (root ``http://h:p``, api base ``/v1``, model name or None)."""
    base, _, name = url.partition("#")
    base = base.rstrip("/")
    m = re.match(r"^(https?://[^/]+)(/.*)?$", base, re.IGNORECASE)
    if not m:
        raise InputError(f"{url!r} is not an http(s) URL", hint="e.g. -m http://127.0.0.1:8000/v1")
    path = m.group(2) or "/v1"
    root_path = path[:-3] if path.endswith("/v1") else path
    return m.group(1) + root_path, path, name or None


def connect(url: str, **given) -> "RemoteBackend":
    """A backend over the server at ``url`` (``http(s)://host:port/v1[#model]``), probed; ``given``:
    RemoteSettings fields (api_key, concurrency, timeout...), unset ones from the environment."""
    return RemoteBackend(url, RemoteSettings.resolve(**given))


class RemoteTokenized(Tokenized):
    """Tokenized whose offsets are fetched only when someone reads them (perplexity never does)."""

    def __init__(self, text: str, ids: list[int], backend: "RemoteBackend"):
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "_backend", backend)

    @cached_property
    def offsets(self) -> list[tuple[int, int]]:
        return self._backend.offsets(self.text, self.ids)


class RemoteBackend(Backend):
    """Top-k-only backend over an OpenAI-compatible server (see the module docstring)."""

    engine = "remote"
    dtype = "unknown"  # whatever the server computes in

    def __init__(self, url: str, settings: RemoteSettings | None = None):
        self.settings = settings or RemoteSettings.resolve()
        root, self.api, wanted = split_url(url)
        self.url = url
        self.http = Http(root, self.settings)
        self.group_tokens = 2 * self.settings.concurrency * self.settings.request_tokens  # perplexity's batch
        self._texts: dict[int, str] = {}
        try:
            self.model, card = self._pick_model(wanted)
            self.name = f"{self.model} @ {root}"
            found = probe(self.http, self.api, self.model, self.name, card, self.settings.max_logprobs)
            self.capabilities, self.server_tokenizer = found.capabilities, found.tokenizer
            self.bos_token_id, self.eos_token_id = found.bos_token_id, found.eos_token_id
            self.vocab_size, self.adds_bos_by_default = found.vocab_size, found.adds_bos_by_default
        except Refused as exc:
            self.http.close()
            raise ModelLoadError(f"{url}: {exc.message}", hint="check the URL, the API key (--api-key) and that "
                                 "the server is OpenAI-compatible") from None
        except ModelLoadError:
            self.http.close()
            raise

    # -- connecting ------------------------------------------------------------------------------
    def _pick_model(self, wanted: str | None) -> tuple[str, dict]:
        listed = self.http.get(f"{self.api}/models").get("data")
        cards = [c for c in listed if isinstance(c, dict) and c.get("id")] if isinstance(listed, list) else []
        names = [str(c["id"]) for c in cards]
        if wanted is not None:
            if names and wanted not in names:
                raise ModelLoadError(f"the server at {self.url} does not serve {wanted!r}",
                                     hint=f"it serves: {', '.join(names)}")
            return wanted, next((c for c in cards if c["id"] == wanted), {})
        if len(names) != 1:
            raise ModelLoadError(f"the server at {self.url} lists {len(names)} models; name one",
                                 hint=f"append #NAME to the URL; served: {', '.join(names) or 'none'}")
        return names[0], cards[0]

    # -- tokenization ----------------------------------------------------------------------------
    def tokenize(self, text: str) -> Tokenized:
        return RemoteTokenized(text, self.server_tokenize(text, special=False) if text else [], self)

    def server_tokenize(self, text: str, special: bool) -> list[int]:
        return self.server_tokenizer.tokenize(text, special)

    def detokenize(self, ids: list[int]) -> str:
        return self.server_tokenizer.detokenize(ids)

    def token_text(self, token_id: int) -> str:
        tid = int(token_id)
        if tid not in self._texts:
            self._texts[tid] = self.detokenize([tid])
        return self._texts[tid]

    def token_texts(self, ids) -> list[str]:
        """Texts of many ids, the unknown ones fetched concurrently."""
        missing = list(dict.fromkeys(int(i) for i in ids if int(i) not in self._texts))
        for tid, text in zip(missing, self.http.map(lambda i: self.detokenize([i]), missing)):
            self._texts[tid] = text
        return [self._texts[int(i)] for i in ids]

    def offsets(self, text: str, ids: list[int]) -> list[tuple[int, int]]:
        """Character spans: each token's text found in ``text`` after the previous one (only
        whitespace skipped); where that fails, the lengths of decoded prefixes."""
        spans, at = [], 0
        for piece in self.token_texts(ids):
            p = text.find(piece, at) if piece else at
            if p < 0 or not text[at:p].isspace() and p != at:
                return self._prefix_offsets(text, ids)
            spans.append((p, p + len(piece)))
            at = p + len(piece)
        return spans

    def _prefix_offsets(self, text: str, ids: list[int]) -> list[tuple[int, int]]:
        ends = [min(len(s), len(text)) for s in self.http.map(lambda i: self.detokenize(ids[:i + 1]),
                                                               range(len(ids)))]
        starts = [0] + ends[:-1]
        return [(min(a, b), b) for a, b in zip(starts, ends)]

    def label_to_id(self, label: str) -> int:
        """A top-log-prob label as a token id (``ServerTokenizer.label_to_id``)."""
        return self.server_tokenizer.label_to_id(label)

    # -- scoring ---------------------------------------------------------------------------------
    def next_logits(self, prefixes: list[list[int]]) -> torch.Tensor:
        raise missing_capability(self, "full_vocab", "the full next-token distribution")

    def score_positions(self, sequences: list[list[int]], starts: list[int], top_k: int = 0) -> list[PositionScores]:
        check_top_k(self, top_k)
        k = self.capabilities.top_k_only  # all of them: the entropy bound uses every known entry
        return self._score(sequences, starts, k, lambda rows, seq, s: position_scores(rows, seq, s, k, top_k))

    def nll_sums(self, sequences: list[list[int]], starts: list[int]) -> list[float]:
        return self._score(sequences, starts, 0, lambda rows, seq, s: -math.fsum(r[0] for r in rows),
                           values_only=True)

    def token_logprobs(self, sequences: list[list[int]], starts: list[int]) -> list[torch.Tensor]:
        return self._score(sequences, starts, 0,
                           lambda rows, seq, s: torch.tensor([r[0] for r in rows], dtype=torch.float64),
                           values_only=True)

    def next_top_k(self, prefixes: list[list[int]], k: int) -> tuple[torch.Tensor, torch.Tensor]:
        check_top_k(self, k)
        caps = self.capabilities
        if caps.prompt_logprobs or caps.echo:  # the last row of prefix + a placeholder: exact prompt scores
            scores = self.score_positions([list(p) + [p[-1]] for p in prefixes], [len(p) for p in prefixes], k)
            return torch.cat([s.top_ids for s in scores]), torch.cat([s.top_logprobs for s in scores])
        rows = self.http.map(lambda p: self._generated_top(p, k), prefixes)
        return (torch.tensor([[i for i, _ in r] for r in rows], dtype=torch.long),
                torch.tensor([[lp for _, lp in r] for r in rows], dtype=torch.float64))

    def _generated_top(self, prefix: list[int], k: int) -> list[tuple[int, float]]:
        body = self.completion_body([prefix] if self.capabilities.token_id_prompts else [self.detokenize(prefix)],
                                    max_tokens=1, logprobs=k)
        top = generated_top(choices_in_order(self.http.post(f"{self.api}/completions", body), 1)[0],
                            self.label_to_id)
        if len(top) < k:
            raise RemoteError(f"the server returned {len(top)} alternatives where {k} were asked for",
                              hint=f"ask for fewer (the server's cap looks like {len(top)})")
        return top[:k]

    def _score(self, sequences, starts, k: int, reduce, values_only: bool = False) -> list:
        caps = self.capabilities
        if not (caps.prompt_logprobs or caps.echo):
            raise CapabilityError(NO_PROMPT_SCORES.format(name=self.name),
                                  hint="use vLLM, llama-cpp-python or logitscope serve (they echo prompt "
                                       "log-probs), or a local model")
        for seq, start in zip(sequences, starts):
            check_start(seq, start)
        groups = self._plan(sequences)
        done = self.http.map(lambda g: self._score_request([sequences[i] for i in g], [starts[i] for i in g],
                                                           k, reduce, values_only), groups)
        return [r for part in done for r in part]

    def _plan(self, sequences) -> list[list[int]]:
        """Indices packed into requests of about request_tokens tokens and max_prompts prompts."""
        groups, size = [[]], 0
        for i, seq in enumerate(sequences):
            if groups[-1] and (size + len(seq) > self.settings.request_tokens
                               or len(groups[-1]) >= self.settings.max_prompts):
                groups.append([])
                size = 0
            groups[-1].append(i)
            size += len(seq)
        return groups if groups[0] else []

    def _score_request(self, seqs, starts, k: int, reduce, values_only: bool = False) -> list:
        caps = self.capabilities
        prompts = seqs if caps.token_id_prompts else [self.text_prompt(s) for s in seqs]
        # values alone: echo asks the server for no ranks (vLLM's prompt_logprobs always ranks)
        use_prompt_logprobs = caps.prompt_logprobs and not (values_only and caps.echo)
        extra = {"prompt_logprobs": k} if use_prompt_logprobs else {"echo": True, "logprobs": k}
        body = self.completion_body(prompts, max_tokens=0 if caps.max_tokens_zero else 1, **extra)
        choices = choices_in_order(self.http.post(f"{self.api}/completions", body), len(seqs))
        out = []
        for choice, seq, start in zip(choices, seqs, starts):
            texts = None if caps.token_id_labels else self.token_texts(seq)  # the round trip, checked
            rows = (prompt_logprob_rows(choice, seq, start) if use_prompt_logprobs
                    else echo_rows(choice, seq, start, self.label_to_id, texts))
            out.append(reduce(rows, seq, start))
        return out

    def text_prompt(self, seq: list[int]) -> str:
        """A text prompt for a server that takes no ids: the prefix token is left to the server."""
        lead = 1 if self.adds_bos_by_default and seq and seq[0] == self.bos_token_id else 0
        if lead == 0 and self.adds_bos_by_default:
            raise CapabilityError(f"{self.name} takes only text prompts and adds a BOS token to each, so a "
                                  "sequence without one cannot be sent", hint="score with the BOS (--bos auto)")
        return self.detokenize(seq[lead:])

    def completion_body(self, prompts: list, max_tokens: int, **extra) -> dict:
        body = {"model": self.model, "prompt": prompts[0] if len(prompts) == 1 else prompts, "max_tokens": max_tokens, "temperature": 0.0, **extra}
        if self.capabilities.token_id_labels:
            body["return_tokens_as_token_ids"] = True
        return body

    def close(self) -> None:
        self.http.close()

