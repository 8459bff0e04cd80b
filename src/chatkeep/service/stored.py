"""The stored form of a completion, and the stored form of its input messages.

A stored completion is the `chat.completion` object plus the request-echo fields OpenAI's
reference shows for `GET /v1/chat/completions/{id}` (wire contract §7), in the reference's
key order. Its input messages are shown by the messages endpoint as
`ChatCompletionStoreMessage` items (§10).
"""

from __future__ import annotations

from typing import Any

from chatkeep.ids import message_id
from chatkeep.protocol.requests import CreateChatCompletionRequest
from chatkeep.protocol.responses import ChatCompletion, ChatCompletionStoreMessage

# Parts the messages endpoint keeps in `content_parts`; audio and file parts have no
# representation there (the reference allows only text and image_url).
_SHOWN_PART_TYPES = frozenset({"text", "image_url"})
# Role-specific fields of an input message shown beside the reference's five keys, so that
# an export keeps whole conversations (tool calls and their results).
_EXTRA_MESSAGE_FIELDS = ("tool_calls", "tool_call_id", "function_call", "audio")


def build_stored_completion(
    completion: ChatCompletion,
    params: CreateChatCompletionRequest,
    body: dict[str, Any],
    *,
    request_id: str,
    seed: int,
) -> dict[str, Any]:
    """The stored object (without `metadata`, which the store keeps apart since it changes)."""
    return {
        "object": "chat.completion",
        "id": completion["id"],
        "model": completion["model"],
        "created": completion["created"],
        "request_id": request_id,
        "tool_choice": body.get("tool_choice"),
        "usage": completion.get("usage"),
        "seed": seed,
        "top_p": _effective(params.top_p, 1.0),
        "temperature": _effective(params.temperature, 1.0),
        "presence_penalty": _effective(params.presence_penalty, 0.0),
        "frequency_penalty": _effective(params.frequency_penalty, 0.0),
        "system_fingerprint": completion.get("system_fingerprint"),
        "input_user": params.user,
        "service_tier": completion.get("service_tier"),
        "tools": body.get("tools"),
        "choices": [_stored_choice(choice) for choice in completion["choices"]],
        "response_format": body.get("response_format"),
    }


def _effective(value: float | None, default: float) -> float:
    return float(default if value is None else value)


def _stored_choice(choice: Any) -> dict[str, Any]:
    # The reference's example shows absent `tool_calls` and `function_call` as explicit
    # nulls, but its schema types both as non-nullable: the schema wins, so they stay absent.
    return {
        "index": choice["index"],
        "message": choice["message"],
        "finish_reason": choice["finish_reason"],
        "logprobs": choice.get("logprobs"),
    }


def store_message(
    completion_id: str, index: int, message: dict[str, Any]
) -> ChatCompletionStoreMessage:
    """One input message as the messages endpoint shows it."""
    content = message.get("content")
    parts: list[dict[str, Any]] | None = None
    if isinstance(content, list):
        parts = [part for part in content if part.get("type") in _SHOWN_PART_TYPES]
        texts = [part["text"] for part in content if part.get("type") == "text"]
        content = "".join(texts) if texts else None
    shown: ChatCompletionStoreMessage = {
        "id": message_id(completion_id, index),
        "role": message["role"],
        "content": content,
        "name": message.get("name"),
        "content_parts": parts,
        # Required by the schema (the example leaves it out); an input's refusal, if any.
        "refusal": message.get("refusal"),
    }
    extras = {key: message[key] for key in _EXTRA_MESSAGE_FIELDS if key in message}
    if extras:
        return {**shown, **extras}  # type: ignore[typeddict-item]
    return shown
