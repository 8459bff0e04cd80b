"""A Responses request as the Chat Completions call that answers it.

Every model chatkeep routes to speaks Chat Completions (the echo model, OpenAI-compatible
upstreams), so a response is made by one chat call: the conversation rebuilt as messages,
function tools as chat tools, `text.format` as `response_format`, `max_output_tokens` as
`max_completion_tokens`, `reasoning.effort` as `reasoning_effort`. The chat body is then
validated by the chat create path's own model, so both APIs accept the same values.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from chatkeep.errors import InvalidRequestError
from chatkeep.protocol.requests import CreateChatCompletionRequest
from chatkeep.protocol.validation import invalid_request
from chatkeep.responses.items import Message
from chatkeep.responses.request import (
    CreateResponse,
    FormatJsonObject,
    FormatJsonSchema,
    ToolChoiceAllowed,
    ToolChoiceFunction,
)

# Fields that mean the same in both APIs, passed on when set.
_SAME = (
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "service_tier",
)


def chat_body(params: CreateResponse, messages: list[Message], *, stream: bool) -> dict[str, Any]:
    """The Chat Completions request body for a Responses request and its conversation."""
    body: dict[str, Any] = {"model": params.model, "messages": messages}
    for name in _SAME:
        value = getattr(params, name)
        if value is not None:
            body[name] = value
    if params.prompt_cache_options is not None:
        body["prompt_cache_options"] = params.prompt_cache_options.model_dump(exclude_none=True)
    if params.max_output_tokens is not None:
        body["max_completion_tokens"] = params.max_output_tokens
    if params.tools:
        body["tools"] = [_chat_tool(tool.model_dump()) for tool in params.tools]
    if params.tool_choice is not None:
        body["tool_choice"] = _chat_tool_choice(params.tool_choice)
    text = params.text
    if text is not None:
        response_format = _response_format(text.format)
        if response_format is not None:
            body["response_format"] = response_format
        if text.verbosity is not None:
            body["verbosity"] = text.verbosity
    if params.reasoning is not None and params.reasoning.effort is not None:
        body["reasoning_effort"] = params.reasoning.effort
    if stream:
        body["stream"] = True
    return body


def validated(body: dict[str, Any]) -> CreateChatCompletionRequest:
    """The chat body validated as the chat create route validates its own. The Responses
    request was validated first, so a failure here is a rule only the chat API has (say,
    an empty text part); its `param` names the field of the chat call."""
    try:
        return CreateChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        error = invalid_request(exc)
        raise InvalidRequestError(
            f"The request cannot be made into a Chat Completions call: {error.message}",
            param=None,
            code=error.code,
        ) from None


def _chat_tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = {"name": tool["name"]}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


def _chat_tool_choice(choice: Any) -> Any:
    if isinstance(choice, ToolChoiceFunction):
        return {"type": "function", "function": {"name": choice.name}}
    if isinstance(choice, ToolChoiceAllowed):
        tools = [{"type": "function", "function": {"name": t.name}} for t in choice.tools]
        return {"type": "allowed_tools", "allowed_tools": {"mode": choice.mode, "tools": tools}}
    return choice


def _response_format(fmt: Any) -> dict[str, Any] | None:
    if isinstance(fmt, FormatJsonObject):
        return {"type": "json_object"}
    if isinstance(fmt, FormatJsonSchema):
        spec: dict[str, Any] = {"name": fmt.name, "schema": fmt.schema_}
        if fmt.description is not None:
            spec["description"] = fmt.description
        if fmt.strict is not None:
            spec["strict"] = fmt.strict
        return {"type": "json_schema", "json_schema": spec}
    return None
