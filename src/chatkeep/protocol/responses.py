"""Response shapes, named as the official SDK names them, as TypedDicts.

Responses are built as plain dicts and encoded once with orjson, so these types cost nothing
at run time; they exist so that mypy and a reviewer can diff them against openai-python's
`ChatCompletion`, `ChatCompletionChunk`, `ChatCompletionDeleted` and
`ChatCompletionStoreMessage`.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


class TopLogprob(TypedDict):
    token: str
    logprob: float
    bytes: list[int] | None


class ChatCompletionTokenLogprob(TypedDict):
    token: str
    logprob: float
    bytes: list[int] | None
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(TypedDict):
    content: list[ChatCompletionTokenLogprob] | None
    refusal: list[ChatCompletionTokenLogprob] | None


class Function(TypedDict):
    name: str
    arguments: str


class ChatCompletionMessageToolCall(TypedDict):
    id: str
    type: Literal["function"]
    function: Function


class ChatCompletionMessage(TypedDict):
    role: Literal["assistant"]
    content: str | None
    refusal: str | None
    annotations: NotRequired[list[dict[str, Any]]]
    tool_calls: NotRequired[list[ChatCompletionMessageToolCall] | None]
    function_call: NotRequired[Function | None]
    audio: NotRequired[dict[str, Any] | None]


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


class Choice(TypedDict):
    index: int
    message: ChatCompletionMessage
    logprobs: ChoiceLogprobs | None
    finish_reason: FinishReason


class CompletionUsage(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: NotRequired[dict[str, int]]
    completion_tokens_details: NotRequired[dict[str, int]]


class ChatCompletion(TypedDict):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: NotRequired[CompletionUsage | None]
    service_tier: NotRequired[str | None]
    system_fingerprint: NotRequired[str | None]
    metadata: NotRequired[dict[str, str] | None]


class ChoiceDeltaToolCallFunction(TypedDict, total=False):
    name: str
    arguments: str


class ChoiceDeltaToolCall(TypedDict):
    index: int
    id: NotRequired[str]
    type: NotRequired[Literal["function"]]
    function: NotRequired[ChoiceDeltaToolCallFunction]


class ChoiceDelta(TypedDict, total=False):
    role: Literal["assistant"]
    content: str | None
    refusal: str | None
    tool_calls: list[ChoiceDeltaToolCall]


class ChunkChoice(TypedDict):
    index: int
    delta: ChoiceDelta
    logprobs: ChoiceLogprobs | None
    finish_reason: FinishReason | None


class ChatCompletionChunk(TypedDict):
    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: NotRequired[CompletionUsage | None]
    service_tier: NotRequired[str | None]
    system_fingerprint: NotRequired[str | None]


class ChatCompletionDeleted(TypedDict):
    id: str
    object: Literal["chat.completion.deleted"]
    deleted: bool


class ChatCompletionStoreMessage(TypedDict):
    id: str
    role: str
    content: str | None
    name: str | None
    content_parts: list[dict[str, Any]] | None
    refusal: str | None


class CursorPage(TypedDict):
    """`ChatCompletionList` and `ChatCompletionMessageList`: one page of a cursor walk."""

    object: Literal["list"]
    data: list[Any]
    first_id: str | None
    last_id: str | None
    has_more: bool


class Model(TypedDict):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(TypedDict):
    object: Literal["list"]
    data: list[Model]
