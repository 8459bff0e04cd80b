"""Where the text is in Chat Completions messages, and how to redact it without mutating.

The messages and the completion handed in are the very objects the client is answered
with, so nothing here writes to them: a changed string gives a new dict around it, and a
new dict or list around that, up to the top; everything unchanged is shared. When nothing
changed, the input itself comes back, so the caller pays for no copy.

Redacted: what people and models write (`content` strings and text parts, `refusal`, tool
call arguments and custom tool input, legacy `function_call` arguments, tool results, the
audio transcript, reasoning text); a redacted choice loses its token `logprobs`. Left as
is: what names or routes (`role`, `name`, `tool_call_id`, tool names, ids) and binary or
referenced parts (images, audio, files), which no text detector can read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Redact = Callable[[str], str]
Change = Callable[[Any, Redact], Any]


def redact_messages(messages: list[dict[str, Any]], redact: Redact) -> list[dict[str, Any]]:
    """A request's `messages` list, each message redacted (`redact_message`)."""
    redacted: list[dict[str, Any]] = _each(messages, redact, redact_message)
    return redacted


def redact_completion(completion: dict[str, Any], redact: Redact) -> dict[str, Any]:
    """A `chat.completion` object with each `choices[].message` redacted; nothing else."""
    redacted: dict[str, Any] = _field(completion, "choices", redact, _choices)
    return redacted


def redact_message(message: Any, redact: Redact) -> Any:
    """One message, of a request (any role) or of a completion's choice."""
    if not isinstance(message, dict):
        return message
    changed = _field(message, "content", redact, _content)
    changed = _field(changed, "refusal", redact, _string)
    changed = _field(changed, "tool_calls", redact, _tool_calls)
    changed = _field(changed, "function_call", redact, _arguments)
    # What reasoning models send beside the answer (vLLM's `reasoning_content`, others'
    # `reasoning`), kept in the stored message as relayed.
    changed = _field(changed, "reasoning_content", redact, _string)
    changed = _field(changed, "reasoning", redact, _string)
    return _field(changed, "audio", redact, _transcript)


def _choices(choices: Any, redact: Redact) -> Any:
    return _each(choices, redact, _choice)


def _choice(choice: Any, redact: Redact) -> Any:
    changed = _field(choice, "message", redact, redact_message)
    if changed is not choice and changed.get("logprobs") is not None:
        # Token logprobs spell the answer out a token at a time, where no detector sees a
        # secret split across tokens: a choice that was redacted keeps none of them.
        changed = {**changed, "logprobs": None}
    return changed


def _content(content: Any, redact: Redact) -> Any:
    if isinstance(content, str):
        return redact(content)
    return _each(content, redact, _part)


def _part(part: Any, redact: Redact) -> Any:
    # Text and refusal parts carry text; image_url, input_audio and file parts do not.
    if not isinstance(part, dict):
        return part
    kind = part.get("type")
    if kind == "text":
        return _field(part, "text", redact, _string)
    if kind == "refusal":
        return _field(part, "refusal", redact, _string)
    return part


def _tool_calls(calls: Any, redact: Redact) -> Any:
    return _each(calls, redact, _tool_call)


def _tool_call(call: Any, redact: Redact) -> Any:
    # Arguments are redacted as the string they are, not parsed: a placeholder inside a
    # JSON string keeps it valid JSON, and re-serialising would change the stored bytes.
    changed = _field(call, "function", redact, _arguments)
    return _field(changed, "custom", redact, _input)


def _arguments(function: Any, redact: Redact) -> Any:
    return _field(function, "arguments", redact, _string)


def _input(custom: Any, redact: Redact) -> Any:
    return _field(custom, "input", redact, _string)


def _transcript(audio: Any, redact: Redact) -> Any:
    return _field(audio, "transcript", redact, _string)


def _string(value: Any, redact: Redact) -> Any:
    return redact(value) if isinstance(value, str) else value


def _field(container: Any, key: str, redact: Redact, change: Change) -> Any:
    """`container` with `container[key]` changed, copied only if the value is new."""
    if not isinstance(container, dict) or key not in container:
        return container
    value = container[key]
    new = change(value, redact)
    if new is value:
        return container
    return {**container, key: new}


def _each(items: Any, redact: Redact, change: Change) -> Any:
    """`items` (a list) with each item changed, copied only if some item is new."""
    if not isinstance(items, list):
        return items
    copied: list[Any] | None = None
    for index, item in enumerate(items):
        new = change(item, redact)
        if new is not item:
            if copied is None:
                copied = list(items)
            copied[index] = new
    return items if copied is None else copied
