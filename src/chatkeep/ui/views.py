"""What the pages show of a stored completion: its conversation as turns of typed parts,
its choices, usage and echoed parameters, and the one-line previews of the list.

Only plain data comes out of here; the templates escape every string. An image is shown
only from a `data:` URL of a raster type; a remote image URL becomes a link (not loaded, so
opening a page tells no third party), and any other URL is shown as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

PREVIEW_CHARS = 140
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+", re.ASCII)
_WEB_URL = re.compile(r"https?://[^\s]+", re.IGNORECASE)
# The request's parameters echoed by a stored completion, in the reference's order.
_ECHOED = (
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "tool_choice",
    "response_format",
    "service_tier",
    "system_fingerprint",
    "input_user",
)


@dataclass(frozen=True, slots=True)
class Part:
    """One piece of a message: `text`, `image` (a data URL), `link` (a remote image),
    `refusal`, or `other` (a part type shown as JSON)."""

    kind: str
    text: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # pretty JSON when the arguments parse, else as sent


@dataclass(frozen=True, slots=True)
class Turn:
    role: str
    name: str = ""
    parts: list[Part] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str = ""


@dataclass(frozen=True, slots=True)
class Choice:
    index: int
    turn: Turn
    finish_reason: str
    logprobs: list[dict[str, Any]] | None
    logprobs_json: str


def pretty_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()


def when(created: int) -> str:
    """A Unix time as the pages show it: UTC, to the second."""
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso(created: int) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat().replace("+00:00", "Z")


def turn_of(message: dict[str, Any]) -> Turn:
    """One message of a conversation (a request's input, or a choice's answer)."""
    parts = _parts(message.get("content"))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append(Part("refusal", refusal))
    audio = message.get("audio")
    if isinstance(audio, dict) and audio.get("transcript"):
        parts.append(Part("text", str(audio["transcript"])))
    calls = [_tool_call(call) for call in message.get("tool_calls") or [] if isinstance(call, dict)]
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        calls.append(_tool_call({"id": "", "function": legacy}))
    return Turn(
        role=str(message.get("role", "")),
        name=str(message.get("name") or ""),
        parts=parts,
        tool_calls=calls,
        tool_call_id=str(message.get("tool_call_id") or ""),
    )


def _parts(content: Any) -> list[Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [Part("text", content)] if content else []
    if not isinstance(content, list):
        return [Part("other", pretty_json(content))]
    parts: list[Part] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append(Part("text", str(part.get("text", ""))))
        elif kind == "refusal":
            parts.append(Part("refusal", str(part.get("refusal", ""))))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url", "") if isinstance(image, dict) else ""
            parts.append(_image(str(url)))
        else:
            parts.append(Part("other", pretty_json(part)))
    return parts


def _image(url: str) -> Part:
    if _DATA_IMAGE.fullmatch(url):
        return Part("image", url=url)
    if _WEB_URL.fullmatch(url):
        return Part("link", text=url, url=url)
    return Part("other", text=url[:200])  # no link: not a scheme a page may follow


def _tool_call(call: dict[str, Any]) -> ToolCall:
    function = call.get("function")
    if not isinstance(function, dict):
        function = {}
    name = str(function.get("name") or "")
    return ToolCall(str(call.get("id") or ""), name, _pretty_arguments(function.get("arguments")))


def _pretty_arguments(arguments: Any) -> str:
    """Arguments as pretty JSON; a string that is no JSON (a model's mistake) as it came."""
    if not isinstance(arguments, str):
        return pretty_json(arguments) if arguments is not None else ""
    try:
        return pretty_json(orjson.loads(arguments))
    except orjson.JSONDecodeError:
        return arguments


def choices_of(stored: dict[str, Any]) -> list[Choice]:
    shown = []
    for choice in stored.get("choices") or []:
        logprobs = choice.get("logprobs")
        tokens = logprobs.get("content") if isinstance(logprobs, dict) else None
        shown.append(
            Choice(
                index=int(choice.get("index", 0)),
                turn=turn_of(choice.get("message") or {}),
                finish_reason=str(choice.get("finish_reason") or ""),
                logprobs=tokens if isinstance(tokens, list) else None,
                logprobs_json=pretty_json(logprobs) if logprobs else "",
            )
        )
    return shown


def echoed_params(stored: dict[str, Any]) -> list[tuple[str, str]]:
    """The request's parameters the stored completion echoes, those that are set."""
    shown = []
    for name in _ECHOED:
        value = stored.get(name)
        if value is None:
            continue
        shown.append((name, value if isinstance(value, str) else pretty_json(value)))
    return shown


def preview(text: str) -> str:
    """One line of at most `PREVIEW_CHARS` characters."""
    line = " ".join(text.split())
    return line if len(line) <= PREVIEW_CHARS else line[: PREVIEW_CHARS - 1] + "…"


def turn_preview(turn: Turn) -> str:
    texts = [part.text for part in turn.parts if part.kind in ("text", "refusal")]
    if not texts:
        texts = [f"[{part.kind}]" for part in turn.parts]
    texts += [f"{call.name}(…)" for call in turn.tool_calls]
    return preview(" ".join(texts))


def last_user_preview(messages: list[dict[str, Any]] | None) -> str:
    for message in reversed(messages or []):
        if message.get("role") == "user":
            return turn_preview(turn_of(message))
    return ""


def answer_preview(stored: dict[str, Any]) -> str:
    choices = stored.get("choices") or []
    return turn_preview(turn_of(choices[0].get("message") or {})) if choices else ""


def finish_reasons(stored: dict[str, Any]) -> str:
    reasons = {str(c.get("finish_reason")) for c in stored.get("choices") or []}
    return ", ".join(sorted(reasons))


def total_tokens(stored: dict[str, Any]) -> int | None:
    usage = stored.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("total_tokens"), int):
        return int(usage["total_tokens"])
    return None
