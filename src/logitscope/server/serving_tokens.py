"""``/v1/models``, ``/tokenize``, ``/detokenize``, ``/tokenizer_info`` (vLLM's field names,
which lm-eval's remote tokenizer reads)."""

from __future__ import annotations

from ..backends.base import Backend
from ..errors import InputError
from .engine import Engine, ModelWorker
from .errors import RequestError
from .protocol import (DetokenizeRequest, DetokenizeResponse, ModelCard, ModelList, TokenizeRequest,
                       TokenizeResponse, TokenizerInfo)
from .serving_common import as_request_error
from .tokens import chat_prompt, check_ids, text_prompt


def list_models(engine: Engine) -> ModelList:
    return ModelList(data=[ModelCard(id=name, created=engine.created, root=w.backend.name,
                                     max_model_len=w.backend.capabilities.context_length)
                            for name, w in engine.workers.items()])


async def tokenize(req: TokenizeRequest, worker: ModelWorker) -> TokenizeResponse:
    if (req.prompt is None) == (req.messages is None):
        raise RequestError("give exactly one of prompt or messages", param="prompt")

    def run(backend: Backend) -> TokenizeResponse:
        try:
            ids = (text_prompt(backend, req.prompt, req.add_special_tokens).ids if req.messages is None else
                   chat_prompt(backend, [m.model_dump(exclude_none=True) for m in req.messages],
                               req.add_generation_prompt).ids)
        except InputError as exc:
            raise as_request_error(exc, "prompt") from exc
        strs = [backend.token_text(i) for i in ids] if req.return_token_strs else None
        return TokenizeResponse(count=len(ids), max_model_len=backend.capabilities.context_length, tokens=ids,
                                token_strs=strs)

    return await worker.call(run)


async def detokenize(req: DetokenizeRequest, worker: ModelWorker) -> DetokenizeResponse:
    def run(backend: Backend) -> DetokenizeResponse:
        if req.tokens:
            try:
                check_ids(backend, req.tokens, "tokens")
            except InputError as exc:
                raise as_request_error(exc, "tokens") from exc
        return DetokenizeResponse(prompt=backend.detokenize(req.tokens) if req.tokens else "")

    return await worker.call(run)


async def tokenizer_info(worker: ModelWorker) -> TokenizerInfo:
    def run(backend: Backend) -> TokenizerInfo:
        ctx = backend.capabilities.context_length
        return TokenizerInfo(**backend.special_tokens(), chat_template=backend.chat_template,
                             model_max_length=ctx, max_model_len=ctx, vocab_size=backend.vocab_size)

    return await worker.call(run)
