"""A stored conversation as text for a terminal: the one-line summary `chatkeep logs` lists,
and the whole transcript `chatkeep logs show` prints (roles, tool calls, the answer, usage,
metadata). Pure functions of a `Conversation`; no I/O.
"""

from __future__ import annotations

import time
from typing import Any

from chatkeep.export.formats import jsonl_lines
from chatkeep.export.source import Conversation
from chatkeep.protocol.codec import encode_json

PREVIEW_CHARS = 60


def when(created: object) -> str:
    """A Unix time as `YYYY-MM-DD HH:MM:SS` in UTC (`-` when there is none)."""
    if not isinstance(created, int | float):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(created))


def one_line(text: str, limit: int = PREVIEW_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def message_text(message: dict[str, Any]) -> str:
    """The text of a stored input message, with `[image]` for each image part."""
    parts = message.get("content_parts")
    if parts:
        return " ".join(p.get("text", "") if p.get("type") == "text" else "[image]" for p in parts)
    content = message.get("content")
    return content if isinstance(content, str) else ""


def _call(call: dict[str, Any]) -> str:
    function = call.get("function") or call.get("custom") or {}
    arguments = function.get("arguments", function.get("input", ""))
    return f"{function.get('name', '?')}({arguments})"


def answer_text(message: dict[str, Any]) -> str:
    """What a choice's message said: its content, its refusal, or its tool calls."""
    if message.get("content"):
        return str(message["content"])
    if message.get("refusal"):
        return f"[refusal] {message['refusal']}"
    calls = message.get("tool_calls") or []
    if calls:
        return "[tool calls] " + ", ".join(_call(call) for call in calls)
    if message.get("function_call"):
        return "[function call] " + _call({"function": message["function_call"]})
    return ""


def tokens(usage: object) -> str:
    if not isinstance(usage, dict) or "total_tokens" not in usage:
        return "-"
    return f"{usage.get('prompt_tokens', 0)}+{usage.get('completion_tokens', 0)} tok"


def summary(conversation: Conversation) -> str:
    """One line: id, time, model, tokens, the last user message and the first answer."""
    completion = conversation.completion
    users = [m for m in conversation.messages if m.get("role") == "user"]
    asked = one_line(message_text(users[-1])) if users else ""
    choices = completion.get("choices") or [{}]
    said = one_line(answer_text(choices[0].get("message") or {}))
    return (
        f"{conversation.id}  {when(completion.get('created'))}  {completion.get('model')}  "
        f"{tokens(completion.get('usage'))}  {asked} → {said}"
    )


def _message_lines(message: dict[str, Any]) -> list[str]:
    role = str(message.get("role"))
    if message.get("name"):
        role += f" ({message['name']})"
    if message.get("tool_call_id"):
        role += f" [{message['tool_call_id']}]"
    lines = [f"{role}: {message_text(message)}".rstrip()]
    for part in message.get("content_parts") or []:
        if part.get("type") == "image_url":
            lines.append(f"  [image] {(part.get('image_url') or {}).get('url', '')}")
    lines += [f"  → {call.get('id', '')} {_call(call)}" for call in message.get("tool_calls") or []]
    if message.get("function_call"):
        lines.append(f"  → {_call({'function': message['function_call']})}")
    if message.get("refusal"):
        lines.append(f"  [refusal] {message['refusal']}")
    return lines


def _usage_line(usage: object) -> str:
    if not isinstance(usage, dict):
        return "usage:    -"
    return (
        f"usage:    {usage.get('prompt_tokens', 0)} prompt + "
        f"{usage.get('completion_tokens', 0)} completion = {usage.get('total_tokens', 0)} tokens"
    )


def transcript(conversation: Conversation) -> list[str]:
    """The whole conversation, line by line."""
    completion = conversation.completion
    metadata = completion.get("metadata") or {}
    lines = [
        f"id:       {conversation.id}",
        f"created:  {when(completion.get('created'))} UTC",
        f"model:    {completion.get('model')}",
        f"metadata: {', '.join(f'{k}={v}' for k, v in metadata.items()) or 'none'}",
        _usage_line(completion.get("usage")),
    ]
    tools = completion.get("tools") or []
    if tools:
        names = [(t.get("function") or t.get("custom") or {}).get("name", "?") for t in tools]
        lines.append(f"tools:    {', '.join(names)}")
    lines.append("")
    for message in conversation.messages:
        lines += _message_lines(message)
    choices = completion.get("choices") or []
    for choice in choices:
        number = f" {choice.get('index', 0) + 1} of {len(choices)}" if len(choices) > 1 else ""
        lines += ["", f"── answer{number} (finish_reason: {choice.get('finish_reason')}) ──"]
        message = choice.get("message") or {}
        lines.append(f"assistant: {message.get('content') or ''}".rstrip())
        lines += _message_lines({**message, "role": "", "content": None})[1:]
    return lines


def as_json(conversation: Conversation) -> str:
    """The stored object with its `messages`, as `chatkeep export --format jsonl` has it."""
    return encode_json(jsonl_lines(conversation, False)[0]).decode()
