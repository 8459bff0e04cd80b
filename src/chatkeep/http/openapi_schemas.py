"""The `components.schemas` of chatkeep's OpenAPI document, generated from `protocol/`.

Request schemas come from the pydantic models that validate requests, response schemas from
the TypedDicts that type responses, so the document says what the code does. Before Python
3.12 pydantic reads only `typing_extensions.TypedDict`, so `_pydantic_ready` rebuilds
`protocol/responses.py`'s `typing.TypedDict`s as those, and renames them to the spec's names
where the SDK's differ (`ChatCompletion` is the spec's `CreateChatCompletionResponse`).
"""

from __future__ import annotations

import types
from typing import (
    Annotated,
    Any,
    Literal,
    NotRequired,
    Required,
    TypedDict,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

import typing_extensions
from pydantic import Field, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import CoreSchema

from chatkeep.protocol import responses
from chatkeep.protocol.requests import (
    CreateChatCompletionRequest,
    ResponseFormat,
    UpdateChatCompletionRequest,
)
from chatkeep.protocol.tools import ChatCompletionToolChoiceOption, Tools

REF_TEMPLATE = "#/components/schemas/{model}"

# SDK names that the spec spells differently, or that a request model also uses.
_RENAMED = {
    "ChatCompletion": "CreateChatCompletionResponse",
    "ChatCompletionChunk": "CreateChatCompletionStreamResponse",
    "ModelList": "ListModelsResponse",
    # The request's tool call (protocol/messages.py) has this name; the SDK's for a
    # response's function tool call is this one.
    "ChatCompletionMessageToolCall": "ChatCompletionMessageFunctionToolCall",
}


# Shapes that `protocol/` builds as plain dicts (`service/stored.py`, `service/reads.py`,
# `errors.py`), typed here only for the document.


class StoredChatCompletion(responses.ChatCompletion):
    """A stored completion: the `CreateChatCompletionResponse` it was, plus the fields of the
    request that made it, as OpenAI's reference shows for a retrieved completion. A stored
    message without tool calls has no `tool_calls` key."""

    request_id: Annotated[str, Field(description="The `x-request-id` of the create call.")]
    seed: Annotated[int, Field(description="The request's seed, or one the server chose.")]
    temperature: Annotated[float, Field(description="The effective value (default 1).")]
    top_p: Annotated[float, Field(description="The effective value (default 1).")]
    presence_penalty: Annotated[float, Field(description="The effective value (default 0).")]
    frequency_penalty: Annotated[float, Field(description="The effective value (default 0).")]
    input_user: Annotated[str | None, Field(description="The request's `user`.")]
    tools: Annotated[Tools | None, Field(description="The request's `tools`, as sent.")]
    tool_choice: Annotated[
        ChatCompletionToolChoiceOption | None,
        Field(description="The request's `tool_choice`, as sent."),
    ]
    response_format: Annotated[
        ResponseFormat | None, Field(description="The request's `response_format`, as sent.")
    ]


class ChatCompletionList(TypedDict):
    """One page of stored completions; an empty page has null `first_id` and `last_id`."""

    object: Literal["list"]
    data: list[StoredChatCompletion]
    first_id: str | None
    last_id: str | None
    has_more: bool


class ChatCompletionMessageList(TypedDict):
    """One page of a stored completion's input messages, in the order they were sent. Each
    keeps its own role (`user`, `system`, ...), and its `tool_calls`, `tool_call_id`,
    `function_call` and `audio` when it had them."""

    object: Literal["list"]
    data: list[responses.ChatCompletionStoreMessage]
    first_id: str | None
    last_id: str | None
    has_more: bool


class Error(TypedDict):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(TypedDict):
    """Every error, with all four keys of `error`."""

    error: Error


class HealthStatus(TypedDict):
    status: Literal["ok"]


# The schemas the operations refer to, by their name in the document. All are generated in
# pydantic's validation mode (a TypedDict's schema is the same in both), so that a request
# model that a response type refers to gets one schema, not an -Input and an -Output one.
_TOP_LEVEL: list[tuple[str, Any]] = [
    ("CreateChatCompletionRequest", CreateChatCompletionRequest),
    ("UpdateChatCompletionRequest", UpdateChatCompletionRequest),
    ("CreateChatCompletionResponse", responses.ChatCompletion),
    ("CreateChatCompletionStreamResponse", responses.ChatCompletionChunk),
    ("StoredChatCompletion", StoredChatCompletion),
    ("ChatCompletionList", ChatCompletionList),
    ("ChatCompletionDeleted", responses.ChatCompletionDeleted),
    ("ChatCompletionMessageList", ChatCompletionMessageList),
    ("ListModelsResponse", responses.ModelList),
    ("Model", responses.Model),
    ("ErrorResponse", ErrorResponse),
    ("HealthStatus", HealthStatus),
]


class _Generator(GenerateJsonSchema):
    """pydantic's generator, without a `title` on every property (its field name, again)."""

    def field_title_should_be_set(self, schema: CoreSchema) -> bool:
        return False


def component_schemas() -> dict[str, Any]:
    """Every schema the operations refer to, and every schema those refer to, by name."""
    rebuilt: dict[Any, Any] = {}
    mode: Literal["validation"] = "validation"
    inputs = [(name, mode, TypeAdapter(_pydantic_ready(tp, rebuilt))) for name, tp in _TOP_LEVEL]
    tops, definitions = TypeAdapter.json_schemas(
        inputs, ref_template=REF_TEMPLATE, schema_generator=_Generator
    )
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    for (name, _mode), schema in tops.items():
        if schema.get("$ref") != REF_TEMPLATE.format(model=name):
            raise RuntimeError(f"schema {name} came out under another name: {schema}")
    return dict(sorted(schemas.items()))


def _pydantic_ready(tp: Any, rebuilt: dict[Any, Any]) -> Any:
    """`tp` with every TypedDict in it rebuilt as a `typing_extensions.TypedDict` (same
    fields, docstring and requiredness; the spec's name where `_RENAMED` has one)."""
    if is_typeddict(tp):
        if tp not in rebuilt:
            rebuilt[tp] = _rebuilt_typeddict(tp, rebuilt)
        return rebuilt[tp]
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is None or origin is Literal or not args:
        return tp
    if origin is Annotated:
        return Annotated[(_pydantic_ready(args[0], rebuilt), *tp.__metadata__)]
    ready = tuple(_pydantic_ready(arg, rebuilt) for arg in args)
    if origin in (Union, types.UnionType):
        return Union[ready]  # noqa: UP007  (a runtime union of any number of members)
    return origin[ready if len(ready) > 1 else ready[0]]


def _rebuilt_typeddict(tp: Any, rebuilt: dict[Any, Any]) -> Any:
    fields: dict[str, Any] = {}
    # With `from __future__ import annotations`, Python 3.11's `__required_keys__` misses
    # `NotRequired`: the resolved hints say which keys are required.
    for key, hint in get_type_hints(tp, include_extras=True).items():
        wrapper = get_origin(hint)
        if wrapper is NotRequired or wrapper is Required:
            fields[key] = wrapper[_pydantic_ready(get_args(hint)[0], rebuilt)]
        elif tp.__total__:
            fields[key] = _pydantic_ready(hint, rebuilt)
        else:
            fields[key] = NotRequired[_pydantic_ready(hint, rebuilt)]
    typed_dict: Any = typing_extensions.TypedDict
    ready = typed_dict(_RENAMED.get(tp.__name__, tp.__name__), fields)
    # One paragraph, as a description reads best; pydantic would keep the line breaks.
    ready.__doc__ = " ".join(tp.__doc__.split()) if tp.__doc__ else None
    return ready


def response_headers() -> dict[str, Any]:
    """The response headers the document names, beside the schemas."""
    return {
        "x-request-id": {
            "description": "This request's id, on every response.",
            "schema": {"type": "string"},
        },
        "x-chatkeep-stored": {
            "description": (
                "Present when the project's policy, not the request's `store`, decided "
                "whether the completion is kept: `true` (policy `always`) or `false` "
                "(policy `never`)."
            ),
            "schema": {"type": "string", "enum": ["true", "false"]},
        },
        "x-should-retry": {
            "description": "`false` when a retry cannot succeed; the SDKs obey it.",
            "schema": {"type": "string", "enum": ["true", "false"]},
        },
    }
