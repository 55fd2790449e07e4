"""The transformers backend: any local causal LM, float32 on CPU by default.

Scoring never materialises logits for positions that are not scored: the
decoder runs once per batch, hidden states of the scored positions are gathered,
and only those are projected through the LM head, in chunks. When only the NLL
of the targets is needed (perplexity), the vocabulary is walked in blocks and
log Z is combined across blocks, so no (rows x V) logits matrix exists at all.

Llama-family models (Llama, Mistral, Qwen2, SmolLM) run these cache-free
forwards through ``fast_forward.FastForward``: the same modules and arithmetic,
in-place element-wise steps and block-causal attention; other models use
transformers' forward.
"""

from __future__ import annotations

import copy
import inspect
from functools import lru_cache

import torch

from ..core.boundary import check_fits
from .. import settings
from ..errors import InputError
from . import hf_tokenizer
from .base import Backend, Capabilities, DecodeState, PositionScores, Tokenized, check_start
from .blocked_head import blocked_nll, blocked_scores, blocked_top_k
from .fast_decode import StaticCacheDecoder, StaticCache
from .fast_decode import enabled as fast_decode_enabled
from .fast_forward import FastForward

TOKEN_BUDGET = 1024  # padded tokens per forward batch: on CPU, small batches of long windows run fastest
PROJECT_CHUNK = 512  # hidden rows projected to the vocabulary at once: 512 x V floats


class HFBackend(Backend):
    """Wraps a transformers ``*ForCausalLM`` model and its fast tokenizer."""

    name = "transformers"
    engine = "torch"

    def __init__(self, model, tokenizer, name: str | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name or getattr(model.config, "_name_or_path", "transformers")
        cfg = model.config
        self.vocab_size = model.get_output_embeddings().weight.shape[0]
        self.bos_token_id = tokenizer.bos_token_id
        self.eos_token_id = tokenizer.eos_token_id
        self.adds_bos_by_default = _tokenizer_adds_bos(tokenizer)
        n_ctx = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None) or 2048
        self.capabilities = Capabilities(full_vocab=True, context_length=int(n_ctx), kv_cache=True, weights=True,
                                         verify_rows=True)
        self.device = next(model.parameters()).device
        self.dtype = str(model.get_output_embeddings().weight.dtype).removeprefix("torch.")
        self._softcap = getattr(cfg, "final_logit_softcapping", None)
        self._pad = self.eos_token_id if self.eos_token_id is not None else 0
        # transformers 5 renamed past_key_values -> cache (argument and output)
        self.cache_arg = _cache_kwarg(model)
        self.token_text = lru_cache(maxsize=65536)(self._token_text)
        wanted = self.device.type == "cpu" and settings.fast_paths()
        self._fast_forward = FastForward.for_model(model) if wanted else None
        self._static_decoder = StaticCacheDecoder.for_model(model) if wanted and fast_decode_enabled() else None

    # -- tokenization -------------------------------------------------------------
    def tokenize(self, text: str) -> Tokenized:
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return Tokenized(text, list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]])

    def detokenize(self, ids: list[int]) -> str:
        return self.tokenizer.decode(list(ids), clean_up_tokenization_spaces=False)

    def _token_text(self, token_id: int) -> str:
        return self.tokenizer.decode([int(token_id)], clean_up_tokenization_spaces=False)

    def token_bytes(self, token_id: int) -> bytes:
        return hf_tokenizer.token_bytes(self.tokenizer, token_id, self.token_text(token_id))

    @property
    def chat_template(self) -> str | None:
        return getattr(self.tokenizer, "chat_template", None)

    def render_chat(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        if not self.chat_template:
            return super().render_chat(messages, add_generation_prompt)  # the CapabilityError
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt,
                                                  tokenize=False)

    def special_tokens(self) -> dict:
        return hf_tokenizer.special_tokens(self.tokenizer)

    # -- forward pieces ---------------------------------------------------------------
    def hidden_states(self, ids: torch.Tensor) -> torch.Tensor:
        """Final-layer hidden states (B, T, H) of a right-padded batch.

        Right padding needs no attention mask: attention is causal, so a real
        token never sees the pads after it, and positions start at 0 in every row.
        """
        decoder = self.model.get_decoder()
        fast = self._fast_forward  # built for the model this backend was made with; a copy with another model skips it
        if fast is not None and fast.inner is decoder and fast.covers(ids.shape[1]):
            return fast(ids.to(self.device))
        return decoder(input_ids=ids.to(self.device), use_cache=False).last_hidden_state

    def lm_head(self) -> torch.nn.Module:
        """The module mapping hidden rows to logits (before any soft-capping)."""
        return self.model.get_output_embeddings()

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """(N, H) -> (N, V) float32 logits through the LM head."""
        return self._cap(self.model.get_output_embeddings()(hidden).float())

    @property
    def torch_module(self) -> torch.nn.Module:
        return self.model

    def with_module(self, module: torch.nn.Module) -> "HFBackend":
        """A shallow copy running ``module`` (same tokenizer, capabilities and settings).
        The fast decoder belongs to the original model, so the copy uses ``module``'s own forward."""
        clone = copy.copy(self)
        clone.model = module.eval()
        clone.device = next(module.parameters()).device  # e.g. the CPU for int8 kernels of a CUDA model
        return clone

    def _cap(self, logits: torch.Tensor, in_place: bool = False) -> torch.Tensor:
        """Gemma-2-style tanh soft-capping of final logits, when the model has it."""
        if not self._softcap:
            return logits
        if in_place:
            return logits.div_(self._softcap).tanh_().mul_(self._softcap)
        return torch.tanh(logits / self._softcap) * self._softcap

    def _pad_batch(self, seqs: list[list[int]]) -> torch.Tensor:
        width = max(len(s) for s in seqs)
        out = torch.full((len(seqs), width), self._pad, dtype=torch.long)
        for i, s in enumerate(seqs):
            out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        return out  # (B, T)

    def _check_length(self, seq: list[int]) -> None:
        check_fits(self, len(seq), "a sequence", "score it in windows")

    # -- contract ---------------------------------------------------------------------
    @torch.inference_mode()
    def next_logits(self, prefixes: list[list[int]]) -> torch.Tensor:
        rows = []
        for batch in _batches(prefixes, TOKEN_BUDGET):
            for s in batch:
                self._check_length(prefixes[s])
            hidden = self.hidden_states(self._pad_batch([prefixes[s] for s in batch]))  # (B, T, H)
            last = torch.tensor([len(prefixes[s]) - 1 for s in batch])
            rows.extend(zip(batch, self.project(hidden[torch.arange(len(batch)), last])))
        rows.sort(key=lambda r: r[0])
        return torch.stack([r[1] for r in rows]).cpu()

    @torch.inference_mode()
    @torch.inference_mode()
    def score_positions(self, sequences: list[list[int]], starts: list[int], top_k: int = 0) -> list[PositionScores]:
        return self._scores(sequences, starts, top_k, stats=True)

    @torch.inference_mode()
    def scores_without_ranks(self, sequences: list[list[int]], starts: list[int], top_k: int = 0) -> list[PositionScores]:
        return self._scores(sequences, starts, top_k, stats=False)

    def _scores(self, sequences: list[list[int]], starts: list[int], top_k: int, stats: bool) -> list[PositionScores]:
        """Every batch's scored rows through the LM head together (one blocked walk per batch), then split."""
        results: list[PositionScores | None] = [None] * len(sequences)
        for seq, start in zip(sequences, starts):
            check_start(seq, start)
            self._check_length(seq)
        for batch in _batches(sequences, TOKEN_BUDGET):
            hidden = self.hidden_states(self._pad_batch([sequences[s] for s in batch]))  # (B, T, H)
            rows = torch.cat([hidden[r, starts[s] - 1: len(sequences[s]) - 1] for r, s in enumerate(batch)])  # (N, H)
            targets = torch.cat([torch.tensor(sequences[s][starts[s]:], dtype=torch.long) for s in batch])  # (N,)
            scores = self._position_scores(rows, targets, top_k, stats)
            for s, part in zip(batch, scores.split([len(sequences[s]) - starts[s] for s in batch])):
                results[s] = part
        return results  # type: ignore[return-value]

    def _position_scores(self, rows: torch.Tensor, targets: torch.Tensor, top_k: int,
                         stats: bool = True) -> PositionScores:
        """(N, H) hidden rows -> scores of (N,) targets: blocked over the vocabulary for a plain float32 or
        bfloat16 head (``blocked_head``; without ``stats`` no rank or entropy is counted), else full logits
        PROJECT_CHUNK rows at a time."""
        head = self.lm_head()
        if _blockable(head):
            reduce = blocked_scores if stats else blocked_top_k
            return reduce(rows, targets, top_k, head.weight, head.bias, self._cap)
        return PositionScores.concat([
            PositionScores.from_logits(self.project(rows[i:i + PROJECT_CHUNK]), targets[i:i + PROJECT_CHUNK], top_k)
            for i in range(0, len(targets), PROJECT_CHUNK)])

    @torch.inference_mode()
    def nll_sums(self, sequences: list[list[int]], starts: list[int]) -> list[float]:
        """Σ NLL of seq[start:] per sequence: float32 logits, float64 sums, no top-k.

        The last id of a sequence is only a target, so it is not fed; only hidden
        rows of scored positions reach the LM head (see ``_target_nll``).
        """
        sums = torch.zeros(len(sequences), dtype=torch.float64)
        for owner, nll in self._target_nlls(sequences, starts):
            sums.index_add_(0, owner, nll.double())  # pads never gathered
        return sums.tolist()

    @torch.inference_mode()
    def token_logprobs(self, sequences: list[list[int]], starts: list[int]) -> list[torch.Tensor]:
        """Per-token log-probs through the blocked NLL path (``_target_nll``): values only."""
        parts: list[list[torch.Tensor]] = [[] for _ in sequences]
        for owner, nll in self._target_nlls(sequences, starts):
            for i, chunk in zip(*_runs(owner, nll)):
                parts[i].append(-chunk.double())
        return [torch.cat(p) if p else torch.zeros(0, dtype=torch.float64) for p in parts]

    def _target_nlls(self, sequences: list[list[int]], starts: list[int]):
        """Yield (owner (N,), nll (N,)) per forward batch: the NLL of every scored target, in sequence order."""
        for seq, start in zip(sequences, starts):
            check_start(seq, start)
            self._check_length(seq[:-1])
        live = [i for i, (seq, start) in enumerate(zip(sequences, starts)) if start < len(seq)]
        inputs = [sequences[i][:-1] for i in live]  # feed ids[:-1]: row t predicts target t+1
        for batch in _batches(inputs, TOKEN_BUDGET):
            hidden = self.hidden_states(self._pad_batch([inputs[b] for b in batch]))  # (B, T, H), right padded
            rows = torch.cat([hidden[r, starts[live[b]] - 1: len(inputs[b])] for r, b in enumerate(batch)])  # (N, H)
            targets = torch.cat([torch.tensor(sequences[live[b]][starts[live[b]]:]) for b in batch])  # (N,)
            owner = torch.cat([torch.full((len(inputs[b]) + 1 - starts[live[b]],), live[b]) for b in batch])
            yield owner, self._target_nll(rows, targets)

    @torch.inference_mode()
    def _target_nll(self, rows: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N, H) hidden rows, (N,) targets -> (N,) float32 NLL = log Z - z[target]: blocked over the
        vocabulary for a plain float32 or bfloat16 head (``blocked_head.blocked_nll``), else full logits."""
        head = self.lm_head()
        if not _blockable(head):
            return self._target_nll_full(rows, targets)
        return blocked_nll(rows, targets, head.weight, head.bias, self._cap)

    def _target_nll_full(self, rows: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """As ``_target_nll`` for LM heads that are not a plain Linear: full logits, PROJECT_CHUNK rows at a time."""
        out = []
        for i in range(0, len(targets), PROJECT_CHUNK):
            logits = self.project(rows[i:i + PROJECT_CHUNK])  # (n, V) float32
            chunk = targets[i:i + PROJECT_CHUNK, None].to(logits.device)  # (n, 1)
            picked = logits.gather(-1, chunk).squeeze(-1)  # (n,)
            out.append((torch.logsumexp(logits, dim=-1) - picked).cpu())
        return torch.cat(out) if out else torch.zeros(0)

    # -- incremental decoding ----------------------------------------------------------
    # Llama-family models decode through ``fast_decode`` (a static KV cache, ``StaticCache``
    # in DecodeState.cache); others through transformers' own cache. ``extend_rows`` and
    # ``rewind`` are what speculative decoding needs: logits of every fed token, and a
    # cache rolled back to the accepted prefix.

    def _decoder_for(self, length: int) -> StaticCacheDecoder | None:
        """The fast decode path when it applies to a sequence of ``length`` tokens of this backend's model."""
        fast = self._static_decoder
        if fast is None or fast.inner is not self.model.get_decoder() or not fast.covers(length):
            return None
        return fast

    @torch.inference_mode()
    def prefill(self, ids: list[int]) -> DecodeState:
        if not ids:
            raise InputError("cannot decode from an empty prefix", hint="start from at least one token")
        self._check_length(list(ids))
        fast = self._decoder_for(len(ids))
        if fast is not None:
            cache = fast.new_cache(len(ids) + 64)
            return DecodeState(tuple(ids), fast.project(fast.step(cache, list(ids))[-1:])[0], cache)
        out = self.model(input_ids=torch.tensor([list(ids)], device=self.device), use_cache=True, logits_to_keep=1)
        return DecodeState(tuple(ids), out.logits[0, -1].float().cpu(), self.cache_of(out))

    @torch.inference_mode()
    def extend(self, state: DecodeState, new_ids: list[int]) -> DecodeState:
        return self.extend_rows(state, new_ids, all_rows=False)[0]

    @torch.inference_mode()
    def extend_rows(self, state: DecodeState, new_ids: list[int],
                    all_rows: bool = True) -> tuple[DecodeState, torch.Tensor]:
        """As ``extend``, plus the float32 logits after each new token: (T, V) (only the last row unless ``all_rows``)."""
        if state.cache is None:  # no cache to extend: a fresh prefill (and full passes for the earlier rows)
            ids = list(state.ids) + list(new_ids)
            fresh = self.prefill(ids)
            earlier = [ids[:n] for n in range(len(state.ids) + 1, len(ids))] if all_rows else []
            rows = [self.next_logits(earlier).float()] if earlier else []
            return fresh, torch.cat(rows + [fresh.logits[None]])
        self._check_length(list(state.ids) + list(new_ids))
        ids = state.ids + tuple(new_ids)
        if isinstance(state.cache, StaticCache):
            fast = self._decoder_for(len(ids))
            if fast is None:  # past a sliding window: transformers' cache from here on
                return self.extend_rows(DecodeState(state.ids, state.logits), new_ids, all_rows)
            hidden = fast.step(state.cache, list(new_ids))  # (T, H)
            logits = fast.project(hidden if all_rows else hidden[-1:])  # (T or 1, V)
            return DecodeState(ids, logits[-1], state.cache), logits
        out = self.model(input_ids=torch.tensor([list(new_ids)], device=self.device),
                         **{self.cache_arg: state.cache}, use_cache=True, logits_to_keep=0 if all_rows else 1)
        logits = out.logits[0].float().cpu()  # (T or 1, V)
        return DecodeState(ids, logits[-1], self.cache_of(out)), logits

    def rewind(self, state: DecodeState, length: int, logits: torch.Tensor | None = None) -> DecodeState:
        """The state of the first ``length`` ids of ``state`` (consumes its cache); ``logits`` (V,) are the
        logits after those ids when the caller has them (from ``extend_rows``), else one step recomputes them."""
        if logits is None:
            if length <= 1:
                return self.prefill(list(state.ids[:length]))
            return self.extend(self.rewind(state, length - 1, state.logits), [state.ids[length - 1]])
        cache = state.cache
        if isinstance(cache, StaticCache):
            cache.truncate(length)
        elif cache is not None and hasattr(cache, "crop"):
            extra = len(state.ids) - length
            if extra:
                cache.crop(-extra)  # a negative count: "drop that many" in every transformers version
        else:
            cache = None  # no cache to roll back: recompute from the ids
        return DecodeState(state.ids[:length], logits, cache)

    def cache_of(self, out):
        """The KV cache of a model output, under either transformers name."""
        return out.get(self.cache_arg)

    def fork(self, state: DecodeState) -> DecodeState:
        cache = state.cache.copy() if isinstance(state.cache, StaticCache) else copy.deepcopy(state.cache)
        return DecodeState(state.ids, state.logits.clone(), cache)

    @torch.inference_mode()
    def score_continuations(self, state: DecodeState, continuations: list[list[int]],
                            top_k: int = 0) -> list[PositionScores]:
        """Score continuations after a prefilled prefix, reusing its KV cache.

        The prefix cache is copied and expanded to a batch of right-padded
        continuations: one decoder pass per batch over the continuation tokens only.
        The first target of every continuation is scored by ``state.logits``.
        """
        if state.cache is None or not continuations:
            return super().score_continuations(state, continuations, top_k)
        for c in continuations:
            if not c:
                raise InputError("an empty continuation has nothing to score", hint="give at least one token")
            self._check_length(list(state.ids) + list(c))
        results: list[PositionScores | None] = [None] * len(continuations)
        rows = max(1, TOKEN_BUDGET // (len(state.ids) + max(len(c) for c in continuations)))  # prefix counts too
        order = sorted(range(len(continuations)), key=lambda i: -len(continuations[i]))
        for batch in (order[i:i + rows] for i in range(0, len(order), rows)):
            hidden = self._hidden_after(state, [continuations[s] for s in batch])  # (B, W, H)
            for row, s in enumerate(batch):
                cont = continuations[s]
                logits = torch.cat([state.logits.float()[None].to(hidden.device),
                                    self.project(hidden[row, : len(cont) - 1])])  # (n, V)
                results[s] = PositionScores.from_logits(logits, torch.tensor(cont, dtype=torch.long), top_k)
        return results  # type: ignore[return-value]

    def _hidden_after(self, state: DecodeState, conts: list[list[int]]) -> torch.Tensor:
        """Hidden states (B, W, H) of right-padded ``conts`` run after the cached prefix."""
        cache = _as_dynamic(state.cache) if isinstance(state.cache, StaticCache) \
            else copy.deepcopy(state.cache)  # the caller's state stays usable
        cache.batch_repeat_interleave(len(conts))  # (1, heads, P, d) -> (B, heads, P, d) per layer
        decoder = self.model.get_decoder()
        out = decoder(input_ids=self._pad_batch(conts).to(self.device), use_cache=True,
                      **{_cache_kwarg(decoder): cache})
        return out.last_hidden_state


def _blockable(head: torch.nn.Module) -> bool:
    """A plain Linear LM head in float32 or bfloat16: ``blocked_head`` walks it in vocabulary blocks."""
    return isinstance(head, torch.nn.Linear) and head.weight.dtype in (torch.float32, torch.bfloat16)


def _as_dynamic(cache: StaticCache):
    """A transformers DynamicCache holding a copy of a static cache's filled rows."""
    from transformers import DynamicCache

    out = DynamicCache()
    for index in range(cache.keys.shape[0]):
        keys, values = cache.layer(index, cache.length)  # (n_kv, P, D) views
        out.update(keys[None].clone(), values[None].clone(), index)  # (1, n_kv, P, D)
    return out


def _cache_kwarg(module) -> str:
    """The forward() keyword for a KV cache: ``cache`` in newer transformers, ``past_key_values`` before."""
    return "cache" if "cache" in inspect.signature(module.forward).parameters else "past_key_values"


def _tokenizer_adds_bos(tokenizer) -> bool:
    """Does the tokenizer put BOS in front by itself? (Asked, not assumed.)"""
    if tokenizer.bos_token_id is None:
        return False
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return len(ids) > 0 and ids[0] == tokenizer.bos_token_id


def _batches(seqs: list[list[int]], budget: int) -> list[list[int]]:
    """Group sequence indices, longest first, so that batch size x longest <= budget."""
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    batches, current = [], []
    for i in order:
        width = len(seqs[current[0]]) if current else len(seqs[i])
        if current and (len(current) + 1) * width > budget:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def _runs(owner: torch.Tensor, values: torch.Tensor) -> tuple[list[int], list[torch.Tensor]]:
    """Split ``values`` into consecutive runs of equal ``owner``: (owners, chunks)."""
    ids, counts = torch.unique_consecutive(owner, return_counts=True)
    return ids.tolist(), list(torch.split(values, counts.tolist()))

