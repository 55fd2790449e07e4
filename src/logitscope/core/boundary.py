"""Every boundary rule lives here: prefix (BOS) policy, the context/continuation
split, the logits/labels shift and windowing.

Shift. A target token at index t is predicted from ids[:t]; the logits row that
scores it is the one computed at index t-1:

    ids:      [p]   The  capital  of  France  is
    index:     0     1      2      3     4     5
    predicts:  The capital  of  France  is    <next>
    target t is scored by row t-1, so index 0 can only be scored if a
    prefix token p (BOS, or EOS when there is none) sits in front of it.

Prefix policy (``bos``): "auto" follows the tokenizer's own convention
(SmolLM2 adds nothing, so its first text token is not scored), True always
prepends the prefix token (every text token scored, lm-evaluation-harness
style), False never does. The result records what happened. ``bos=True`` on a
model with neither a BOS nor an EOS token is an InputError everywhere
(``prefix_ids``). A prompt whose next token is wanted goes through
``prompt_ids``; the empty prompt, where allowed (generation), is the prefix
token alone.

Context window. Every analysis checks a sequence against the model's context
with ``check_fits`` (one message: what, how many tokens, the limit, what to do);
``resolve_window`` is the one rule for a user's ``window``: None means the
model's context, otherwise 2 <= window <= context.

Context split. ``context + continuation`` is tokenized as one string, so the
model sees its natural tokenization. Trailing whitespace of the context moves
to the continuation first (" Paris" is one token, so "is " + "Paris" becomes
"is" + " Paris"). Continuation tokens are those whose character span ends past
the context; a token that starts inside the context and ends inside the
continuation *merges* across the boundary: it is scored as part of the
continuation and the result says ``boundary_merged=True``.

Windows (texts longer than the model's context). Each target is scored once,
with as much left context as the window allows:

    tokens   0 1 2 3 4 5 6 7 8 9 ...
    win 1   [0 1 2 3 4 5 6 7]            scores 1..7 (or 0..7 with a prefix)
    win 2           [4 5 6 7 8 9 ...]    scores 8..11 (stride 4, window 8)
    stride == window degrades to disjoint windows that overlap by one token,
    so the first token of each window is still predicted from its left neighbour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InputError, check_range

if TYPE_CHECKING:  # only the attributes are used; core/ imports no backend code
    from ..backends.base import Backend


def prefix_token_id(backend: "Backend") -> int | None:
    """The token put in front of a text: BOS, else EOS (lm-evaluation-harness's rule)."""
    return backend.bos_token_id if backend.bos_token_id is not None else backend.eos_token_id


def wants_prefix(backend: "Backend", bos: str | bool) -> bool:
    if bos == "auto":
        return backend.adds_bos_by_default
    if isinstance(bos, bool):
        return bos
    raise InputError(f"unknown prefix policy bos={bos!r}", hint="use 'auto', True or False")


def prefix_ids(backend: "Backend", bos: str | bool) -> list[int]:
    """``[prefix token]`` when the policy wants one, else ``[]``; an error when it is wanted but missing."""
    if not wants_prefix(backend, bos):
        return []
    prefix = prefix_token_id(backend)
    if prefix is None:
        raise InputError("this model has no BOS or EOS token to use as a prefix", hint="use bos=False (--bos never)")
    return [prefix]


def prompt_ids(backend: "Backend", prompt: str, bos: str | bool = "auto", allow_empty: bool = False) -> list[int]:
    """Ids the model sees before the token to predict, prefix policy applied.

    With ``allow_empty`` the empty prompt is the prefix token alone (BOS, else EOS),
    so generation can show what the model says unprompted.
    """
    if allow_empty and prompt == "":
        lead = prefix_token_id(backend)
        if lead is None:
            raise InputError("empty prompt and the model has no BOS/EOS token to start from",
                             hint="give a non-empty prompt")
        return [lead]
    require_text(prompt, "prompt")
    return prefix_ids(backend, bos) + backend.tokenize(prompt).ids


def check_fits(backend: "Backend", n_tokens: int, what: str, hint: str) -> None:
    """InputError unless ``n_tokens`` positions fit the model's context window."""
    limit = backend.capabilities.context_length
    if n_tokens > limit:
        raise InputError(f"{what} is {n_tokens} tokens, more than the model's context of {limit}", hint=hint)


def resolve_window(backend: "Backend", window: int | None) -> int:
    """The window to use: None means the model's context; otherwise 2 <= window <= context."""
    limit = backend.capabilities.context_length
    return limit if window is None else check_range("window", window, 2, limit)


def split_context(context: str, continuation: str) -> tuple[str, str]:
    """Move trailing whitespace of the context to the front of the continuation."""
    stripped = context.rstrip()
    return stripped, context[len(stripped):] + continuation


def require_text(text: str, what: str = "text") -> None:
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"the {what} is empty or only whitespace", hint=f"give a non-empty {what}")


@dataclass(frozen=True)
class Encoded:
    """A text ready for the model: ids, offsets, roles and where scoring starts."""

    context: str | None
    text: str  # the continuation (after the whitespace move)
    ids: list[int]
    offsets: list[tuple[int, int]]  # into context + text; (0, 0) for the prefix token
    roles: list[str]  # "prefix" | "context" | "text"
    score_from: int  # first scored index; every index >= score_from is scored
    prefix_token_id: int | None
    boundary_merged: bool

    @property
    def first_token_scored(self) -> bool:
        return self.score_from <= self.roles.index("text")


def encode(backend: "Backend", text: str, context: str | None = None, bos: str | bool = "auto") -> Encoded:
    """Tokenize ``context + text`` once and decide which tokens are scored."""
    require_text(text)
    if context:
        context, text = split_context(context, text)
    full = (context or "") + text
    tok = backend.tokenize(full)
    cut = len(context or "")
    first = next((i for i, (_, end) in enumerate(tok.offsets) if end > cut), None)  # first continuation token
    if first is None:
        raise InputError("the continuation produced no tokens", hint="check the text's characters")
    merged = cut > 0 and tok.offsets[first][0] < cut
    use_prefix = wants_prefix(backend, bos)
    if not use_prefix and first == 0 and (context or len(tok.ids) == 1) and bos == "auto":
        use_prefix = True  # nothing would be scored otherwise; recorded in the result
    lead = prefix_ids(backend, use_prefix)
    prefix = lead[0] if lead else None
    ids = lead + tok.ids
    roles = ["prefix"] * len(lead) + ["context" if i < first else "text" for i in range(len(tok.ids))]
    score_from = len(lead) + max(first, 0 if use_prefix else 1)
    if score_from >= len(ids):
        raise InputError("nothing to score: the text is a single token and no prefix token is used",
                         hint="score a longer text or pass bos=True")
    return Encoded(context, text, ids, [(0, 0)] * len(lead) + list(tok.offsets), roles,
                   score_from, prefix, merged)


@dataclass(frozen=True)
class Window:
    begin: int  # the model sees ids[begin:end]
    end: int
    first_target: int  # targets ids[first_target:end] are scored in this window


def plan_windows(n_tokens: int, score_from: int, window: int, stride: int | None = None) -> list[Window]:
    """Cover targets score_from..n_tokens-1 exactly once with windows of <= ``window`` ids."""
    if window < 2:
        raise InputError(f"window={window} is too small", hint="a window needs at least 2 tokens")
    if score_from >= window:
        raise InputError(f"the context is {score_from} tokens (prefix token included) and the window is {window}: "
                         "no room is left for the text", hint=f"shorten the context to under {window} tokens, or score it as part of the text")
    stride = window // 2 if stride is None else stride
    if not 1 <= stride <= window:
        raise InputError(f"stride={stride} is out of range", hint=f"stride must be in [1, {window}]")
    windows, begin = [], 0
    end = min(window, n_tokens)
    windows.append(Window(0, end, score_from))
    while end < n_tokens:
        begin = min(begin + stride, end - 1)  # keep >= 1 token of left context for the first target
        new_end = min(begin + window, n_tokens)
        windows.append(Window(begin, new_end, end))
        end = new_end
    return windows


def plan_disjoint_windows(n_tokens: int, score_from: int, window: int) -> list[Window]:
    """lm-evaluation-harness's rolling windows (``get_rolling_token_windows`` with
    context_len=1, then ``make_disjoint_window``), in the ids-per-window terms used
    here (lm-eval's max_length = window - 1 fed tokens, plus the last target):

        ids      p 0 1 2 3 4 5 6 7 8 9 10 11 12
        win 1   [p 0 1 2 3]                      scores 0..3
        win 2          [3 4 5 6 7]               scores 4..7 (one token of context)
        win 3                [7 8 9 10 11]       scores 8..11
        win 4                   [9 10 11 12]  -> widened to [8 9 10 11 12]: scores 12 only

    Every window is plan_windows(stride=window) except the last, which lm-eval
    widens to a full window of left context while scoring only its new targets.
    """
    windows = plan_windows(n_tokens, score_from, window, window)
    if len(windows) > 1:
        windows[-1] = Window(max(0, n_tokens - window), n_tokens, windows[-1].first_target)
    return windows


def plan_llamacpp_chunks(n_tokens: int, window: int) -> list[Window]:
    """llama.cpp's ``perplexity`` tool: disjoint chunks of ``window`` (n_ctx) ids, a
    trailing partial chunk dropped, only targets after the first half scored:

        chunk    [c0 c1 ... c(n/2) | c(n/2+1) ... c(n-1)]
                  context only        scored: n - n//2 - 1 targets per chunk

    With a prefix token, llama.cpp overwrites each chunk's first id with BOS
    (see ``llamacpp_chunk_ids``).
    """
    if window < 2:
        raise InputError(f"window={window} is too small", hint="a window needs at least 2 tokens")
    return [Window(b, b + window, b + window // 2 + 1) for b in range(0, n_tokens - window + 1, window)]


def llamacpp_chunk_ids(ids: list[int], prefix: int | None) -> list[int]:
    """A chunk as llama.cpp feeds it: the first id replaced by the prefix token (if any)."""
    return ids if prefix is None else [prefix] + list(ids[1:])
