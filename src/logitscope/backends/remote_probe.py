"""What a server can do, found out by asking it (each step one small request).

    1  /v1/models card         server kind (owned_by), context length (max_model_len,
                               llama.cpp's meta.n_ctx_train)
    2  tokenizer               /tokenize (vLLM, llama.cpp, logitscope) or /extras/tokenize
                               (llama-cpp-python); the BOS it adds to "" with special tokens;
                               EOS and vocabulary size from /tokenizer_info or /props
    3  completions             404: a chat-only server. Else, on a short prompt: token-id
                               prompts, prompt_logprobs, echo (+ max_tokens=0), id labels
    4  top-k cap               ask for max_logprobs alternatives; a refusal that names a
                               limit ("max allowed: 20", "limit of 5") is believed, then checked
    5  raw vs processed        the generated token's log-probs at temperature 0.5 vs 1:
                               equal means raw values

``probe`` returns what it found (``Probed``): the capabilities, the server's tokenizer
(``ServerTokenizer``: which endpoint, the ids it always adds) and the special tokens.
It writes nothing onto the backend; ``RemoteBackend`` takes the result.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from .base import Capabilities
from .remote_http import Http, Refused
from .remote_protocol import RemoteError, choices_in_order, generated_top, label_id

KINDS = {"vllm": "vllm", "llamacpp": "llama.cpp", "llama_cpp": "llama.cpp", "logitscope": "logitscope",
         "llama-cpp-python": "llama-cpp-python"}
DEFAULT_CONTEXT = 2048
PROBE_TEXT = "Hello world, this is a test."


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


@dataclass
class ServerTokenizer:
    """A server's tokenizer endpoints: ``/tokenize`` + ``/detokenize`` (vLLM, llama.cpp, logitscope serve
    shapes) or ``/extras/tokenize`` (llama-cpp-python, which puts ``always_added`` before any text)."""

    http: Http
    model: str
    path: str = "/tokenize"
    always_added: tuple[int, ...] = ()
    _label_ids: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def extras(self) -> bool:
        return self.path == "/extras/tokenize"

    def tokenize(self, text: str, special: bool) -> list[int]:
        if self.extras:  # always adds the model's BOS; dropped unless asked for
            body = self.http.post("/extras/tokenize", {"model": self.model, "input": text})
            lead, ids = list(self.always_added), body.get("tokens")
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
        body = self.http.post("/extras/detokenize" if self.extras else "/detokenize",
                              {"model": self.model, "tokens": list(ids)})
        text = next((body[k] for k in ("prompt", "content", "text") if isinstance(body.get(k), str)), None)
        if text is None:
            raise RemoteError("the server's detokenize answer has no text", hint="unknown /detokenize shape")
        return text

    def label_to_id(self, label: str) -> int:
        """A top-log-prob label as a token id: ``token_id:N``, else the one id its text tokenizes to."""
        tid = label_id(label)
        if tid is not None:
            return tid
        if label not in self._label_ids:
            ids = self.tokenize(label, special=False) if label else []
            if len(ids) != 1:
                raise RemoteError(f"cannot tell which token the server means by {label!r}",
                                  hint="use a server that labels tokens by id (vLLM, logitscope serve)")
            self._label_ids[label] = ids[0]
        return self._label_ids[label]


@dataclass(frozen=True)
class Probed:
    """What ``probe`` found out."""

    capabilities: RemoteCapabilities
    tokenizer: ServerTokenizer
    bos_token_id: int | None
    eos_token_id: int | None
    vocab_size: int
    adds_bos_by_default: bool


@dataclass
class _Probe:
    """The probe's working state: the server, its tokenizer, the notes so far."""

    http: Http
    api: str
    model: str
    name: str
    max_logprobs: int
    tokenizer: ServerTokenizer
    notes: list[str] = field(default_factory=list)
    probe_ids: list[int] = field(default_factory=list)
    bos: int | None = None

    def post(self, prompts: list, max_tokens: int, **extra) -> dict:
        body = {"model": self.model, "prompt": prompts[0] if len(prompts) == 1 else prompts,
                "max_tokens": max_tokens, "temperature": 0.0, **extra}
        return self.http.post(f"{self.api}/completions", body)


def probe(http: Http, api: str, model: str, name: str, card: dict, max_logprobs: int) -> Probed:
    """Ask the server what it can do (see the module docstring)."""
    p = _Probe(http, api, model, name, max_logprobs, ServerTokenizer(http, model))
    context, known = _context_length(card)
    server = KINDS.get(str(card.get("owned_by", "")).lower(), "unknown")
    special = _tokenizer(p, card)
    if not known:
        p.notes.append(f"the server does not say its context length; assuming {DEFAULT_CONTEXT}")
    found = _completions(p)
    caps = RemoteCapabilities(full_vocab=False, top_k_only=0, context_length=context, server=server,
                              tokenizer=p.tokenizer.path)
    return Probed(replace(caps, **found, notes=tuple(p.notes)), p.tokenizer, **special)


def _context_length(card: dict) -> tuple[int, bool]:
    """(the context length, whether the server said it)."""
    meta = card.get("meta") if isinstance(card.get("meta"), dict) else {}
    for value in (card.get("max_model_len"), meta.get("n_ctx"), meta.get("n_ctx_train")):
        if isinstance(value, int) and value > 1:
            return value, True
    return DEFAULT_CONTEXT, False


# -- tokenizer ------------------------------------------------------------------------------------

def _tokenizer(p: _Probe, card: dict) -> dict:
    """Find the tokenizer endpoint; return the special tokens and the vocabulary size."""
    ids = _find_endpoint(p)
    tok = p.tokenizer
    if tok.extras:  # llama-cpp-python adds its BOS to everything
        tok.always_added = tuple(tok.tokenize("", special=True))
        ids = tok.tokenize(PROBE_TEXT, special=False)
    p.probe_ids = ids if len(ids) >= 2 else [1, 2, 3]  # low ids exist in every vocabulary
    special = tok.tokenize(PROBE_TEXT if ids else "", special=True)
    added = special[:len(special) - len(ids)] if special[len(special) - len(ids):] == ids else []
    info = _tokenizer_info(p)
    found = {"adds_bos_by_default": len(added) == 1,
             "bos_token_id": added[0] if len(added) == 1 else _special_id(tok, info.get("bos_token")),
             "eos_token_id": _special_id(tok, info.get("eos_token")),
             "vocab_size": _vocab_size(info, card, p.notes)}
    p.bos = found["bos_token_id"]
    for name in ("bos", "eos"):
        if found[f"{name}_token_id"] is None:
            p.notes.append(f"the server does not say its {name.upper()} token")
    return found


def _find_endpoint(p: _Probe) -> list[int]:
    """Try /tokenize, then /extras/tokenize; the probe text's ids under the one that answers."""
    for path in ("/tokenize", "/extras/tokenize"):
        p.tokenizer.path = path
        try:
            return p.tokenizer.tokenize(PROBE_TEXT, special=False)
        except Refused as exc:
            if exc.status not in (404, 405):
                return []  # the endpoint exists but not for this text (e.g. a toy vocabulary)
    raise RemoteError(f"{p.name} has no tokenizer endpoint (/tokenize or /extras/tokenize)",
                      hint="logitscope works over token ids; use vLLM, llama.cpp, llama-cpp-python or "
                           "logitscope serve")


def _tokenizer_info(p: _Probe) -> dict:
    """vLLM's /tokenizer_info (logitscope serve; vLLM with --enable-tokenizer-info-endpoint), else
    llama.cpp's /props; {} when neither answers."""
    for path in ("/tokenizer_info", "/props"):
        try:
            return p.http.get(path)
        except Refused:
            continue
    return {}


def _special_id(tok: ServerTokenizer, text) -> int | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        ids = tok.tokenize(text, special=False)
    except Refused:
        return None
    return ids[0] if len(ids) == 1 else None


def _vocab_size(info: dict, card: dict, notes: list[str]) -> int:
    meta = card.get("meta") if isinstance(card.get("meta"), dict) else {}
    vocab = info.get("vocab_size") or meta.get("n_vocab")  # logitscope/vLLM tokenizer_info, llama.cpp's card
    if isinstance(vocab, int) and vocab > 0:
        return vocab
    notes.append("the server does not say its vocabulary size")
    return 0


# -- completions --------------------------------------------------------------------------------------

def _completions(p: _Probe) -> dict:
    ids = ([p.bos] if p.bos is not None else []) + p.probe_ids
    found = {"token_id_prompts": True}
    try:
        body = p.post([ids], max_tokens=1, logprobs=1, return_tokens_as_token_ids=True)
    except Refused as exc:
        if exc.status == 404:
            p.notes.append("no /v1/completions: a chat-only server gives no prompt or next-token scores")
            return {"chat_only": True}
        found["token_id_prompts"] = False
        p.notes.append(f"token-id prompts refused ({exc.detail}); text is sent and the round trip checked")
        body = p.post([p.tokenizer.detokenize(p.probe_ids)], max_tokens=1, logprobs=1,
                      return_tokens_as_token_ids=True)
    prompt = ids if found["token_id_prompts"] else p.tokenizer.detokenize(p.probe_ids)
    found["token_id_labels"] = _labels_are_ids(body)
    found.update(_prompt_scores(p, prompt, len(ids), found["token_id_labels"]))
    found["top_k_only"] = _top_k_cap(p, prompt, found)
    found["logprob_values"] = _values(p, prompt, found["top_k_only"], found["token_id_labels"])
    return found


def _labels_are_ids(body: dict) -> bool:
    """Does the server honour return_tokens_as_token_ids? (asked for in every probe below)."""
    try:
        lp = choices_in_order(body, 1)[0].get("logprobs") or {}
    except RemoteError:
        return False
    labels = lp.get("tokens") or []
    return bool(labels) and all(isinstance(t, str) and t.startswith("token_id:") for t in labels)


def _prompt_scores(p: _Probe, prompt, n: int, as_ids: bool) -> dict:
    """prompt_logprobs (and then whether max_tokens=0 is accepted), else echo with one
    generated token. max_tokens=0 is never tried with echo: llama-cpp-python reads it as
    "generate until the context is full"."""
    out = {"prompt_logprobs": False, "echo": False, "max_tokens_zero": False}
    for max_tokens in (1, 0):
        try:
            choice = choices_in_order(p.post([prompt], max_tokens=max_tokens, prompt_logprobs=1,
                                                 return_tokens_as_token_ids=True), 1)[0]
        except Refused:
            break
        ok = isinstance(choice.get("prompt_logprobs"), list) and len(choice["prompt_logprobs"]) == n
        out["prompt_logprobs" if max_tokens else "max_tokens_zero"] = ok
        if not ok:
            break
    try:
        choice = choices_in_order(p.post([prompt], max_tokens=1, echo=True, logprobs=1,
                                             return_tokens_as_token_ids=as_ids), 1)[0]
        out["echo"] = len((choice.get("logprobs") or {}).get("token_logprobs") or []) >= n
        reason = "the echoed log-probs do not cover the prompt"
        if out["echo"] and not _echo_aligned(p, prompt, choice, n, as_ids):
            out["echo"] = False
            reason = ("its echoed log-probs are shifted by one position (the value given for a prompt token "
                      "is the distribution after it, not before: llama-cpp-python does this)")
    except Refused as exc:
        reason = exc.detail
    if not out["echo"] and not out["prompt_logprobs"]:
        p.notes.append(f"no prompt log-probs: echo refused or ignored ({reason}); only next-token tables work")
    return out


def _echo_aligned(p: _Probe, prompt, choice: dict, n: int, as_ids: bool) -> bool:
    """Does the echo's entry for the last prompt token describe the distribution *before* it? Its best
    alternative must match the best next token after the prompt without its last token."""
    echoed = ((choice.get("logprobs") or {}).get("top_logprobs") or [None] * n)[n - 1]
    shorter = prompt[:-1] if isinstance(prompt, list) else p.tokenizer.detokenize(p.probe_ids[:-1])
    try:
        after = choices_in_order(p.post([shorter], max_tokens=1, logprobs=1, return_tokens_as_token_ids=as_ids),
                                 1)[0]
        best = max(lp for _, lp in generated_top(after, p.tokenizer.label_to_id))
    except (Refused, RemoteError, ValueError):
        return True  # nothing to compare with: keep what the server says
    if not isinstance(echoed, dict) or not echoed:
        return True
    return math.isclose(max(echoed.values()), best, abs_tol=1e-3)


LIMIT = re.compile(r"(?:max(?:imum)? allowed|limit(?: of| is)?|at most|<=|maximum(?: of| is)?)\D{0,12}(\d+)",
                   re.IGNORECASE)


def _top_k_cap(p: _Probe, prompt, found: dict) -> int:
    """The most alternatives per position this server returns (up to settings.max_logprobs)."""
    ask = p.max_logprobs
    field = "prompt_logprobs" if found.get("prompt_logprobs") else "logprobs"
    tried = set()
    while ask >= 1 and ask not in tried:
        tried.add(ask)
        try:
            body = p.post([prompt], max_tokens=1, logprobs=ask, return_tokens_as_token_ids=True,
                          **({field: ask} if field != "logprobs" else {}))
        except Refused as exc:
            m = LIMIT.search(exc.detail)
            ask = int(m.group(1)) if m and int(m.group(1)) < ask else ask // 2
            continue
        seen = len(generated_top(choices_in_order(body, 1)[0], p.tokenizer.label_to_id))
        if seen < ask:
            p.notes.append(f"asked for {ask} alternatives, got {seen}")
        return max(min(ask, seen), 0)
    p.notes.append("the server returns no alternatives (logprobs refused)")
    return 0


def _values(p: _Probe, prompt, k: int, as_ids: bool) -> str:
    """'raw' when the generated token's log-probs ignore the temperature, else 'processed'."""
    if k < 1:
        return "unknown"
    tops = []
    for temperature in (1.0, 0.5):
        try:
            body = p.http.post(f"{p.api}/completions", {
                "model": p.model, "prompt": prompt, "max_tokens": 1, "temperature": temperature,
                "logprobs": min(k, 5), "seed": 0, "return_tokens_as_token_ids": as_ids})
            tops.append(dict(generated_top(choices_in_order(body, 1)[0], p.tokenizer.label_to_id)))
        except (Refused, RemoteError):
            return "unknown"
    shared = set(tops[0]) & set(tops[1])
    if not shared:
        return "unknown"
    same = all(math.isclose(tops[0][i], tops[1][i], abs_tol=1e-4) for i in shared)
    return "raw" if same else "processed"

