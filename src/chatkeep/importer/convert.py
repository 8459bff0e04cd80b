"""A source's completion, as its list and messages routes show it, as a `NewCompletion`.

The stored object is kept as the source returns it (its `id`, `created`, `model`, choices,
usage, echoed parameters), minus `metadata`, which the store keeps beside it. The input
messages come back from `GET .../messages` items: the listing's own fields (`id`, and
`name`, `refusal`, `content_parts` when null) go, content parts become the content again.

Ids: a chatkeep id that says its own creation time is kept as it is. Any other (OpenAI's
are random) is kept as the completion's alias, and the completion is stored under an id
minted at its `created` time, so that the store's order, time ranges, partitions and
retention see it when it was made (`store.imports`).
"""

from __future__ import annotations

from typing import Any

import orjson

from chatkeep.errors import InvalidRequestError
from chatkeep.ids import completion_id_at, completion_id_ms, is_completion_id
from chatkeep.protocol.requests import parse_update_request
from chatkeep.store.base import NewCompletion

# Fields a messages-list item carries beside the message itself.
_LISTING_FIELDS = frozenset({"id", "content_parts"})
_NULLABLE = ("name", "refusal", "tool_calls", "tool_call_id", "function_call", "audio")


class Unimportable(ValueError):
    """A source item that cannot be stored as it is; the message says why."""


def input_message(listed: dict[str, Any]) -> dict[str, Any]:
    """A messages-list item as the input message it was."""
    message = {k: v for k, v in listed.items() if k not in _LISTING_FIELDS}
    parts = listed.get("content_parts")
    if parts:
        message["content"] = [dict(part) for part in parts]
    for key in _NULLABLE:
        if message.get(key, 0) is None:
            del message[key]
    if message.get("content") is None and message.get("role") != "assistant":
        message.pop("content", None)
    return message


def own_id(completion_id: str, created: int) -> bool:
    """Whether `completion_id` is a chatkeep id minted in the second `created` says."""
    return is_completion_id(completion_id) and completion_id_ms(completion_id) // 1000 == created


def new_completion(
    project: str,
    item: dict[str, Any],
    messages: list[dict[str, Any]],
    metadata: dict[str, str],
) -> NewCompletion:
    """What to store for a source's list item and its listed messages; `metadata` is
    added to (and wins over) the item's own."""
    original = item.get("id")
    created = item.get("created")
    model = item.get("model")
    if not isinstance(original, str) or not is_completion_id(original):
        raise Unimportable(f"its id {original!r} is not a chat completion id (chatcmpl-...)")
    if not isinstance(created, int) or isinstance(created, bool) or created < 0:
        raise Unimportable(f"{original} has no valid 'created' time")
    if not isinstance(model, str) or not model:
        raise Unimportable(f"{original} has no model")
    stored = {key: value for key, value in item.items() if key != "metadata"}
    merged = {**(item.get("metadata") or {}), **metadata}
    try:  # the API's own rules for a metadata map (16 pairs, 64/512 characters)
        merged = parse_update_request(orjson.dumps({"metadata": merged}))
    except InvalidRequestError as exc:
        raise Unimportable(f"{original}: {exc.message}") from None
    if own_id(original, created):
        return NewCompletion(original, project, model, created, stored, merged,
                             [input_message(m) for m in messages])  # fmt: skip
    stored_as = completion_id_at(created * 1000 + int.from_bytes(original.encode()[-2:]) % 1000)
    return NewCompletion(stored_as, project, model, created, stored, merged,
                         [input_message(m) for m in messages], alias=original)  # fmt: skip
