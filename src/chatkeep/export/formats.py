"""The export formats: each turns one `Conversation` into the JSON lines it writes.

- `openai-finetune`: OpenAI's supervised fine-tuning line (`FineTuneChatRequestInput`),
  `{"messages": [...inputs, answer], "tools": [...], "parallel_tool_calls": true}`.
- `openai-evals`: an item of an OpenAI eval's `custom` data source with its sample,
  `{"item": {"input": [...], ...}, "sample": {"output_text": ..., ...}}`.
- `jsonl`: the stored object as `GET /v1/chat/completions/{id}` returns it, plus
  `"messages"`: its input messages as `GET .../{id}/messages` lists them.

The first two write one line per choice (`n > 1` gives n examples with the same input).
docs/export.md says why each field is what it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chatkeep.export.options import ExportFormat
from chatkeep.export.source import Conversation

Line = dict[str, Any]
# (conversation, only_stop) -> the lines to write; [] leaves the conversation out.
Formatter = Callable[[Conversation, bool], list[Line]]
# Roles whose message needs content: without it (an audio- or file-only message, which the
# messages endpoint cannot show) the example would not be the conversation that happened.
_NEEDS_CONTENT = frozenset({"system", "developer", "user", "tool", "function"})


def _part(part: dict[str, Any]) -> dict[str, Any]:
    """A `content_parts` item as a request's content part (text or image_url)."""
    if part.get("type") == "image_url":
        image = part.get("image_url") or {}
        shown = {"url": image.get("url")}
        if image.get("detail") is not None:
            shown["detail"] = image["detail"]
        return {"type": "image_url", "image_url": shown}
    return {"type": "text", "text": part.get("text", "")}


def request_message(stored: dict[str, Any]) -> dict[str, Any] | None:
    """A stored input message (`ChatCompletionStoreMessage`) as the create request's
    message it was; None when it cannot be one (a content-bearing role without content).

    `developer` becomes `system`: the fine-tuning format knows system, user, assistant,
    tool and function messages only, and OpenAI treats the two alike.
    """
    role = stored["role"]
    parts = stored.get("content_parts")
    content: Any = [_part(p) for p in parts] if parts else stored.get("content")
    if content is None and role in _NEEDS_CONTENT:
        return None
    message: dict[str, Any] = {"role": "system" if role == "developer" else role}
    message["content"] = content
    if stored.get("name") is not None and role not in ("tool",):
        message["name"] = stored["name"]
    for key in ("tool_calls", "tool_call_id", "function_call"):
        if stored.get(key) is not None:
            message[key] = stored[key]
    if role == "assistant" and stored.get("refusal") is not None:
        message["refusal"] = stored["refusal"]
    return message


def answer_message(message: dict[str, Any]) -> dict[str, Any]:
    """A choice's message as an assistant message of a request: its content, refusal and
    tool calls; response-only fields (annotations, audio, logprobs) left out."""
    answer: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
    if message.get("refusal") is not None:
        answer["refusal"] = message["refusal"]
    if message.get("tool_calls"):
        answer["tool_calls"] = message["tool_calls"]
    if message.get("function_call") is not None:
        answer["function_call"] = message["function_call"]
    return answer


def _inputs(conversation: Conversation) -> list[dict[str, Any]] | None:
    inputs = [request_message(m) for m in conversation.messages]
    if not inputs or any(m is None for m in inputs):
        return None
    return [m for m in inputs if m is not None]


def _choices(conversation: Conversation, only_stop: bool) -> list[dict[str, Any]]:
    choices: list[dict[str, Any]] = conversation.completion.get("choices") or []
    return [c for c in choices if not only_stop or c.get("finish_reason") == "stop"]


def _parallel(messages: list[dict[str, Any]]) -> bool:
    """Whether an assistant message of the example made several tool calls at once."""
    return any(len(m.get("tool_calls") or ()) > 1 for m in messages)


def finetune_lines(conversation: Conversation, only_stop: bool) -> list[Line]:
    inputs = _inputs(conversation)
    if inputs is None:
        return []
    tools = conversation.completion.get("tools")
    lines = []
    for choice in _choices(conversation, only_stop):
        messages = [*inputs, answer_message(choice["message"])]
        line: Line = {"messages": messages}
        if tools:
            line["tools"] = tools
            # The request's own setting is not part of the stored object; an example
            # holding parallel calls shows it was on (and off is not OpenAI's default).
            if _parallel(messages):
                line["parallel_tool_calls"] = True
        lines.append(line)
    return lines


def evals_lines(conversation: Conversation, only_stop: bool) -> list[Line]:
    inputs = _inputs(conversation)
    if inputs is None:
        return []
    completion = conversation.completion
    lines = []
    for choice in _choices(conversation, only_stop):
        item: dict[str, Any] = {"input": inputs}
        if completion.get("tools"):
            item["tools"] = completion["tools"]
        item["completion_id"] = conversation.id
        item["choice_index"] = choice["index"]
        item["metadata"] = completion.get("metadata") or {}
        answer = answer_message(choice["message"])
        sample: dict[str, Any] = {
            "model": completion.get("model"),
            "output": [answer],
            "output_text": answer["content"] if isinstance(answer["content"], str) else "",
        }
        if answer.get("tool_calls"):
            sample["output_tools"] = answer["tool_calls"]
        sample["finish_reason"] = choice.get("finish_reason")
        sample["usage"] = completion.get("usage")
        for key in ("temperature", "top_p", "seed"):
            sample[key] = completion.get(key)
        lines.append({"item": item, "sample": sample})
    return lines


def jsonl_lines(conversation: Conversation, only_stop: bool) -> list[Line]:
    choices = conversation.completion.get("choices") or []
    if only_stop and any(c.get("finish_reason") != "stop" for c in choices):
        return []
    return [{**conversation.completion, "messages": conversation.messages}]


FORMATTERS: dict[ExportFormat, Formatter] = {
    "openai-finetune": finetune_lines,
    "openai-evals": evals_lines,
    "jsonl": jsonl_lines,
}
