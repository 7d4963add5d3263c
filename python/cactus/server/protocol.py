"""The OpenAI wire format: request and response schemas, and nothing else.

Requests accept (and ignore) fields this server has no use for, so that real clients work unmodified;
fields whose meaning we cannot honour are rejected with a 400 rather than silently dropped.
"""
# Pydantic evaluates these annotations at runtime; on Python 3.9 that needs typing's spellings.
# ruff: noqa: UP006, UP007, UP035, UP045

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Dict, FrozenSet, List, Literal, Optional, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)

Role = Literal["system", "developer", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls"]

# The engine's limits (csrc/include/cactus.h, csrc/options.c), so that the schema allows only what it takes.
MAX_TOKENS = 1 << 24  # max_tokens and top_k
MAX_MESSAGES = 4096  # CACTUS_MAX_MESSAGES
MAX_TOOLS = 128  # CACTUS_MAX_TOOLS
# CACTUS_MAX_STOP_BYTES is 256 bytes; 64 characters are at most 256 bytes of UTF-8 whatever they are.
Stop = Annotated[str, Field(max_length=64)]
# A prompt or a text to embed: the empty string has no tokens to condition on (with no BOS) or to pool,
# and the C API takes these as NUL-terminated text, so a NUL cannot be passed (a chat message can: its
# JSON escapes it).
NonEmpty = Annotated[str, Field(min_length=1, pattern=r"^[^\x00]*$")]


class _Request(BaseModel):
    """A request object. Strict: a value must have the JSON type the schema gives ("16" is not an
    integer, 1 is not a boolean), so the server accepts exactly what its OpenAPI schema describes."""

    model_config = ConfigDict(extra="ignore", strict=True)


def _json_integer(value: Any) -> Any:
    """JSON Schema's integer: 2.0 is one (strict pydantic would refuse it), "2" and true are not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The integer fields of requests. The bounds come before the validator, so that the JSON schema states
# them as minimum / maximum.
_AS_INTEGER = BeforeValidator(_json_integer)
Int = Annotated[int, _AS_INTEGER]
Tokens = Annotated[int, Field(ge=1, le=MAX_TOKENS), _AS_INTEGER]
TopK = Annotated[int, Field(ge=0, le=MAX_TOKENS), _AS_INTEGER]
Choices = Annotated[int, Field(ge=1, le=8), _AS_INTEGER]
BestOf = Annotated[int, Field(ge=1, le=1), _AS_INTEGER]
Dimensions = Annotated[int, Field(ge=1), _AS_INTEGER]


def _exactly(value: Any, kind: type) -> Any:
    """For a Literal of False or 0: Python's False == 0 would let the other type through."""
    value = _json_integer(value) if kind is int else value
    if value is not None and type(value) is not kind:
        raise ValueError(f"must be {'a boolean' if kind is bool else 'an integer'}")
    return value


class _Response(BaseModel):
    """A response object; the fields named in ``omit_when_none`` are left out rather than sent as null,
    as OpenAI does."""

    model_config = ConfigDict(extra="forbid")
    omit_when_none: ClassVar[FrozenSet[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _omit_nones(self, handler: Any):  # unannotated, so the JSON schema stays the model's
        data = handler(self)
        if isinstance(data, dict):
            for key in self.omit_when_none:
                if key in data and data[key] is None:
                    del data[key]
        return data


# ---- errors ---------------------------------------------------------------------------------------------


class ErrorBody(_Response):
    message: str
    type: str
    param: Optional[str] = None
    code: Optional[str] = None


class ErrorResponse(_Response):
    error: ErrorBody


# ---- chat completions: request --------------------------------------------------------------------------


class ContentPart(_Request):
    type: Literal["text"] = Field(description="Only text parts are supported.")
    text: str


class FunctionCall(BaseModel):
    name: str
    arguments: str = Field(description="The call's arguments, a JSON object serialised as a string.")


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


# What _content_needed checks, said in the schema too, so that a request the schema allows is one the
# server accepts: content given and not null, unless an assistant message carries tool calls.
# Tool calls, in turn, belong to assistant messages only (the engine's rule, csrc/chat.c).
_CONTENT_OR_CALLS = {
    "anyOf": [
        {"required": ["content"], "properties": {"content": {"not": {"type": "null"}}}},
        {
            "required": ["role", "tool_calls"],
            "properties": {"role": {"const": "assistant"}, "tool_calls": {"type": "array", "minItems": 1}},
        },
    ],
    "if": {"required": ["role"], "properties": {"role": {"not": {"const": "assistant"}}}},
    "then": {"properties": {"tool_calls": {"anyOf": [{"type": "null"}, {"type": "array", "maxItems": 0}]}}},
}


class ChatMessage(_Request):
    model_config = ConfigDict(json_schema_extra=_CONTENT_OR_CALLS)  # merged with _Request's

    role: Role
    content: Optional[Union[str, List[ContentPart]]] = None
    name: Optional[str] = None
    tool_calls: Optional[List[ToolCall]] = None
    tool_call_id: Optional[str] = None

    @model_validator(mode="after")
    def _content_needed(self) -> ChatMessage:
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError(f"a {self.role} message needs 'content'")
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"a {self.role} message cannot have tool_calls (only assistant messages)")
        return self


class FunctionDefinition(_Request):
    name: str = Field(min_length=1, max_length=64)
    description: Optional[str] = None
    parameters: Optional[Dict[str, Any]] = None
    strict: Optional[bool] = None


class Tool(_Request):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class NamedFunction(_Request):
    name: str


class NamedToolChoice(_Request):
    type: Literal["function"] = "function"
    function: NamedFunction


ToolChoice = Union[Literal["none", "auto", "required"], NamedToolChoice]


class StreamOptions(_Request):
    include_usage: bool = False


class ResponseFormat(_Request):
    type: Literal["text"] = Field(description="Only plain text answers are supported.")


class SamplingRequest(_Request):
    """Fields shared by chat and text completions."""

    model: str = Field(description="A model id from GET /v1/models.")
    max_tokens: Optional[Tokens] = Field(default=None, description="Most tokens to generate per choice.")
    temperature: Optional[float] = Field(default=None, ge=0, le=2, description="0 is greedy.")
    top_p: Optional[float] = Field(default=None, ge=0, le=1)
    top_k: Optional[TopK] = Field(default=None, description="Extension: top-k sampling (0 = off).")
    min_p: Optional[float] = Field(default=None, ge=0, le=1, description="Extension: min-p sampling.")
    repetition_penalty: Optional[float] = Field(default=None, ge=1e-3, le=100, description="Extension.")
    n: Choices = Field(default=1, description="How many choices to generate.")
    stop: Optional[Union[Stop, Annotated[List[Stop], Field(max_length=4)]]] = Field(
        default=None, description="Up to 4 stop sequences."
    )
    seed: Optional[Int] = None
    stream: bool = False
    stream_options: Optional[StreamOptions] = None
    zone: Optional[str] = Field(
        default=None, description="Extension: where to run (this server's zone when omitted, or a peer's)."
    )
    user: Optional[str] = None
    frequency_penalty: Optional[float] = Field(
        default=None, ge=-2, le=2, description="Accepted, not applied."
    )
    presence_penalty: Optional[float] = Field(default=None, ge=-2, le=2, description="Accepted, not applied.")

    def stop_sequences(self) -> List[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class ChatCompletionRequest(SamplingRequest):
    # The half of _check_tool_choice a schema can say (tool_choice "required" needs tools); the other
    # half, a named tool_choice must be one of the tools, relates two values and no schema can.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"tool_choice": {"const": "required"}}, "required": ["tool_choice"]},
            "then": {"required": ["tools"], "properties": {"tools": {"type": "array", "minItems": 1}}},
        }
    )

    messages: List[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_completion_tokens: Optional[Tokens] = Field(default=None, description="Preferred to max_tokens.")
    tools: Optional[List[Tool]] = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: Optional[ToolChoice] = None
    parallel_tool_calls: Optional[bool] = None
    response_format: Optional[ResponseFormat] = None
    logprobs: Optional[Literal[False]] = Field(
        default=None, description="Log-probabilities are not supported."
    )

    @field_validator("logprobs", mode="before")
    @classmethod
    def _logprobs_is_a_bool(cls, v: Any) -> Any:
        return _exactly(v, bool)

    @model_validator(mode="after")
    def _check_tool_choice(self) -> ChatCompletionRequest:
        if isinstance(self.tool_choice, NamedToolChoice):
            names = {t.function.name for t in self.tools or []}
            if self.tool_choice.function.name not in names:
                raise ValueError(
                    f"tool_choice names {self.tool_choice.function.name!r}, which is not in tools"
                )
        elif self.tool_choice == "required" and not self.tools:
            raise ValueError("tool_choice 'required' needs tools")
        return self


# ---- chat completions: response -------------------------------------------------------------------------


class ResponseMessage(_Response):
    omit_when_none = frozenset({"tool_calls"})
    role: Literal["assistant"] = "assistant"
    content: Optional[str] = None
    tool_calls: Optional[List[ToolCall]] = None


class ChatChoice(_Response):
    index: int
    message: ResponseMessage
    logprobs: None = None
    finish_reason: FinishReason


class PromptTokensDetails(_Response):
    cached_tokens: int = Field(description="Prompt tokens whose KV cache was reused, not recomputed.")


class Usage(_Response):
    omit_when_none = frozenset({"prompt_tokens_details"})
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: Optional[PromptTokensDetails] = None


class ChatCompletionResponse(_Response):
    omit_when_none = frozenset({"system_fingerprint"})
    id: str = Field(description="chatcmpl-…")
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: Optional[str] = None
    choices: List[ChatChoice]
    usage: Usage


class ToolCallDelta(_Response):
    omit_when_none = frozenset({"id", "type", "function"})
    index: int
    id: Optional[str] = None
    type: Optional[Literal["function"]] = None
    function: Optional[FunctionCall] = None


class Delta(_Response):
    omit_when_none = frozenset({"role", "content", "tool_calls"})
    role: Optional[Literal["assistant"]] = None
    content: Optional[str] = None
    tool_calls: Optional[List[ToolCallDelta]] = None


class ChunkChoice(_Response):
    index: int
    delta: Delta
    logprobs: None = None
    finish_reason: Optional[FinishReason] = None


class ChatCompletionChunk(_Response):
    """One server-sent event of a streamed chat completion (``data: {...}``; the stream ends with
    ``data: [DONE]``)."""

    omit_when_none = frozenset({"system_fingerprint"})

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: Optional[str] = None
    choices: List[ChunkChoice]
    usage: Optional[Usage] = None


# ---- text completions -----------------------------------------------------------------------------------


class CompletionRequest(SamplingRequest):
    prompt: Union[NonEmpty, Annotated[List[NonEmpty], Field(min_length=1, max_length=16)]] = Field(
        description="A prompt or a list of 1 to 16 prompts, each non-empty (token ids unsupported)."
    )
    max_tokens: Optional[Tokens] = Field(default=16, description="Most tokens to generate per choice.")
    echo: bool = False
    suffix: Optional[Literal[""]] = Field(default=None, description="Insertion is not supported.")
    logprobs: Optional[Literal[0]] = Field(default=None, description="Log-probabilities are not supported.")
    best_of: Optional[BestOf] = Field(default=None, description="Only 1 is supported.")

    @field_validator("logprobs", mode="before")
    @classmethod
    def _logprobs_is_an_int(cls, v: Any) -> Any:
        return _exactly(v, int)

    def prompts(self) -> List[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class CompletionChoice(_Response):
    index: int
    text: str
    logprobs: None = None
    finish_reason: Optional[FinishReason] = None


class CompletionResponse(_Response):
    omit_when_none = frozenset({"system_fingerprint"})
    """A text completion; streamed, each server-sent event is one of these with partial ``text``."""

    id: str = Field(description="cmpl-…")
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    system_fingerprint: Optional[str] = None
    choices: List[CompletionChoice]
    usage: Optional[Usage] = None


# ---- embeddings -----------------------------------------------------------------------------------------


class EmbeddingRequest(_Request):
    model: str
    input: Union[NonEmpty, Annotated[List[NonEmpty], Field(min_length=1, max_length=256)]] = Field(
        description="A text or a list of 1 to 256 texts, each non-empty (token ids unsupported)."
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Optional[Dimensions] = Field(
        default=None, description="Must equal the model's size if given."
    )
    zone: Optional[str] = None
    user: Optional[str] = None

    def texts(self) -> List[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


class Embedding(_Response):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: Union[List[float], str] = Field(description="Floats, or base64 of little-endian float32.")


class EmbeddingUsage(_Response):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(_Response):
    object: Literal["list"] = "list"
    data: List[Embedding]
    model: str
    usage: EmbeddingUsage


# ---- models and health ----------------------------------------------------------------------------------


class ModelCard(_Response):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "cactus"


class ModelList(_Response):
    object: Literal["list"] = "list"
    data: List[ModelCard]


class Health(_Response):
    status: Literal["ok"] = "ok"
    zone: str
    models: List[str]
    peers: List[str]
