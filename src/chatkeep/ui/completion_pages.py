"""The completions pages: the list (newest first, filtered, paged by cursor), one
completion, its metadata edit and its deletion. Each calls the same service functions as
the API route that is its JSON twin, with the same checks and the same messages.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.responses import Response

from chatkeep.errors import InvalidRequestError
from chatkeep.ids import is_completion_id
from chatkeep.protocol.queries import DEFAULT_LIMIT
from chatkeep.protocol.requests import parse_update_request
from chatkeep.ui import snippets, views
from chatkeep.ui.call import Call
from chatkeep.ui.filters import ListFilters, parse_filters

# Blank rows the metadata form offers for new pairs.
NEW_METADATA_ROWS = 2


async def list_page(call: Call) -> Response:
    params = call.request.query_params.multi_items()
    try:
        filters = parse_filters(params)
    except InvalidRequestError as error:
        return await _list(call, _typed_filters(params), [], has_more=False, error=error.message)
    page = await call.services.stored.list_chat_completions(call.project, filters.to_query())
    rows = page["data"]
    # The previews need each completion's input: one indexed read each, side by side.
    messages = await asyncio.gather(
        *(call.services.store.messages(call.project, row["id"]) for row in rows)
    )
    shown = [_row(row, inputs) for row, inputs in zip(rows, messages, strict=True)]
    return await _list(call, filters, shown, has_more=page["has_more"], error="")


def _row(stored: dict[str, Any], messages: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {
        "id": stored["id"],
        "when": views.when(stored["created"]),
        "iso": views.iso(stored["created"]),
        "model": stored["model"],
        "question": views.last_user_preview(messages),
        "answer": views.answer_preview(stored),
        "tokens": views.total_tokens(stored),
        "finish": views.finish_reasons(stored),
        "metadata": sorted((stored.get("metadata") or {}).items()),
    }


def _typed_filters(params: list[tuple[str, str]]) -> ListFilters:
    """What was typed, kept for the form even when it did not pass the checks."""
    single = dict(params)
    keys = [v for k, v in params if k == "mk"]
    values = [v for k, v in params if k == "mv"]
    pairs = tuple(zip(keys, values + [""] * (len(keys) - len(values)), strict=False))
    return ListFilters(
        model=single.get("model", ""),
        metadata=pairs,
        created_from=single.get("from", ""),
        created_until=single.get("until", ""),
        search=single.get("q", ""),
    )


def _deleted_id(call: Call) -> str:
    """The id the previous page deleted (shown only if it has an id's shape)."""
    deleted = call.request.query_params.get("deleted", "")
    return deleted if is_completion_id(deleted) else ""


async def _list(
    call: Call, filters: ListFilters, rows: list[dict[str, Any]], *, has_more: bool, error: str
) -> Response:
    next_url = filters.page_url(after=rows[-1]["id"]) if has_more and rows else ""
    try:
        twin = filters.api_url()
    except InvalidRequestError:
        twin = "/v1/chat/completions?order=desc"
    return call.render(
        "list.html",
        status=400 if error else 200,
        filters=filters,
        rows=rows,
        next_url=next_url,
        first_url=filters.page_url() if filters.after else "",
        error=error,
        json_twin=twin,
        models=await call.services.store.models(call.project),  # the models seen
        default_limit=DEFAULT_LIMIT,
        deleted=_deleted_id(call),
    )


async def detail_page(call: Call) -> Response:
    saved = call.request.query_params.get("saved") == "1"
    return await _detail(call, saved=saved)


async def _detail(
    call: Call,
    *,
    saved: bool = False,
    error: str = "",
    typed: list[tuple[str, str]] | None = None,
) -> Response:
    completion_id = call.path_param("completion_id")
    stored = await call.services.stored.retrieve_chat_completion(call.project, completion_id)
    messages = await call.services.store.messages(call.project, completion_id) or []
    metadata = sorted((stored.get("metadata") or {}).items())
    rows = typed if typed is not None else metadata + [("", "")] * NEW_METADATA_ROWS
    request = snippets.replay_request(stored, messages)
    base = call.base_url()
    return call.render(
        "detail.html",
        status=400 if error else 200,
        completion=stored,
        when=views.when(stored["created"]),
        iso=views.iso(stored["created"]),
        turns=[views.turn_of(message) for message in messages],
        choices=views.choices_of(stored),
        usage=stored.get("usage"),
        usage_json=views.pretty_json(stored.get("usage")) if stored.get("usage") else "",
        params=views.echoed_params(stored),
        tools_json=views.pretty_json(stored["tools"]) if stored.get("tools") else "",
        metadata=metadata,
        metadata_rows=rows,
        saved=saved,
        error=error,
        copy_json=views.pretty_json(stored),
        copy_curl=snippets.curl_snippet(base, request),
        copy_python=snippets.python_snippet(base, request),
        json_twin=f"/v1/chat/completions/{completion_id}",
        messages_twin=f"/v1/chat/completions/{completion_id}/messages",
    )


async def update_metadata(call: Call) -> Response:
    """Replace the metadata with the form's pairs; a cleared or ticked row is removed."""
    keys, values = call.form_values("mk"), call.form_values("mv")
    removed = set(call.form_values("rm"))
    typed = list(zip(keys, values + [""] * (len(keys) - len(values)), strict=False))
    metadata: dict[str, str] = {}
    try:
        for index, (key, value) in enumerate(typed):
            if str(index) in removed or (not key and not value):
                continue
            if not key:  # the API takes an empty key; in a form it is a forgotten one
                raise InvalidRequestError(f"The value '{value}' has no key.", param="metadata")
            if key in metadata:
                raise InvalidRequestError(f"The key '{key}' is given twice.", param="metadata")
            metadata[key] = value
        # The API's own parser: its limits and its messages, word for word.
        checked = parse_update_request(orjson.dumps({"metadata": metadata}))
    except InvalidRequestError as error:
        return await _detail(call, error=error.message, typed=typed)
    completion_id = call.path_param("completion_id")
    await call.services.stored.update_chat_completion(call.project, completion_id, checked)
    return call.redirect(f"/ui/completions/{completion_id}?saved=1")


async def delete_page(call: Call) -> Response:
    """The confirmation: what will be deleted, and the button that does it."""
    completion_id = call.path_param("completion_id")
    stored = await call.services.stored.retrieve_chat_completion(call.project, completion_id)
    return call.render(
        "delete.html",
        completion=stored,
        when=views.when(stored["created"]),
        answer=views.answer_preview(stored),
        json_twin=f"/v1/chat/completions/{completion_id}",
    )


async def delete(call: Call) -> Response:
    completion_id = call.path_param("completion_id")
    await call.services.stored.delete_chat_completion(call.project, completion_id)
    return call.redirect(f"/ui?deleted={completion_id}")
