"""The project's redaction applied to a response's stored copy: instructions, message text,
refusals, function-call arguments and outputs, in the input items and the output. The
client's answer is another object, never changed (docs/lifecycle.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from chatkeep.lifecycle.policy import ProjectPolicy

Item = dict[str, Any]
_TEXT_FIELDS = ("text", "refusal", "arguments")


async def redacted(
    response: Item, items: list[Item], policy: ProjectPolicy
) -> tuple[Item, list[Item]]:
    """The response and its input items as they are to be stored. In a worker thread when
    there is anything to scan, as for completions: the event loop serves others meanwhile."""
    redactor = policy.redactor
    if redactor is None or not policy.store_content:
        return response, items

    def redact() -> tuple[Item, list[Item]]:
        text = redactor.text
        stored = {**response, "output": [_item(item, text) for item in response["output"]]}
        if isinstance(response.get("instructions"), str):
            stored["instructions"] = text(response["instructions"])
        return stored, [_item(item, text) for item in items]

    return await asyncio.to_thread(redact)


def _item(item: Any, text: Callable[[str], str]) -> Any:
    if not isinstance(item, dict):
        return item
    out = {key: text(value) if key in _TEXT_FIELDS and isinstance(value, str) else value
           for key, value in item.items()}  # fmt: skip
    if isinstance(out.get("output"), str):
        out["output"] = text(out["output"])
    elif isinstance(out.get("output"), list):
        out["output"] = [_item(part, text) for part in out["output"]]
    if isinstance(out.get("content"), list):
        out["content"] = [_item(part, text) for part in out["content"]]
    return out
