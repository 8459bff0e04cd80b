"""The messages of a create request: one model per role and per content-part type.

Named as the OpenAPI spec names them (`ChatCompletionRequestUserMessage`, ...). Which parts
a role accepts follows the spec: text everywhere; image, audio and file for `user`; refusal
for `assistant`. Unknown keys inside a message or part are kept for backends; an unknown
`role` or part `type` is a 400 naming the supported values.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from chatkeep.protocol.base import (
    RequestModel,
    by_field,
    by_shape,
    enum_of,
    rule_error,
    tag,
)

# "Must be a-z, A-Z, 0-9, or contain underscores and dashes, with a maximum length of 64."
NAME_PATTERN = r"^[a-zA-Z0-9_-]+$"
FunctionName = Annotated[str, Field(max_length=64, pattern=NAME_PATTERN)]

_ImageDetail = Literal["auto", "low", "high"]
_InputAudioFormat = Literal["wav", "mp3"]


class PromptCacheBreakpoint(RequestModel):
    mode: Annotated[Literal["explicit"], enum_of(Literal["explicit"])]


class ChatCompletionRequestMessageContentPartText(RequestModel):
    type: Literal["text"]
    text: str
    prompt_cache_breakpoint: PromptCacheBreakpoint | None = None


class ImageURL(RequestModel):
    url: str
    detail: Annotated[_ImageDetail, enum_of(_ImageDetail)] | None = None


class ChatCompletionRequestMessageContentPartImage(RequestModel):
    type: Literal["image_url"]
    image_url: ImageURL
    prompt_cache_breakpoint: PromptCacheBreakpoint | None = None


class InputAudio(RequestModel):
    data: str
    format: Annotated[_InputAudioFormat, enum_of(_InputAudioFormat)]


class ChatCompletionRequestMessageContentPartAudio(RequestModel):
    type: Literal["input_audio"]
    input_audio: InputAudio
    prompt_cache_breakpoint: PromptCacheBreakpoint | None = None


class FileFile(RequestModel):
    filename: str | None = None
    file_data: str | None = None
    file_id: str | None = None


class ChatCompletionRequestMessageContentPartFile(RequestModel):
    type: Literal["file"]
    file: FileFile
    prompt_cache_breakpoint: PromptCacheBreakpoint | None = None


class ChatCompletionRequestMessageContentPartRefusal(RequestModel):
    type: Literal["refusal"]
    refusal: str


# A union of one member, so that a part of another type is named: "Supported values are: 'text'."
TextPart = Annotated[
    Annotated[ChatCompletionRequestMessageContentPartText, tag("text")],
    by_field("type", ("text",)),
]

ChatCompletionRequestUserMessageContentPart = Annotated[
    Annotated[ChatCompletionRequestMessageContentPartText, tag("text")]
    | Annotated[ChatCompletionRequestMessageContentPartImage, tag("image_url")]
    | Annotated[ChatCompletionRequestMessageContentPartAudio, tag("input_audio")]
    | Annotated[ChatCompletionRequestMessageContentPartFile, tag("file")],
    by_field("type", ("text", "image_url", "input_audio", "file")),
]

ChatCompletionRequestAssistantMessageContentPart = Annotated[
    Annotated[ChatCompletionRequestMessageContentPartText, tag("text")]
    | Annotated[ChatCompletionRequestMessageContentPartRefusal, tag("refusal")],
    by_field("type", ("text", "refusal")),
]

_CONTENT = "one of a string or array of objects"

TextContent = Annotated[
    Annotated[str, tag("string")] | Annotated[list[TextPart], Field(min_length=1), tag("array")],
    by_shape(_CONTENT),
]
"""`content` of developer, system and tool messages (and of `prediction`)."""

UserContent = Annotated[
    Annotated[str, tag("string")]
    | Annotated[
        list[ChatCompletionRequestUserMessageContentPart], Field(min_length=1), tag("array")
    ],
    by_shape(_CONTENT),
]

AssistantContent = Annotated[
    Annotated[str, tag("string")]
    | Annotated[
        list[ChatCompletionRequestAssistantMessageContentPart], Field(min_length=1), tag("array")
    ],
    by_shape(_CONTENT),
]


class FunctionCall(RequestModel):
    """A function call of an assistant message, in the shape the model returned it."""

    name: FunctionName
    arguments: str


class CustomCall(RequestModel):
    name: str
    input: str


class ChatCompletionMessageToolCall(RequestModel):
    id: str
    type: Literal["function"]
    function: FunctionCall


class ChatCompletionMessageCustomToolCall(RequestModel):
    id: str
    type: Literal["custom"]
    custom: CustomCall


ChatCompletionMessageToolCallUnion = Annotated[
    Annotated[ChatCompletionMessageToolCall, tag("function")]
    | Annotated[ChatCompletionMessageCustomToolCall, tag("custom")],
    by_field("type", ("function", "custom")),
]


class Audio(RequestModel):
    """A previous audio answer of the model, referred to by id."""

    id: str


class ChatCompletionRequestDeveloperMessage(RequestModel):
    content: TextContent
    role: Literal["developer"]
    name: str | None = None


class ChatCompletionRequestSystemMessage(RequestModel):
    content: TextContent
    role: Literal["system"]
    name: str | None = None


class ChatCompletionRequestUserMessage(RequestModel):
    content: UserContent
    role: Literal["user"]
    name: str | None = None


class ChatCompletionRequestAssistantMessage(RequestModel):
    content: AssistantContent | None = None
    refusal: str | None = None
    role: Literal["assistant"]
    name: str | None = None
    audio: Audio | None = None
    tool_calls: Annotated[list[ChatCompletionMessageToolCallUnion], Field(min_length=1)] | None = (
        None
    )
    function_call: FunctionCall | None = None

    @model_validator(mode="after")
    def _needs_content(self) -> ChatCompletionRequestAssistantMessage:
        # "Required unless `tool_calls` or `function_call` is specified"; an `audio` reference
        # stands in for content in multi-turn audio conversations.
        if (
            self.content is None
            and self.tool_calls is None
            and self.function_call is None
            and self.audio is None
        ):
            raise rule_error(
                "Invalid value for 'content': expected a string, got null.",
                field="content",
                code=None,
            )
        return self


class ChatCompletionRequestToolMessage(RequestModel):
    role: Literal["tool"]
    content: TextContent
    tool_call_id: str


class ChatCompletionRequestFunctionMessage(RequestModel):
    """Deprecated in favour of tool messages; still accepted."""

    role: Literal["function"]
    content: str | None
    name: str


ChatCompletionRequestMessage = Annotated[
    Annotated[ChatCompletionRequestDeveloperMessage, tag("developer")]
    | Annotated[ChatCompletionRequestSystemMessage, tag("system")]
    | Annotated[ChatCompletionRequestUserMessage, tag("user")]
    | Annotated[ChatCompletionRequestAssistantMessage, tag("assistant")]
    | Annotated[ChatCompletionRequestToolMessage, tag("tool")]
    | Annotated[ChatCompletionRequestFunctionMessage, tag("function")],
    # The order OpenAI lists them in its own error message.
    by_field("role", ("system", "assistant", "user", "function", "tool", "developer")),
]
