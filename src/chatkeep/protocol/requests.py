"""Request bodies of `POST /v1/chat/completions` and `POST /v1/chat/completions/{id}`.

`CreateChatCompletionRequest` has every top-level field of the spec, in the spec's order.
Types are strict (no "2" for 2, no `true` for 1; an integer is a number). `null` is accepted
for every optional field and means "not given". Unknown top-level fields are allowed and kept
(`model_extra`, and the decoded `body`) for upstream servers such as vLLM (`top_k`,
`chat_template_kwargs`); unknown keys inside nested objects are kept the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from chatkeep.errors import InvalidRequestError
from chatkeep.protocol.base import (
    KEEPABLE,
    RequestModel,
    by_field,
    by_shape,
    enum_of,
    refuse_unkeepable,
    rule_error,
    tag,
)
from chatkeep.protocol.codec import decode_json
from chatkeep.protocol.messages import (
    NAME_PATTERN,
    ChatCompletionRequestMessage,
    TextContent,
)
from chatkeep.protocol.tools import (
    ChatCompletionToolChoiceOption,
    FunctionCallOption,
    Functions,
    Tools,
    check_function_call,
    check_tool_choice,
)
from chatkeep.protocol.validation import invalid_request, json_type

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# "Set of 16 key-value pairs... Keys are strings with a maximum length of 64 characters.
# Values are strings with a maximum length of 512 characters." Kept in text columns.
Metadata = Annotated[
    dict[
        Annotated[str, Field(max_length=64), KEEPABLE],
        Annotated[str, Field(max_length=512), KEEPABLE],
    ],
    Field(max_length=16),
]


def _model_name(value: str) -> str:
    if not value:
        # OpenAI's words for an empty `model`.
        raise rule_error("you must provide a model parameter", field=None, code=None)
    return refuse_unkeepable(value)


ModelName = Annotated[str, AfterValidator(_model_name)]

StopConfiguration = Annotated[
    Annotated[str, tag("string")]
    | Annotated[list[str], Field(min_length=1, max_length=4), tag("array")],
    by_shape("one of a string or array of strings"),
]

_PromptCacheRetention = Literal["in_memory", "24h"]
_PromptCacheTTL = Literal["30m"]
_PromptCacheMode = Literal["implicit", "explicit"]
_Modality = Literal["text", "audio"]
_AudioFormat = Literal["wav", "aac", "mp3", "flac", "opus", "pcm16"]
_ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
_Verbosity = Literal["low", "medium", "high"]
_ServiceTier = Literal["auto", "default", "flex", "scale", "priority", "fast"]
_SearchContextSize = Literal["low", "medium", "high"]
_ModerationMode = Literal["score", "block"]


class PromptCacheOptionsParam(RequestModel):
    ttl: Annotated[_PromptCacheTTL, enum_of(_PromptCacheTTL)] | None = None
    mode: Annotated[_PromptCacheMode, enum_of(_PromptCacheMode)] | None = None


class ChatCompletionStreamOptions(RequestModel):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class ResponseFormatText(RequestModel):
    type: Literal["text"]


class JSONSchema(RequestModel):
    description: str | None = None
    name: Annotated[str, Field(max_length=64, pattern=NAME_PATTERN)]
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatJsonSchema(RequestModel):
    type: Literal["json_schema"]
    json_schema: JSONSchema


class ResponseFormatJsonObject(RequestModel):
    type: Literal["json_object"]


ResponseFormat = Annotated[
    Annotated[ResponseFormatText, tag("text")]
    | Annotated[ResponseFormatJsonSchema, tag("json_schema")]
    | Annotated[ResponseFormatJsonObject, tag("json_object")],
    by_field("type", ("text", "json_schema", "json_object")),
]


class CustomVoice(RequestModel):
    id: str


Voice = Annotated[
    Annotated[str, tag("string")] | Annotated[CustomVoice, tag("object")],
    by_shape("one of a string or object"),
]


class ChatCompletionAudioParam(RequestModel):
    voice: Voice
    format: Annotated[_AudioFormat, enum_of(_AudioFormat)]


class PredictionContent(RequestModel):
    type: Annotated[Literal["content"], enum_of(Literal["content"])]
    content: TextContent


class WebSearchLocation(RequestModel):
    country: str | None = None
    region: str | None = None
    city: str | None = None
    timezone: str | None = None


class UserLocation(RequestModel):
    type: Annotated[Literal["approximate"], enum_of(Literal["approximate"])]
    approximate: WebSearchLocation


class WebSearchOptions(RequestModel):
    user_location: UserLocation | None = None
    search_context_size: Annotated[_SearchContextSize, enum_of(_SearchContextSize)] | None = None


class ModerationConfigParam(RequestModel):
    mode: Annotated[_ModerationMode, enum_of(_ModerationMode)]


class ModerationPolicyParam(RequestModel):
    input: ModerationConfigParam | None = None
    output: ModerationConfigParam | None = None


class ModerationParam(RequestModel):
    model: str
    policy: ModerationPolicyParam | None = None


Temperature = Annotated[float, Field(ge=0.0, le=2.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]
TokenBias = Annotated[int, Field(ge=-100, le=100)]
PositiveInt = Annotated[int, Field(ge=1)]


class CreateChatCompletionRequest(RequestModel):
    """The body of `POST /v1/chat/completions` (the SDK's `CompletionCreateParams`)."""

    messages: Annotated[list[ChatCompletionRequestMessage], Field(min_length=1)]
    model: ModelName
    store: bool | None = None
    metadata: Metadata | None = None
    temperature: Temperature | None = None
    top_p: Probability | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None
    stop: StopConfiguration | None = None
    max_completion_tokens: PositiveInt | None = None
    max_tokens: PositiveInt | None = None
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    logit_bias: dict[str, TokenBias] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    seed: Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)] | None = None
    user: str | None = None
    safety_identifier: Annotated[str, Field(max_length=64)] | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: (
        Annotated[_PromptCacheRetention, enum_of(_PromptCacheRetention)] | None
    ) = None
    prompt_cache_options: PromptCacheOptionsParam | None = None
    stream: bool | None = None
    stream_options: ChatCompletionStreamOptions | None = None
    tools: Tools | None = None
    tool_choice: ChatCompletionToolChoiceOption | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    modalities: list[Annotated[_Modality, enum_of(_Modality)]] | None = None
    audio: ChatCompletionAudioParam | None = None
    prediction: PredictionContent | None = None
    reasoning_effort: Annotated[_ReasoningEffort, enum_of(_ReasoningEffort)] | None = None
    verbosity: Annotated[_Verbosity, enum_of(_Verbosity)] | None = None
    service_tier: Annotated[_ServiceTier, enum_of(_ServiceTier)] | None = None
    web_search_options: WebSearchOptions | None = None
    moderation: ModerationParam | None = None
    function_call: FunctionCallOption | None = None
    functions: Functions | None = None

    @model_validator(mode="after")
    def _check_dependent_fields(self) -> CreateChatCompletionRequest:
        if self.top_logprobs is not None and self.logprobs is not True:
            raise rule_error(
                "The 'top_logprobs' parameter is only allowed when 'logprobs' is enabled.",
                field="top_logprobs",
                code=None,
            )
        if self.stream_options is not None and self.stream is not True:
            raise rule_error(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                field="stream_options",
                code=None,
            )
        check_tool_choice(self.tools, self.tool_choice, self.parallel_tool_calls)
        check_function_call(self.functions, self.function_call)
        return self


class UpdateChatCompletionRequest(BaseModel):
    """The body of `POST /v1/chat/completions/{id}`: only `metadata` can be modified."""

    model_config = ConfigDict(strict=True, extra="forbid")

    metadata: Metadata | None


@dataclass(frozen=True, slots=True)
class ParsedCreateRequest:
    """A validated create request and the decoded JSON exactly as the client sent it."""

    params: CreateChatCompletionRequest
    body: dict[str, Any]


def parse_create_request(body: bytes) -> ParsedCreateRequest:
    """Decode and validate a create body; every failure is a 400 `InvalidRequestError`."""
    decoded = _decode_object(body)
    try:
        params = CreateChatCompletionRequest.model_validate(decoded)
    except ValidationError as exc:
        raise invalid_request(exc) from None
    return ParsedCreateRequest(params=params, body=decoded)


def parse_update_request(body: bytes) -> dict[str, str]:
    """Decode and validate an update body; the metadata that replaces the stored map."""
    decoded = _decode_object(body)
    for key in decoded:
        if key != "metadata":
            # Reported before a missing `metadata`: it names what the client got wrong.
            raise InvalidRequestError(
                f"Unrecognized request argument supplied: {key}",
                param=key,
                code="unknown_parameter",
            )
    try:
        params = UpdateChatCompletionRequest.model_validate(decoded)
    except ValidationError as exc:
        raise invalid_request(exc) from None
    return dict(params.metadata) if params.metadata is not None else {}


def _decode_object(body: bytes) -> dict[str, Any]:
    decoded = decode_json(body)
    if not isinstance(decoded, dict):
        raise InvalidRequestError(
            f"Invalid type for request body: expected an object, but got {json_type(decoded)} "
            "instead.",
            param=None,
            code="invalid_type",
        )
    return decoded
