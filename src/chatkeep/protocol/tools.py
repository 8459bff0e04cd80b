"""Tools a create request offers the model, and how it may choose among them.

Function and custom tools (`tools`), the `tool_choice` forms, and their deprecated
predecessors `functions` and `function_call`; named as the OpenAPI spec names them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from chatkeep.protocol.base import RequestModel, by_field, by_shape, enum_of, tag
from chatkeep.protocol.messages import FunctionName

_AllowedToolsMode = Literal["auto", "required"]
_GrammarSyntax = Literal["lark", "regex"]
_ToolChoiceMode = Literal["none", "auto", "required"]
_FunctionCallMode = Literal["none", "auto"]


class FunctionObject(RequestModel):
    description: str | None = None
    name: FunctionName
    # A JSON Schema object; "omitting `parameters` defines a function with an empty parameter list".
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ChatCompletionTool(RequestModel):
    type: Literal["function"]
    function: FunctionObject


class CustomToolFormatText(RequestModel):
    type: Literal["text"]


class Grammar(RequestModel):
    definition: str
    syntax: Annotated[_GrammarSyntax, enum_of(_GrammarSyntax)]


class CustomToolFormatGrammar(RequestModel):
    type: Literal["grammar"]
    grammar: Grammar


CustomToolFormat = Annotated[
    Annotated[CustomToolFormatText, tag("text")]
    | Annotated[CustomToolFormatGrammar, tag("grammar")],
    by_field("type", ("text", "grammar")),
]


class CustomToolProperties(RequestModel):
    name: str
    description: str | None = None
    format: CustomToolFormat | None = None


class CustomToolChatCompletions(RequestModel):
    type: Literal["custom"]
    custom: CustomToolProperties


ChatCompletionToolUnion = Annotated[
    Annotated[ChatCompletionTool, tag("function")]
    | Annotated[CustomToolChatCompletions, tag("custom")],
    by_field("type", ("function", "custom")),
]


class ChatCompletionAllowedTools(RequestModel):
    mode: Annotated[_AllowedToolsMode, enum_of(_AllowedToolsMode)]
    # Tool definitions in the shape of `tools` items, kept as sent.
    tools: list[dict[str, Any]]


class ChatCompletionAllowedToolsChoice(RequestModel):
    type: Literal["allowed_tools"]
    allowed_tools: ChatCompletionAllowedTools


class NamedFunction(RequestModel):
    name: str


class ChatCompletionNamedToolChoice(RequestModel):
    type: Literal["function"]
    function: NamedFunction


class NamedCustom(RequestModel):
    name: str


class ChatCompletionNamedToolChoiceCustom(RequestModel):
    type: Literal["custom"]
    custom: NamedCustom


ChatCompletionToolChoiceOption = Annotated[
    Annotated[Annotated[_ToolChoiceMode, enum_of(_ToolChoiceMode)], tag("string")]
    | Annotated[ChatCompletionAllowedToolsChoice, tag("allowed_tools")]
    | Annotated[ChatCompletionNamedToolChoice, tag("function")]
    | Annotated[ChatCompletionNamedToolChoiceCustom, tag("custom")],
    by_field(
        "type",
        ("allowed_tools", "function", "custom"),
        expected="one of a string or object",
        allow_string=True,
    ),
]


class ChatCompletionFunctionCallOption(RequestModel):
    name: str


FunctionCallOption = Annotated[
    Annotated[Annotated[_FunctionCallMode, enum_of(_FunctionCallMode)], tag("string")]
    | Annotated[ChatCompletionFunctionCallOption, tag("object")],
    by_shape("one of a string or object"),
]
"""The deprecated `function_call`: "none", "auto" or `{"name": ...}`."""


class ChatCompletionFunctions(RequestModel):
    """Deprecated in favour of `tools`; still accepted."""

    description: str | None = None
    name: FunctionName
    parameters: dict[str, Any] | None = None


# OpenAI answers 400 for an empty `tools` array and for more than 128 tools.
Tools = Annotated[list[ChatCompletionToolUnion], Field(min_length=1, max_length=128)]
Functions = Annotated[list[ChatCompletionFunctions], Field(min_length=1, max_length=128)]
