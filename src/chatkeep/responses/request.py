"""The body of `POST /v1/responses`, validated as OpenAI validates it, naming `param`.

Fields follow the spec's `CreateResponse`. Unlike the chat create body, unknown top-level
fields are refused (`unknown_parameter`): the Responses API has no vendor extensions to
relay, and a misspelt field must not be silently ignored. Items keep unknown keys, because
clients send earlier output items back as input (with `id`, `status`, `annotations`...).
What chatkeep cannot serve (built-in tools, `background`, conversations, prompt templates,
...) is a 400 naming the field, before anything else is looked at (`refuse_unsupported`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from chatkeep.errors import InvalidRequestError
from chatkeep.protocol.base import by_field, by_shape, enum_of, rule_error, tag
from chatkeep.protocol.messages import NAME_PATTERN, FunctionName
from chatkeep.protocol.requests import (
    Metadata,
    ModelName,
    Probability,
    PromptCacheOptionsParam,
    Temperature,
)
from chatkeep.protocol.validation import invalid_request, json_type

_Role = Literal["user", "assistant", "system", "developer"]
_ImageDetail = Literal["auto", "low", "high", "original"]
_Verbosity = Literal["low", "medium", "high"]
_Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
_ServiceTier = Literal["auto", "default", "flex", "scale", "priority"]
_Truncation = Literal["disabled"]
_ToolChoiceMode = Literal["none", "auto", "required"]
_AllowedMode = Literal["auto", "required"]
_PromptCacheRetention = Literal["in_memory", "24h"]

# `include` values chatkeep honours: input image URLs are always kept, and there is never a
# reasoning item to encrypt. The others belong to built-in tools or logprobs (refused).
SUPPORTED_INCLUDE = ("message.input_image.image_url", "reasoning.encrypted_content")
# Top-level fields of OpenAI's that chatkeep refuses when set (null or false is fine).
_UNSUPPORTED_FIELDS = {
    "background": "background responses (the answer is always produced in the request)",
    "conversation": "the Conversations API (use `previous_response_id` to continue)",
    "prompt": "stored prompt templates",
    "moderation": "moderation of responses",
    "context_management": "server-side context management (compaction)",
    "top_logprobs": "logprobs in responses",
}
BUILT_IN_TOOLS = "built-in tools (web search, file search, code interpreter, computer use, ...)"


class _Item(BaseModel):
    """Base of item and part models: strict types; unknown keys accepted and dropped."""

    model_config = ConfigDict(strict=True, extra="ignore")


class InputText(_Item):
    type: Literal["input_text"]
    text: str


class OutputText(_Item):
    type: Literal["output_text"]
    text: str


class Refusal(_Item):
    type: Literal["refusal"]
    refusal: str


class InputImage(_Item):
    type: Literal["input_image"]
    image_url: str
    detail: Annotated[_ImageDetail, enum_of(_ImageDetail)] | None = None


ContentPart = Annotated[
    Annotated[InputText, tag("input_text")]
    | Annotated[InputImage, tag("input_image")]
    | Annotated[OutputText, tag("output_text")]
    | Annotated[Refusal, tag("refusal")],
    by_field("type", ("input_text", "input_image", "output_text", "refusal")),
]
MessageContent = Annotated[
    Annotated[str, tag("string")] | Annotated[list[ContentPart], tag("array")],
    by_shape("one of a string or array of input content parts"),
]


class MessageItem(_Item):
    type: Literal["message"] = "message"
    id: str | None = None  # kept when a client sends an earlier output item back
    role: Annotated[_Role, enum_of(_Role)]
    content: MessageContent


class FunctionCallItem(_Item):
    type: Literal["function_call"]
    id: str | None = None
    call_id: Annotated[str, Field(min_length=1, max_length=64)]
    name: FunctionName
    arguments: str


OutputContent = Annotated[
    Annotated[str, tag("string")]
    | Annotated[
        list[Annotated[Annotated[InputText, tag("input_text")], by_field("type", ("input_text",))]],
        tag("array"),
    ],
    by_shape("one of a string or array of input_text parts"),
]


class FunctionCallOutputItem(_Item):
    type: Literal["function_call_output"]
    id: str | None = None
    call_id: Annotated[str, Field(min_length=1, max_length=64)]
    output: OutputContent


def _typed(value: Any) -> Any:
    """An item without `type` but with a `role` is a message (the spec's EasyInputMessage)."""
    if isinstance(value, dict) and "type" not in value and "role" in value:
        return {**value, "type": "message"}
    return value


InputItem = Annotated[
    Annotated[MessageItem, tag("message")]
    | Annotated[FunctionCallItem, tag("function_call")]
    | Annotated[FunctionCallOutputItem, tag("function_call_output")],
    by_field("type", ("message", "function_call", "function_call_output")),
    BeforeValidator(_typed),
]
Input = Annotated[
    Annotated[str, tag("string")] | Annotated[list[InputItem], tag("array")],
    by_shape("one of a string or array of input items"),
]


class FunctionTool(_Item):
    type: Literal["function"]
    name: FunctionName
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


Tool = Annotated[Annotated[FunctionTool, tag("function")], by_field("type", ("function",))]


class ToolChoiceFunction(_Item):
    type: Literal["function"]
    name: FunctionName


class AllowedTool(_Item):
    type: Annotated[Literal["function"], enum_of(Literal["function"])]
    name: FunctionName


class ToolChoiceAllowed(_Item):
    type: Literal["allowed_tools"]
    mode: Annotated[_AllowedMode, enum_of(_AllowedMode)]
    tools: list[AllowedTool]


ToolChoice = Annotated[
    Annotated[Annotated[_ToolChoiceMode, enum_of(_ToolChoiceMode)], tag("string")]
    | Annotated[ToolChoiceFunction, tag("function")]
    | Annotated[ToolChoiceAllowed, tag("allowed_tools")],
    by_field(
        "type",
        ("function", "allowed_tools"),
        expected="one of a string or object",
        allow_string=True,
    ),
]


class FormatText(_Item):
    type: Literal["text"]


class FormatJsonObject(_Item):
    type: Literal["json_object"]


class FormatJsonSchema(_Item):
    type: Literal["json_schema"]
    name: Annotated[str, Field(max_length=64, pattern=NAME_PATTERN)]
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


TextFormat = Annotated[
    Annotated[FormatText, tag("text")]
    | Annotated[FormatJsonSchema, tag("json_schema")]
    | Annotated[FormatJsonObject, tag("json_object")],
    by_field("type", ("text", "json_schema", "json_object")),
]


class TextParam(_Item):
    format: TextFormat | None = None
    verbosity: Annotated[_Verbosity, enum_of(_Verbosity)] | None = None


class ReasoningParam(_Item):
    effort: Annotated[_Effort, enum_of(_Effort)] | None = None
    summary: None = None  # reasoning summaries: no reasoning items to summarize


class StreamOptions(_Item):
    include_obfuscation: bool | None = None


class CreateResponse(BaseModel):
    """The body of `POST /v1/responses` (the SDK's `ResponseCreateParams`)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    model: ModelName
    input: Input | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    store: bool | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextParam | None = None
    temperature: Temperature | None = None
    top_p: Probability | None = None
    max_output_tokens: Annotated[int, Field(ge=16)] | None = None
    max_tool_calls: Annotated[int, Field(ge=1)] | None = None
    metadata: Metadata | None = None
    user: str | None = None
    safety_identifier: Annotated[str, Field(max_length=64)] | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: (
        Annotated[_PromptCacheRetention, enum_of(_PromptCacheRetention)] | None
    ) = None
    prompt_cache_options: PromptCacheOptionsParam | None = None
    include: list[str] | None = None
    reasoning: ReasoningParam | None = None
    service_tier: Annotated[_ServiceTier, enum_of(_ServiceTier)] | None = None
    truncation: Annotated[_Truncation, enum_of(_Truncation)] | None = None
    background: bool | None = None
    conversation: None = None
    prompt: None = None
    moderation: None = None
    context_management: None = None
    top_logprobs: None = None

    @model_validator(mode="after")
    def _check_dependent_fields(self) -> CreateResponse:
        if self.stream_options is not None and self.stream is not True:
            raise rule_error(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                field="stream_options",
                code=None,
            )
        if self.previous_response_id is not None and not self.previous_response_id.startswith(
            "resp"
        ):
            raise rule_error(
                f"Invalid 'previous_response_id': '{self.previous_response_id}'. Expected an "
                "ID that begins with 'resp'.",
                field="previous_response_id",
                code="invalid_value",
            )
        _check_tool_choice(self.tools or [], self.tool_choice)
        return self


def _check_tool_choice(tools: list[FunctionTool], choice: Any) -> None:
    names = {tool.name for tool in tools}
    if choice == "required" and not tools:
        raise rule_error(
            "Tool choice 'required' must be specified with 'tools' parameter.",
            field="tool_choice",
            code=None,
        )
    wanted: list[tuple[str, str]] = []
    if isinstance(choice, ToolChoiceFunction):
        wanted = [(choice.name, "tool_choice.name")]
    elif isinstance(choice, ToolChoiceAllowed):
        wanted = [(t.name, f"tool_choice.tools[{i}].name") for i, t in enumerate(choice.tools)]
    for name, where in wanted:
        if name not in names:
            raise rule_error(
                f"Tool choice '{name}' not found in 'tools' parameter.", field=where, code=None
            )


@dataclass(frozen=True, slots=True)
class ParsedResponseRequest:
    """A validated create request and the decoded JSON exactly as the client sent it."""

    params: CreateResponse
    body: dict[str, Any]


def parse_create_response(decoded: Any) -> ParsedResponseRequest:
    """Validate a decoded create body; every failure is a 400 `InvalidRequestError`."""
    if not isinstance(decoded, dict):
        raise InvalidRequestError(
            f"Invalid type for request body: expected an object, but got {json_type(decoded)} "
            "instead.",
            param=None,
            code="invalid_type",
        )
    refuse_unsupported(decoded)
    try:
        params = CreateResponse.model_validate(decoded)
    except ValidationError as exc:
        raise invalid_request(exc) from None
    return ParsedResponseRequest(params=params, body=decoded)


def _unsupported(param: str, message: str, code: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=param, code=code)


def refuse_unsupported(body: dict[str, Any]) -> None:
    """A 400 for the first feature of OpenAI's that chatkeep cannot serve, if any is asked
    for: said plainly here, rather than as a type error further on."""
    for field, what in _UNSUPPORTED_FIELDS.items():
        value = body.get(field)
        if value is True or (field != "background" and value is not None):
            raise _unsupported(
                field,
                f"chatkeep does not support {what}: '{field}' must be omitted"
                + (" or false." if field == "background" else " or null."),
                "unsupported_parameter",
            )
    if body.get("truncation") == "auto":
        raise _unsupported(
            "truncation",
            "chatkeep does not truncate inputs ('truncation': 'auto'); use 'disabled'.",
            "unsupported_value",
        )
    tools = body.get("tools")
    for index, tool in enumerate(tools if isinstance(tools, list) else []):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if isinstance(kind, str) and kind != "function":
            raise _unsupported(
                f"tools[{index}].type",
                f"chatkeep does not run {BUILT_IN_TOOLS} or '{kind}' tools: only 'function' "
                "tools are supported.",
                "unsupported_value",
            )
    choice = body.get("tool_choice")
    kind = choice.get("type") if isinstance(choice, dict) else None
    if isinstance(kind, str) and kind not in ("function", "allowed_tools"):
        raise _unsupported(
            "tool_choice.type",
            f"chatkeep does not run {BUILT_IN_TOOLS}: tool_choice '{kind}' is not supported.",
            "unsupported_value",
        )
    include = body.get("include")
    for index, value in enumerate(include if isinstance(include, list) else []):
        if isinstance(value, str) and value not in SUPPORTED_INCLUDE:
            raise _unsupported(
                f"include[{index}]",
                f"chatkeep cannot include '{value}'; supported values are: "
                + ", ".join(f"'{v}'" for v in SUPPORTED_INCLUDE)
                + ".",
                "unsupported_value",
            )
