"""The wire format of the OpenAI-compatible server, and nothing else.

Request and response models follow OpenAI's legacy completions and chat APIs and
vLLM's extensions (``prompt_logprobs``, ``return_tokens_as_token_ids``, ``top_k``,
``min_p``, ``repetition_penalty``, ``/tokenize``, ``/detokenize``, ``/tokenizer_info``).
Requests accept unknown fields (clients send ``user``, ``stream_options``...) and
reject NaN and infinities; every text passes the text gate (``Text``: a lone surrogate is
a 422 naming the field); range rules that depend on the model or on server limits are
checked where the request is served.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr

from ..core.textgate import valid_text

from ..core.processors import SamplerConfig

MAX_SEED = 2**64 - 1
Seed = Annotated[int, Field(ge=-(2**63), le=MAX_SEED)]
Text = Annotated[StrictStr, BeforeValidator(valid_text)]  # a string that passes the text gate
TokenIds = list[StrictInt]
Prompt = Text | list[Text] | TokenIds | list[TokenIds]


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class _Response(BaseModel):
    model_config = ConfigDict(ser_json_inf_nan="null")


# -- errors and models -------------------------------------------------------------------

class ErrorInfo(_Response):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(_Response):
    error: ErrorInfo


class ModelCard(_Response):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "logitscope"
    root: str | None = None
    max_model_len: int


class ModelList(_Response):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# -- sampling fields shared by both endpoints ---------------------------------------------

class StreamOptions(_Request):
    include_usage: bool = False


class _Sampling(_Request):
    model: str | None = None
    temperature: float = Field(1.0, ge=0, le=100)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int | None = Field(None, ge=-1)  # None, 0 and -1 all mean "off" (vLLM)
    min_p: float = Field(0.0, ge=0, le=1)
    repetition_penalty: float = Field(1.0, gt=0, le=100)
    presence_penalty: float = Field(0.0, ge=-2, le=2)  # only 0 is supported
    frequency_penalty: float = Field(0.0, ge=-2, le=2)  # only 0 is supported
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    seed: Seed | None = None
    stop: Text | list[Text] | None = None
    n: int = Field(1, ge=1, le=64)
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs_mode: Literal["raw", "processed"] = "raw"  # generated tokens: before or after the sampler chain

    def sampler(self, bias: dict[int, float] | None) -> SamplerConfig:
        """The sampling fields as the library's SamplerConfig (``bias``: the checked logit_bias ids)."""
        return SamplerConfig.of(self.temperature, self.top_k if self.top_k and self.top_k > 0 else None, self.top_p,
                                self.min_p, self.repetition_penalty, bias or {})


# -- /v1/completions -----------------------------------------------------------------------

class CompletionRequest(_Sampling):
    prompt: Prompt
    max_tokens: int | None = Field(16, ge=0)
    echo: bool = False
    logprobs: int | None = Field(None, ge=0)
    prompt_logprobs: int | None = Field(None, ge=0)
    return_tokens_as_token_ids: bool = False
    add_special_tokens: bool = True  # False: the prompt gets no prefix (BOS) token
    best_of: int | None = Field(None, ge=1)
    suffix: str | None = None


class CompletionLogprobs(_Response):
    text_offset: list[int]
    token_logprobs: list[float | None]
    tokens: list[str]
    top_logprobs: list[dict[str, float] | None]


class PromptLogprob(_Response):
    logprob: float
    rank: int
    decoded_token: str


class CompletionChoice(_Response):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: Literal["stop", "length"] | None = None
    stop_reason: int | str | None = None
    prompt_logprobs: list[dict[str, PromptLogprob] | None] | None = None


class Usage(_Response):
    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int


class CompletionResponse(_Response):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    logprobs_mode: Literal["raw", "processed"] = "raw"


# -- /v1/chat/completions --------------------------------------------------------------------

class TextPart(_Request):
    type: Literal["text"]
    text: Text


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Text | list[TextPart] | None = None


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    add_generation_prompt: bool = True


class TopLogprob(_Response):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob] = []


class ChoiceLogprobs(_Response):
    content: list[TokenLogprob] | None = None


class AssistantMessage(_Response):
    role: Literal["assistant"] = "assistant"
    content: str | None = None


class ChatChoice(_Response):
    index: int
    message: AssistantMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: Literal["stop", "length"] | None = None
    stop_reason: int | str | None = None


class ChatCompletionResponse(_Response):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    logprobs_mode: Literal["raw", "processed"] = "raw"


class DeltaMessage(_Response):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(_Response):
    index: int
    delta: DeltaMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(_Response):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


# -- tokenizer endpoints (vLLM's field names; lm-eval's remote tokenizer reads them) -------------

class TokenizeRequest(_Request):
    model: str | None = None
    prompt: Text | None = None
    messages: list[ChatMessage] | None = None
    add_special_tokens: bool = True
    add_generation_prompt: bool = True
    return_token_strs: bool = False


class TokenizeResponse(_Response):
    count: int
    max_model_len: int
    tokens: list[int]
    token_strs: list[str] | None = None


class DetokenizeRequest(_Request):
    model: str | None = None
    tokens: TokenIds


class DetokenizeResponse(_Response):
    prompt: str


class TokenizerInfo(_Response):
    model_config = ConfigDict(extra="allow")
    tokenizer_class: str
    eos_token: str | None
    bos_token: str | None
    pad_token: str | None
    chat_template: str | None
    model_max_length: int
    max_model_len: int
    vocab_size: int
