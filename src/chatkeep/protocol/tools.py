"""Tools a create request offers the model, and how it may choose among them.

Function and custom tools (`tools`), the `tool_choice` forms, and their deprecated
predecessors `functions` and `function_call`; named as the OpenAPI spec names them.
`check_tool_choice` and `check_function_call` hold the rules across these fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from chatkeep.protocol.base import RequestModel, by_field, by_shape, enum_of, rule_error, tag
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


# The validated forms of `tool_choice` and `function_call` (a `str` is a mode: "auto", ...).
ToolChoice = (
    str
    | ChatCompletionAllowedToolsChoice
    | ChatCompletionNamedToolChoice
    | ChatCompletionNamedToolChoiceCustom
)
FunctionCall = str | ChatCompletionFunctionCallOption


def check_tool_choice(
    tools: list[ChatCompletionTool | CustomToolChatCompletions] | None,
    tool_choice: ToolChoice | None,
    parallel_tool_calls: bool | None,
) -> None:
    """What OpenAI refuses: a choice that forces a tool (`required`, a named or allowed tool)
    or `parallel_tool_calls` without `tools`, and a named tool that `tools` lacks. `none` and
    `auto` force nothing and are accepted alone."""
    if tools is None:
        if tool_choice is not None and tool_choice not in ("none", "auto"):
            raise _only_with("tool_choice", "tools")
        if parallel_tool_calls is not None:
            raise _only_with("parallel_tool_calls", "tools")
        return
    if isinstance(tool_choice, ChatCompletionNamedToolChoice):
        name, kind = tool_choice.function.name, "function"
        offered = any(
            isinstance(tool, ChatCompletionTool) and tool.function.name == name for tool in tools
        )
    elif isinstance(tool_choice, ChatCompletionNamedToolChoiceCustom):
        name, kind = tool_choice.custom.name, "custom tool"
        offered = any(
            isinstance(tool, CustomToolChatCompletions) and tool.custom.name == name
            for tool in tools
        )
    else:
        return
    if not offered:
        raise _not_offered("tool_choice", kind, name, "tools")


def check_function_call(
    functions: list[ChatCompletionFunctions] | None, function_call: FunctionCall | None
) -> None:
    """The same rules for the deprecated pair: a named `function_call` needs `functions`, and
    must name one of them."""
    if not isinstance(function_call, ChatCompletionFunctionCallOption):
        return
    if functions is None:
        raise _only_with("function_call", "functions")
    name = function_call.name
    if not any(function.name == name for function in functions):
        raise _not_offered("function_call", "function", name, "functions")


def _only_with(field: str, needed: str) -> Exception:
    # OpenAI's wording, e.g. for `tool_choice` and `parallel_tool_calls` without `tools`.
    return rule_error(
        f"Invalid value for '{field}': '{field}' is only allowed when '{needed}' are specified.",
        field=field,
        code=None,
    )


def _not_offered(field: str, kind: str, name: str, offered_in: str) -> Exception:
    return rule_error(
        f"Invalid value for '{field}': no {kind} named '{name}' was specified in the "
        f"'{offered_in}' parameter.",
        field=field,
        code=None,
    )
