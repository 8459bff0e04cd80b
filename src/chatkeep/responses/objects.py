"""The Response object: the request's echo fields, and its output, status and usage made
from the Chat Completions answer that produced it.

Defaults echoed where the request left a field out are OpenAI's (`temperature` 1,
`top_p` 1, `tool_choice` "auto", `parallel_tool_calls` true, `text.format` text,
`truncation` "disabled"), so a stored response reads as OpenAI's would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatkeep.protocol.responses import ChatCompletion, CompletionUsage
from chatkeep.responses.items import Item, NewId, function_call_item, output_text
from chatkeep.responses.request import (
    CreateResponse,
    FormatJsonObject,
    FormatJsonSchema,
    ToolChoiceAllowed,
    ToolChoiceFunction,
)

Response = dict[str, Any]

# finish_reason -> why a response is incomplete
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the model answered: output items, finish reason, usage, the model's name."""

    output: list[Item]
    finish_reason: str | None
    usage: dict[str, Any] | None
    model: str
    service_tier: str | None = None


def skeleton(params: CreateResponse, response_id: str, created_at: int, stored: bool) -> Response:
    """The Response as it is before the model answers (`status: in_progress`, no output):
    what `response.created` carries; `finished` completes it."""
    reasoning = params.reasoning
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": False,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": params.instructions,
        "max_output_tokens": params.max_output_tokens,
        "max_tool_calls": params.max_tool_calls,
        "model": params.model,
        "output": [],
        "parallel_tool_calls": _default(params.parallel_tool_calls, True),
        "previous_response_id": params.previous_response_id,
        "prompt_cache_key": params.prompt_cache_key,
        "prompt_cache_retention": params.prompt_cache_retention,
        "reasoning": {"effort": reasoning.effort if reasoning else None, "summary": None},
        "safety_identifier": params.safety_identifier,
        "service_tier": params.service_tier or "auto",
        "store": stored,
        "temperature": _default(params.temperature, 1.0),
        "text": _text(params),
        "tool_choice": _tool_choice(params.tool_choice),
        "tools": [
            {
                "type": "function",
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
                "strict": tool.strict,
            }
            for tool in params.tools or []
        ],
        "top_logprobs": 0,
        "top_p": _default(params.top_p, 1.0),
        "truncation": "disabled",
        "metadata": dict(params.metadata or {}),
        # The spec's `user` is a string, never null: present only when the request set it.
        **({"user": params.user} if params.user is not None else {}),
    }


def finished(response: Response, outcome: Outcome, completed_at: int) -> Response:
    """The skeleton with the model's answer: `completed`, or `incomplete` with its reason."""
    reason = _INCOMPLETE.get(outcome.finish_reason or "")
    done: Response = {
        **response,
        "status": "completed" if reason is None else "incomplete",
        "completed_at": completed_at if reason is None else None,
        "incomplete_details": None if reason is None else {"reason": reason},
        "model": outcome.model or response["model"],
        "output": outcome.output,
    }
    usage = response_usage(outcome.usage)
    if usage is not None:  # the spec's `usage` is an object, never null
        done["usage"] = usage
    if outcome.service_tier:
        done["service_tier"] = outcome.service_tier
    return done


def outcome_of(completion: ChatCompletion, new_id: NewId) -> Outcome:
    """The output items of a whole `chat.completion` (its first choice)."""
    choice = completion["choices"][0] if completion["choices"] else None
    message: dict[str, Any] = dict(choice["message"]) if choice else {}
    finish = choice["finish_reason"] if choice else None
    status = "incomplete" if finish in _INCOMPLETE else "completed"
    output: list[Item] = []
    text, refusal = message.get("content"), message.get("refusal")
    if text or refusal or not message.get("tool_calls"):
        parts = [output_text(text or "")] if text or not refusal else []
        if refusal:
            parts.append({"type": "refusal", "refusal": refusal})
        output.append(message_output(new_id("msg"), parts, status))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        item = function_call_item(
            new_id("fc"),
            call.get("id", ""),
            function.get("name", ""),
            function.get("arguments", ""),
        )
        item["status"] = status
        output.append(item)
    return Outcome(
        output=output,
        finish_reason=finish,
        usage=dict(usage) if (usage := completion.get("usage")) else None,
        model=completion.get("model", ""),
        service_tier=completion.get("service_tier"),
    )


def message_output(item_id: str, parts: list[Item], status: str) -> Item:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": parts,
    }


def response_usage(usage: CompletionUsage | dict[str, Any] | None) -> dict[str, Any] | None:
    """A chat completion's usage in the Responses API's names."""
    if usage is None:
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage.get("total_tokens") or prompt + completion,
    }


def output_text_of(response: Response) -> str:
    """The text of every `output_text` part, joined (the SDKs' `output_text`)."""
    return "".join(
        part.get("text", "")
        for item in response.get("output") or []
        if item.get("type") == "message"
        for part in item.get("content") or []
        if part.get("type") == "output_text"
    )


def _default(value: Any, default: Any) -> Any:
    return default if value is None else value


def _text(params: CreateResponse) -> dict[str, Any]:
    text = params.text
    fmt = text.format if text is not None else None
    shown: dict[str, Any] = {"type": "text"}
    if isinstance(fmt, FormatJsonObject):
        shown = {"type": "json_object"}
    elif isinstance(fmt, FormatJsonSchema):
        shown = {"type": "json_schema", "name": fmt.name, "schema": fmt.schema_}
        if fmt.description is not None:
            shown["description"] = fmt.description
        shown["strict"] = fmt.strict
    verbosity = text.verbosity if text is not None else None
    return {"format": shown, "verbosity": verbosity or "medium"}


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, ToolChoiceFunction):
        return {"type": "function", "name": choice.name}
    if isinstance(choice, ToolChoiceAllowed):
        return {
            "type": "allowed_tools",
            "mode": choice.mode,
            "tools": [{"type": "function", "name": tool.name} for tool in choice.tools],
        }
    return choice if isinstance(choice, str) else "auto"
