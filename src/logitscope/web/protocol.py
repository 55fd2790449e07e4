"""The web API's request bodies: validated here, so out-of-range values are HTTP 422 with a message.
Every text passes the text gate (``Text``); an optional context is null or visible text."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..core.processors import SamplerConfig
from ..server.protocol import Text

MAX_TEXT = 2_000_000  # characters


def _visible(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("give null for no context, or a context with visible text")
    return value


Context = Annotated[Text | None, AfterValidator(_visible)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, description="served model name; the first one when left out")


class SamplerFields(Body):
    temperature: float = Field(1.0, ge=0, le=100)
    top_k: int | None = Field(None, ge=1, le=1_000_000)
    top_p: float = Field(1.0, gt=0, le=1)
    min_p: float = Field(0.0, ge=0, le=1)
    repetition_penalty: float = Field(1.0, gt=0, le=100)
    bias: list[tuple[int | Text, float]] = Field(default_factory=list, max_length=256,
                                                description="[token id or string, value added to its logit]")

    def config(self) -> SamplerConfig:
        return SamplerConfig.of(self.temperature, self.top_k, self.top_p, self.min_p, self.repetition_penalty,
                                self.bias)


class ReadRequest(Body):
    text: Text = Field(max_length=MAX_TEXT)
    context: Context = Field(None, max_length=MAX_TEXT)
    top_k: int = Field(10, ge=0, le=50)
    max_prob_below: float | None = Field(0.1, ge=0, le=1)
    entropy_above: float | None = Field(4.0, ge=0)
    color_by: str = Field("prob", pattern="^(prob|rank|entropy|surprisal)$")
    palette: str = Field("viridis", pattern="^(viridis|classic)$", description="colour scale of the HTML heatmap")
    stream: bool = Field(False, description="answer JSON lines: job id, progress per window, then the result")


class PositionRequest(Body):
    ids: list[int] = Field(min_length=1, max_length=1_000_000)
    top: int = Field(50, ge=1, le=500)
    token_id: int | None = Field(None, ge=0, description="the token read here: its own row ('read'), whatever its rank")


class ContinueRequest(Body):
    ids: list[int] = Field(min_length=1, max_length=1_000_000)
    max_new_tokens: int = Field(20, ge=1, le=200)
    stream: bool = Field(False, description="answer JSON lines: job id, progress, then the result (cancellable)")


class ChainRequest(SamplerFields):
    prompt: Text = Field(max_length=MAX_TEXT)
    top: int = Field(20, ge=1, le=200)


class SampleRequest(SamplerFields):
    prompt: Text = Field(max_length=MAX_TEXT)
    n: int = Field(1000, ge=1, le=1_000_000)
    seed: int = Field(0, ge=0, le=2**31 - 1)


class StepStart(SamplerFields):
    prompt: Text = Field(max_length=MAX_TEXT)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    top: int = Field(20, ge=1, le=200)


class StepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token_id: int | None = Field(None, ge=0, description="force this token instead of drawing one")


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = Field(10, ge=1, le=4096)


class GotoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    node: int = Field(ge=0)


class TreeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    depth: int = Field(3, ge=1, le=8)
    branch: int = Field(3, ge=1, le=10)
    min_prob: float = Field(0.0, ge=0, le=1)
    stream: bool = Field(False, description="answer JSON lines: job id, progress, then the result (cancellable)")


class BeamRequest(Body):
    prompt: Text = Field(max_length=MAX_TEXT)
    num_beams: int = Field(4, ge=1, le=16)
    max_new_tokens: int = Field(12, ge=1, le=64)
    stream: bool = Field(False, description="answer JSON lines: job id, progress, then the result (cancellable)")


class RankRequest(Body):
    prompt: Text = Field(max_length=MAX_TEXT)
    candidates: list[Text] = Field(min_length=1, max_length=64)
    context: Context = Field(None, max_length=MAX_TEXT, description="a retrieved context: also show the lift")
    stream: bool = Field(False, description="answer JSON lines: job id, progress, then the result (cancellable)")
