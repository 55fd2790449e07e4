"""Reading OpenAI-compatible responses into the backend contract (pure: no HTTP).

Three shapes of per-token log-probs reach us from ``/v1/completions``:

    legacy echo      {"logprobs": {"tokens": [...], "token_logprobs": [null, -1.2, ...],
                                   "top_logprobs": [null, {"token_id:11": -0.3, ...}, ...]}}
                     OpenAI, vLLM, llama-cpp-python, logitscope serve. Labels are token
                     texts, or ``token_id:<id>`` with vLLM's return_tokens_as_token_ids.
    prompt_logprobs  {"prompt_logprobs": [null, {"11": {"logprob": -1.2, "rank": 3,
                                                        "decoded_token": " cat"}, ...}, ...]}
                     vLLM (and logitscope serve): keyed by id, with the exact rank.
    chat-shaped      {"logprobs": {"content": [{"id": 11, "token": " cat", "logprob": -1.2,
                                                "top_logprobs": [{"id", "token", "logprob"}]}]}}
                     llama.cpp's /v1/completions: generated tokens only (it refuses echo).

Values at or below -9999 are clamped log(0) (OpenAI/vLLM write -9999.0): they become -inf.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..core import mathops
from ..errors import ModelLoadError
from .base import PositionScores

CLAMPED = -9999.0
LabelToId = Callable[[str], int]


class RemoteError(ModelLoadError):
    """The server failed, answered something unusable, or could not be reached."""


def logprob(value) -> float:
    """A wire log-prob as a float: None/garbage is an error, the -9999 clamp is -inf."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RemoteError(f"the server sent {value!r} where a log-probability belongs",
                          hint="the server's log-prob output is not in the OpenAI format")
    return -math.inf if value <= CLAMPED else float(value)


def label_id(label: str) -> int | None:
    """``token_id:123`` -> 123 (vLLM's return_tokens_as_token_ids), else None."""
    if label.startswith("token_id:") and label[9:].lstrip("-").isdigit():
        return int(label[9:])
    return None


def error_message(status: int, body) -> str:
    """One line from any error body: OpenAI/llama.cpp ``{"error": {...}}``, vLLM's flat
    ``{"object": "error", "message", "code": 400}``, FastAPI's ``{"detail"}`` or raw text."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or body.get("detail")
        else:
            msg = err
        if msg:
            return " ".join(str(msg).split())[:300]
    text = " ".join(str(body or "").split())
    return text[:300] if text else f"HTTP {status}"


def choices_in_order(body, count: int) -> list[dict]:
    """The response's choices sorted by index; exactly ``count`` of them (one per prompt)."""
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise RemoteError("the server's completion response has no choices list",
                          hint="check that the URL points at an OpenAI-compatible /v1 endpoint")
    if len(choices) != count:
        raise RemoteError(f"the server returned {len(choices)} choices for {count} prompts",
                          hint="the server does not answer a list of prompts one choice each")
    return sorted(choices, key=lambda c: c.get("index", 0))


# -- scored prompts -------------------------------------------------------------------------------

def sorted_top(entries: dict, to_id: LabelToId) -> list[tuple[int, float]]:
    """A ``{label: logprob}`` dict as (id, logprob) pairs, most likely first."""
    pairs = [(to_id(label), logprob(v)) for label, v in entries.items()]
    return sorted(pairs, key=lambda p: -p[1])


def echo_rows(choice: dict, seq: list[int], start: int, to_id: LabelToId,
              texts: list[str] | None = None) -> list[tuple[float, list]]:
    """(log p(seq[t]), top pairs) for t >= start from a legacy echo choice; ``texts``: the
    token texts the echo must show (for servers whose labels are texts, not ids)."""
    lp = choice.get("logprobs")
    if not isinstance(lp, dict) or not isinstance(lp.get("token_logprobs"), list):
        raise RemoteError("the server echoed no prompt log-probs", hint="it may not support echo with logprobs")
    values, tops, tokens = lp["token_logprobs"], lp.get("top_logprobs") or [], lp.get("tokens") or []
    if len(values) < len(seq) or len(tokens) < len(seq):
        raise RemoteError(f"the server returned {len(values)} token log-probs for a {len(seq)}-token prompt",
                          hint="the server re-tokenized the prompt or does not echo it; use token-id prompts")
    check_echoed_ids(tokens[:len(seq)], seq)
    for t, (label, want) in enumerate(zip(tokens, texts or [])):
        if label != want:
            raise RemoteError(f"the server tokenized the text prompt differently: token {t} is {label!r} where "
                              f"{want!r} was meant", hint="this server takes only text prompts; use one that "
                              "accepts token ids (vLLM, logitscope serve) for these texts")
    rows = []
    for t in range(start, len(seq)):
        top = tops[t] if t < len(tops) and isinstance(tops[t], dict) else {}
        rows.append((logprob(values[t]), sorted_top(top, to_id)))
    return rows


def check_echoed_ids(labels: list, seq: list[int]) -> None:
    """Where the echo names ids, they must be the ids sent (no re-split, no added BOS)."""
    for t, (label, want) in enumerate(zip(labels, seq)):
        got = label_id(label) if isinstance(label, str) else None
        if got is not None and got != want:
            raise RemoteError(f"the server scored token id {got} at position {t} where {want} was sent",
                              hint="the server changed the prompt (re-tokenized it or added a BOS token)")


def prompt_logprob_rows(choice: dict, seq: list[int], start: int) -> list[tuple[float, int, list]]:
    """(log p(seq[t]), exact rank, top pairs) for t >= start from vLLM's ``prompt_logprobs``."""
    pl = choice.get("prompt_logprobs")
    if not isinstance(pl, list) or len(pl) != len(seq):
        n = len(pl) if isinstance(pl, list) else 0
        raise RemoteError(f"the server returned prompt_logprobs for {n} tokens of a {len(seq)}-token prompt",
                          hint="the server re-tokenized the prompt or does not return prompt_logprobs")
    rows = []
    for t in range(start, len(seq)):
        entry = pl[t]
        mine = entry.get(str(seq[t])) if isinstance(entry, dict) else None
        if not isinstance(mine, dict):
            raise RemoteError(f"prompt_logprobs at position {t} does not include the prompt token {seq[t]}",
                              hint="the server changed the prompt (re-tokenized it or added a BOS token)")
        top = sorted(((int(key), logprob(v.get("logprob")), v.get("rank", 10**9)) for key, v in entry.items()
                      if isinstance(v, dict) and str(key).lstrip("-").isdigit()), key=lambda e: (e[2], -e[1]))
        rank = mine.get("rank")
        rows.append((logprob(mine.get("logprob")), int(rank) if isinstance(rank, int) else 0,
                     [(i, lp) for i, lp, _ in top]))
    return rows


def position_scores(rows: list, seq: list[int], start: int, k: int, keep: int) -> PositionScores:
    """PositionScores from parsed rows (2-tuples from echo, 3-tuples with an exact rank).

    Rank without the server's own rank: the target's place in the top k, else k+1
    ("beyond the top k"). Entropy: the lower bound from the top k and the rest of the mass
    (from fewer entries where the server sent fewer; NaN with none).
    """
    n = len(rows)
    lps = torch.tensor([r[0] for r in rows], dtype=torch.float64)  # (N,)
    top = torch.full((n, k), -math.inf, dtype=torch.float64)  # (N, k)
    ids = torch.zeros((n, k), dtype=torch.long)
    ranks, short = [], []
    for r, row in enumerate(rows):
        pairs = row[-1][:k]  # most likely first; a target beyond the top k sorts after them
        for j, (tid, lp) in enumerate(pairs):
            ids[r, j], top[r, j] = tid, lp
        place = next((j + 1 for j, (tid, _) in enumerate(pairs) if tid == seq[start + r]), k + 1)
        ranks.append(row[1] if len(row) == 3 and row[1] > 0 else place)
        if len(pairs) < k:
            short.append((r, len(pairs)))
    entropy = mathops.entropy_lower_bound(top) if k else torch.full((n,), math.nan, dtype=torch.float64)
    for r, m in short:
        entropy[r] = mathops.entropy_lower_bound(top[r, :m]) if m else math.nan
    return PositionScores(lps, torch.tensor(ranks, dtype=torch.long), entropy, ids[:, :keep], top[:, :keep])


# -- the next token (generated, not echoed) ------------------------------------------------------

def generated_top(choice: dict, to_id: LabelToId) -> list[tuple[int, float]]:
    """The first generated token's alternatives, most likely first (legacy or chat-shaped)."""
    lp = choice.get("logprobs")
    if isinstance(lp, dict) and isinstance(lp.get("content"), list) and lp["content"]:
        first = lp["content"][0]  # llama.cpp: chat-shaped log-probs on /v1/completions
        alts = first.get("top_logprobs") or []
        pairs = [(int(a["id"]) if isinstance(a.get("id"), int) else to_id(str(a.get("token", ""))),
                  logprob(a.get("logprob"))) for a in alts if isinstance(a, dict)]
        return sorted(pairs, key=lambda p: -p[1])
    if isinstance(lp, dict) and isinstance(lp.get("top_logprobs"), list) and lp["top_logprobs"]:
        entry = lp["top_logprobs"][-1]
        if isinstance(entry, dict):
            return sorted_top(entry, to_id)
    raise RemoteError("the server returned no log-probs for the generated token",
                      hint="the server may not support logprobs on /v1/completions")
