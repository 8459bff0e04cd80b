"""Items of the Responses API: the stored form of input items, and turning stored items
(inputs and outputs, of this call and of the chain before it) into chat messages.

An input item is stored as `GET /v1/responses/{id}/input_items` serves it: with an `id`
and a `status`, its content always a list of parts. Output items are those of the stored
Response. Both kinds turn into Chat Completions messages the same way, so a continued
conversation is rebuilt from what the store holds, never from anything the client resent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from chatkeep.errors import InvalidRequestError
from chatkeep.responses.request import (
    FunctionCallItem,
    FunctionCallOutputItem,
    InputImage,
    InputText,
    MessageItem,
    OutputText,
    Refusal,
)

Item = dict[str, Any]
Message = dict[str, Any]
NewId = Callable[[str], str]  # prefix -> a new item id


def stored_input_items(value: str | list[Any] | None, new_id: NewId) -> list[Item]:
    """The input as stored and listed: a string is one user message; every item gets an id
    (an id the client sent back with an earlier output item is kept, unless repeated)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [_message_item(new_id("msg"), "user", [_input_text(value)])]
    items: list[Item] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        kept = item.id
        if isinstance(item, MessageItem):
            parts = _parts(item, index)
            item_id = kept if kept and _fresh(kept, seen, "msg") else new_id("msg")
            items.append(_message_item(item_id, item.role, parts))
        elif isinstance(item, FunctionCallItem):
            item_id = kept if kept and _fresh(kept, seen, "fc") else new_id("fc")
            items.append(function_call_item(item_id, item.call_id, item.name, item.arguments))
        elif isinstance(item, FunctionCallOutputItem):
            item_id = kept if kept and _fresh(kept, seen, "fco") else new_id("fco")
            output: str | list[Item] = (
                item.output
                if isinstance(item.output, str)
                else [_input_text(part.text) for part in item.output]
            )
            items.append(
                {
                    "id": item_id,
                    "type": "function_call_output",
                    "call_id": item.call_id,
                    "output": output,
                    "status": "completed",
                }
            )
        seen.add(items[-1]["id"])
    return items


def _fresh(value: Any, seen: set[str], prefix: str) -> bool:
    return isinstance(value, str) and value.startswith(prefix + "_") and value not in seen


def _input_text(text: str) -> Item:
    return {"type": "input_text", "text": text}


def output_text(text: str) -> Item:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(item_id: str, role: str, parts: list[Item]) -> Item:
    return {"id": item_id, "type": "message", "role": role, "content": parts, "status": "completed"}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str) -> Item:
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }


def _parts(item: MessageItem, index: int) -> list[Item]:
    """A message's content as stored parts: input parts for user, system and developer
    messages, output parts (`output_text`, `refusal`) for assistant ones."""
    content = item.content
    assistant = item.role == "assistant"
    if isinstance(content, str):
        return [output_text(content) if assistant else _input_text(content)]
    parts: list[Item] = []
    for position, part in enumerate(content):
        where = f"input[{index}].content[{position}]"
        if isinstance(part, InputText | OutputText):
            parts.append(output_text(part.text) if assistant else _input_text(part.text))
        elif isinstance(part, Refusal) and assistant:
            parts.append({"type": "refusal", "refusal": part.refusal})
        elif isinstance(part, InputImage) and item.role == "user":
            parts.append(
                {
                    "type": "input_image",
                    "image_url": part.image_url,
                    "detail": part.detail or "auto",
                }
            )
        else:
            raise InvalidRequestError(
                f"Invalid '{where}.type': a '{part.type}' part is not allowed in a message "
                f"with role '{item.role}'.",
                param=f"{where}.type",
                code="invalid_value",
            )
    return parts


def chat_messages(items: Iterable[Item]) -> list[Message]:
    """Chat Completions messages for stored items (inputs or outputs), in order. Function
    calls that follow one another (or an assistant message) join one assistant message,
    as a model's parallel calls do."""
    messages: list[Message] = []
    for item in items:
        kind = item.get("type")
        if kind == "message":
            messages.append(_chat_message(item))
        elif kind == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item["output"]
            if not isinstance(output, str):
                output = "".join(part.get("text", "") for part in output)
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": output})
    return messages


def _chat_message(item: Item) -> Message:
    role, parts = item["role"], item["content"]
    if role == "assistant":
        text = "".join(p["text"] for p in parts if p.get("type") == "output_text")
        refusal = "".join(p["refusal"] for p in parts if p.get("type") == "refusal")
        message: Message = {"role": "assistant", "content": text}
        if refusal:
            message["refusal"] = refusal
        return message
    if role != "user" or all(p.get("type") == "input_text" for p in parts):
        return {"role": role, "content": "".join(p["text"] for p in parts)}
    return {"role": role, "content": [_chat_part(p) for p in parts]}


def _chat_part(part: Item) -> Item:
    if part["type"] == "input_image":
        image: Item = {"url": part["image_url"]}
        if part.get("detail") in ("auto", "low", "high"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    return {"type": "text", "text": part["text"]}


def conversation(
    instructions: str | None, chain: Sequence[tuple[list[Item], list[Item]]], items: list[Item]
) -> list[Message]:
    """What the model sees: this call's instructions (earlier ones are not carried over, as
    OpenAI documents), each earlier turn's inputs and outputs, then this call's inputs."""
    messages: list[Message] = []
    if instructions is not None:
        messages.append({"role": "system", "content": instructions})
    for inputs, outputs in chain:
        messages += chat_messages(inputs)
        messages += chat_messages(outputs)
    messages += chat_messages(items)
    return messages
