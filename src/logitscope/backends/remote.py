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
import os
import re
from dataclasses import dataclass
from functools import cached_property

import torch

from ..errors import CapabilityError, InputError, ModelLoadError
from .base import Backend, Capabilities, PositionScores, Tokenized, check_start, missing_capability
from .remote_http import Http, HttpSettings, Refused
from .remote_protocol import (RemoteError, choices_in_order, echo_rows, generated_top, label_id, position_scores,
                              prompt_logprob_rows)
from .topk import check_top_k
from ..validation import remote_settings

API_KEY_ENV = "LOGITSCOPE_API_KEY"
ENV_NAMES = {"api_key": API_KEY_ENV, "concurrency": "LOGITSCOPE_CONCURRENCY", "timeout": "LOGITSCOPE_TIMEOUT"}
DEFAULT_CONTEXT = 2048
PROBE_TEXT = "Hello world, this is a test."
NO_PROMPT_SCORES = ("scoring the prompt's tokens needs prompt log-probs (echo or prompt_logprobs), "
                    "which {name} does not return")


def is_url(spec) -> bool:
    return isinstance(spec, str) and spec.lower().startswith(("http://", "https://"))


@dataclass(frozen=True)
class RemoteSettings:
    """How to talk to a server (CLI: --api-key, --concurrency, --timeout; env: LOGITSCOPE_*)."""

    api_key: str | None = None
    concurrency: int = 8
    timeout: float = 600.0
    retries: int = 4
    request_tokens: int = 4096  # tokens per request (several prompts packed into one)
    max_prompts: int = 64  # prompts per request
    max_logprobs: int = 20  # never ask for more alternatives than this

    @staticmethod
    def from_env(**given) -> "RemoteSettings":
        env = os.environ
        try:
            values = {"api_key": env.get(API_KEY_ENV, "").strip() and env[API_KEY_ENV] or None,  # blank: unset
                      "concurrency": int(env.get("LOGITSCOPE_CONCURRENCY") or 8),
                      "timeout": float(env.get("LOGITSCOPE_TIMEOUT") or 600)}
        except ValueError:
            raise InputError("LOGITSCOPE_CONCURRENCY or LOGITSCOPE_TIMEOUT is not a number",
                             hint="e.g. LOGITSCOPE_CONCURRENCY=8 LOGITSCOPE_TIMEOUT=600") from None
        values = remote_settings(ENV_NAMES, **values) | remote_settings(None, **{k: v for k, v in given.items()
                                                                               if v is not None})
        return RemoteSettings(**values)


@dataclass(frozen=True)
class RemoteCapabilities(Capabilities):
    """Capabilities plus what the probe found out about the server."""

    server: str = "unknown"  # vllm | llama.cpp | llama-cpp-python | logitscope | unknown (from /v1/models)
    prompt_logprobs: bool = False  # vLLM's prompt_logprobs field (ids and exact ranks)
    echo: bool = False  # echo + logprobs returns the prompt's log-probs
    token_id_prompts: bool = False  # prompts may be lists of token ids
    token_id_labels: bool = False  # return_tokens_as_token_ids (top entries keyed by id)
    max_tokens_zero: bool = False  # max_tokens=0 accepted (score without generating)
    logprob_values: str = "unknown"  # raw | processed | unknown
    tokenizer: str | None = None  # /tokenize | /extras/tokenize | None
    chat_only: bool = False  # no /v1/completions
    notes: tuple[str, ...] = ()

    def describe(self) -> dict:
        extra = {f: getattr(self, f) for f in ("server", "prompt_logprobs", "echo", "token_id_prompts",
                                               "token_id_labels", "max_tokens_zero", "logprob_values",
                                               "tokenizer", "chat_only")}
        return super().describe() | extra | {"notes": list(self.notes)}


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


def connect(url: str, **settings) -> "RemoteBackend":
    """A backend over the server at ``url`` (``http(s)://host:port/v1[#model]``), probed."""
    return RemoteBackend(url, RemoteSettings.from_env(**settings))


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

    def __init__(self, url: str, settings: RemoteSettings | None = None):
        self.settings = settings or RemoteSettings.from_env()
        root, self.api, wanted = split_url(url)
        self.url = url
        self.http = Http(root, HttpSettings(self.settings.api_key, self.settings.concurrency, self.settings.timeout,
                                            self.settings.retries))
        self.group_tokens = 2 * self.settings.concurrency * self.settings.request_tokens  # perplexity's batch
        self._texts: dict[int, str] = {}
        self.always_added: list[int] = []  # ids the server's /extras/tokenize puts before any text
        self._label_ids: dict[str, int] = {}
        try:
            self.model, card = self._pick_model(wanted)
            self.name = f"{self.model} @ {root}"
            from .remote_probe import probe

            probe(self, card)
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
        caps = self.capabilities
        if caps.tokenizer == "/extras/tokenize":  # always adds the model's BOS; dropped unless asked for
            body = self.http.post("/extras/tokenize", {"model": self.model, "input": text})
            lead = self.always_added
            ids = body.get("tokens")
            if not special and lead and isinstance(ids, list) and ids[:len(lead)] == lead:
                body = {"tokens": ids[len(lead):]}
        else:
            body = self.http.post("/tokenize", {"model": self.model, "prompt": text, "content": text,
                                                "add_special_tokens": special, "add_special": special})
        ids = body.get("tokens")
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise RemoteError("the server's tokenize answer has no list of token ids",
                              hint="this server's /tokenize has an unknown shape")
        return ids

    def detokenize(self, ids: list[int]) -> str:
        if not ids:
            return ""
        if self.capabilities.tokenizer == "/extras/tokenize":
            body = self.http.post("/extras/detokenize", {"model": self.model, "tokens": list(ids)})
        else:
            body = self.http.post("/detokenize", {"model": self.model, "tokens": list(ids)})
        text = next((body[k] for k in ("prompt", "content", "text") if isinstance(body.get(k), str)), None)
        if text is None:
            raise RemoteError("the server's detokenize answer has no text", hint="unknown /detokenize shape")
        return text

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
        """A top-log-prob label as a token id: ``token_id:N``, else the one id its text tokenizes to."""
        tid = label_id(label)
        if tid is not None:
            return tid
        if label not in self._label_ids:
            ids = self.server_tokenize(label, special=False) if label else []
            if len(ids) != 1:
                raise RemoteError(f"cannot tell which token the server means by {label!r}",
                                  hint="use a server that labels tokens by id (vLLM, logitscope serve)")
            self._label_ids[label] = ids[0]
        return self._label_ids[label]

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

