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
"""

from __future__ import annotations

import math
import re

from .remote_http import Refused
from .remote_protocol import RemoteError, choices_in_order, generated_top

KINDS = {"vllm": "vllm", "llamacpp": "llama.cpp", "llama_cpp": "llama.cpp", "logitscope": "logitscope",
         "llama-cpp-python": "llama-cpp-python"}


def probe(backend, card: dict) -> None:
    """Fill in backend.capabilities, bos/eos/vocab_size and adds_bos_by_default."""
    from .remote import DEFAULT_CONTEXT, RemoteCapabilities

    notes: list[str] = []
    context = _context_length(backend, card, notes)
    backend.capabilities = RemoteCapabilities(full_vocab=False, top_k_only=0, context_length=context,
                                              server=KINDS.get(str(card.get("owned_by", "")).lower(), "unknown"))
    _tokenizer(backend, card, notes)
    if context == DEFAULT_CONTEXT and backend._context_unknown:
        notes.append(f"the server does not say its context length; assuming {DEFAULT_CONTEXT}")
    found = _completions(backend, notes)
    backend.capabilities = _replace(backend.capabilities, **found, notes=tuple(notes))


def _replace(caps, **changes):
    from dataclasses import replace

    return replace(caps, **changes)


def _context_length(backend, card: dict, notes: list[str]) -> int:
    from .remote import DEFAULT_CONTEXT

    meta = card.get("meta") if isinstance(card.get("meta"), dict) else {}
    for value in (card.get("max_model_len"), meta.get("n_ctx"), meta.get("n_ctx_train")):
        if isinstance(value, int) and value > 1:
            backend._context_unknown = False
            return value
    backend._context_unknown = True
    return DEFAULT_CONTEXT


# -- tokenizer ------------------------------------------------------------------------------------

def _tokenizer(backend, card: dict, notes: list[str]) -> None:
    ids = None
    for path in ("/tokenize", "/extras/tokenize"):
        backend.capabilities = _replace(backend.capabilities, tokenizer=path)
        try:
            ids = backend.server_tokenize(PROBE_TEXT, special=False)
            break
        except Refused as exc:
            if exc.status not in (404, 405):
                ids = []  # the endpoint exists but not for this text (e.g. a toy vocabulary)
                break
    if ids is None:
        raise RemoteError(f"{backend.name} has no tokenizer endpoint (/tokenize or /extras/tokenize)",
                          hint="logitscope works over token ids; use vLLM, llama.cpp, llama-cpp-python or "
                               "logitscope serve")
    if backend.capabilities.tokenizer == "/extras/tokenize":  # llama-cpp-python adds its BOS to everything
        backend.always_added = backend.server_tokenize("", special=True)
        ids = backend.server_tokenize(PROBE_TEXT, special=False)
    backend.probe_ids = ids if len(ids) >= 2 else [1, 2, 3]  # low ids exist in every vocabulary
    special = backend.server_tokenize(PROBE_TEXT if ids else "", special=True)
    added = special[:len(special) - len(ids)] if special[len(special) - len(ids):] == ids else []
    backend.adds_bos_by_default = len(added) == 1
    info = _tokenizer_info(backend)
    backend.bos_token_id = added[0] if len(added) == 1 else _special_id(backend, info.get("bos_token"))
    backend.eos_token_id = _special_id(backend, info.get("eos_token"))
    backend.vocab_size = _vocab_size(info, card, notes)
    for name in ("bos", "eos"):
        if getattr(backend, f"{name}_token_id") is None:
            notes.append(f"the server does not say its {name.upper()} token")


def _tokenizer_info(backend) -> dict:
    """vLLM's /tokenizer_info (logitscope serve; vLLM with --enable-tokenizer-info-endpoint), else
    llama.cpp's /props; {} when neither answers."""
    for path in ("/tokenizer_info", "/props"):
        try:
            return backend.http.get(path)
        except Refused:
            continue
    return {}


def _special_id(backend, text) -> int | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        ids = backend.server_tokenize(text, special=False)
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

PROBE_TEXT = "Hello world, this is a test."


def _completions(backend, notes: list[str]) -> dict:
    ids = ([backend.bos_token_id] if backend.bos_token_id is not None else []) + backend.probe_ids
    found = {"token_id_prompts": True}
    try:
        body = _post(backend, [ids], max_tokens=1, logprobs=1, return_tokens_as_token_ids=True)
    except Refused as exc:
        if exc.status == 404:
            notes.append("no /v1/completions: a chat-only server gives no prompt or next-token scores")
            return {"chat_only": True}
        found["token_id_prompts"] = False
        notes.append(f"token-id prompts refused ({exc.detail}); text is sent and the round trip checked")
        body = _post(backend, [backend.detokenize(backend.probe_ids)], max_tokens=1, logprobs=1,
                     return_tokens_as_token_ids=True)
    prompt = ids if found["token_id_prompts"] else backend.detokenize(backend.probe_ids)
    found["token_id_labels"] = _labels_are_ids(body)
    found.update(_prompt_scores(backend, prompt, len(ids), found["token_id_labels"], notes))
    found["top_k_only"] = _top_k_cap(backend, prompt, found, notes)
    found["logprob_values"] = _values(backend, prompt, found["top_k_only"], found["token_id_labels"])
    return found


def _post(backend, prompts: list, max_tokens: int, **extra) -> dict:
    body = {"model": backend.model, "prompt": prompts[0] if len(prompts) == 1 else prompts,
            "max_tokens": max_tokens, "temperature": 0.0, **extra}
    return backend.http.post(f"{backend.api}/completions", body)


def _labels_are_ids(body: dict) -> bool:
    """Does the server honour return_tokens_as_token_ids? (asked for in every probe below)."""
    try:
        lp = choices_in_order(body, 1)[0].get("logprobs") or {}
    except RemoteError:
        return False
    labels = lp.get("tokens") or []
    return bool(labels) and all(isinstance(t, str) and t.startswith("token_id:") for t in labels)


def _prompt_scores(backend, prompt, n: int, as_ids: bool, notes: list[str]) -> dict:
    """prompt_logprobs (and then whether max_tokens=0 is accepted), else echo with one
    generated token. max_tokens=0 is never tried with echo: llama-cpp-python reads it as
    "generate until the context is full"."""
    out = {"prompt_logprobs": False, "echo": False, "max_tokens_zero": False}
    for max_tokens in (1, 0):
        try:
            choice = choices_in_order(_post(backend, [prompt], max_tokens=max_tokens, prompt_logprobs=1,
                                            return_tokens_as_token_ids=True), 1)[0]
        except Refused:
            break
        ok = isinstance(choice.get("prompt_logprobs"), list) and len(choice["prompt_logprobs"]) == n
        out["prompt_logprobs" if max_tokens else "max_tokens_zero"] = ok
        if not ok:
            break
    try:
        choice = choices_in_order(_post(backend, [prompt], max_tokens=1, echo=True, logprobs=1,
                                        return_tokens_as_token_ids=as_ids), 1)[0]
        out["echo"] = len((choice.get("logprobs") or {}).get("token_logprobs") or []) >= n
        reason = "the echoed log-probs do not cover the prompt"
        if out["echo"] and not _echo_aligned(backend, prompt, choice, n, as_ids):
            out["echo"] = False
            reason = ("its echoed log-probs are shifted by one position (the value given for a prompt token "
                      "is the distribution after it, not before: llama-cpp-python does this)")
    except Refused as exc:
        reason = exc.detail
    if not out["echo"] and not out["prompt_logprobs"]:
        notes.append(f"no prompt log-probs: echo refused or ignored ({reason}); only next-token tables work")
    return out


def _echo_aligned(backend, prompt, choice: dict, n: int, as_ids: bool) -> bool:
    """Does the echo's entry for the last prompt token describe the distribution *before* it? Its best
    alternative must match the best next token after the prompt without its last token."""
    echoed = ((choice.get("logprobs") or {}).get("top_logprobs") or [None] * n)[n - 1]
    shorter = prompt[:-1] if isinstance(prompt, list) else backend.detokenize(backend.probe_ids[:-1])
    try:
        after = choices_in_order(_post(backend, [shorter], max_tokens=1, logprobs=1,
                                       return_tokens_as_token_ids=as_ids), 1)[0]
        best = max(lp for _, lp in generated_top(after, backend.label_to_id))
    except (Refused, RemoteError, ValueError):
        return True  # nothing to compare with: keep what the server says
    if not isinstance(echoed, dict) or not echoed:
        return True
    return math.isclose(max(echoed.values()), best, abs_tol=1e-3)


LIMIT = re.compile(r"(?:max(?:imum)? allowed|limit(?: of| is)?|at most|<=|maximum(?: of| is)?)\D{0,12}(\d+)",
                   re.IGNORECASE)


def _top_k_cap(backend, prompt, found: dict, notes: list[str]) -> int:
    """The most alternatives per position this server returns (up to settings.max_logprobs)."""
    ask = backend.settings.max_logprobs
    field = "prompt_logprobs" if found.get("prompt_logprobs") else "logprobs"
    tried = set()
    while ask >= 1 and ask not in tried:
        tried.add(ask)
        try:
            body = _post(backend, [prompt], max_tokens=1, logprobs=ask, return_tokens_as_token_ids=True,
                         **({field: ask} if field != "logprobs" else {}))
        except Refused as exc:
            m = LIMIT.search(exc.detail)
            ask = int(m.group(1)) if m and int(m.group(1)) < ask else ask // 2
            continue
        seen = len(generated_top(choices_in_order(body, 1)[0], backend.label_to_id))
        if seen < ask:
            notes.append(f"asked for {ask} alternatives, got {seen}")
        return max(min(ask, seen), 0)
    notes.append("the server returns no alternatives (logprobs refused)")
    return 0


def _values(backend, prompt, k: int, as_ids: bool) -> str:
    """'raw' when the generated token's log-probs ignore the temperature, else 'processed'."""
    if k < 1:
        return "unknown"
    tops = []
    for temperature in (1.0, 0.5):
        try:
            body = backend.http.post(f"{backend.api}/completions", {
                "model": backend.model, "prompt": prompt, "max_tokens": 1, "temperature": temperature,
                "logprobs": min(k, 5), "seed": 0, "return_tokens_as_token_ids": as_ids})
            tops.append(dict(generated_top(choices_in_order(body, 1)[0], backend.label_to_id)))
        except (Refused, RemoteError):
            return "unknown"
    shared = set(tops[0]) & set(tops[1])
    if not shared:
        return "unknown"
    same = all(math.isclose(tops[0][i], tops[1][i], abs_tol=1e-4) for i in shared)
    return "raw" if same else "processed"

