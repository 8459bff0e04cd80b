"""The Responses API's service: create (plain and streamed), retrieve, delete, input items.

A create rebuilds the conversation (the stored chain before `previous_response_id`, then
this call's input), makes the one Chat Completions call that answers it through the model
router (the same backends, echo or upstream, as chat completions), and turns the answer
into a Response. `store` (default true, as OpenAI's) is ruled by the project's policy, as
for completions; a stored response is committed before the client gets it, or before the
`response.completed` event of a stream. A stream that breaks stores nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from chatkeep.backends.base import Backend, BackendRequest
from chatkeep.errors import ChatkeepError, InvalidRequestError, NotFoundError
from chatkeep.ids import CompletionIdGenerator
from chatkeep.log_lines import RESPONSE_LINE
from chatkeep.log_writer import LineLog
from chatkeep.protocol.responses import CursorPage
from chatkeep.response_ids import ResponseIdGenerator, is_response_id
from chatkeep.responses import chat_call
from chatkeep.responses.events import EventWriter
from chatkeep.responses.items import conversation, stored_input_items
from chatkeep.responses.objects import Response, finished, outcome_of, skeleton
from chatkeep.responses.redaction import redacted
from chatkeep.responses.request import ParsedResponseRequest
from chatkeep.service.completions import CallContext, ModelRouter
from chatkeep.store.responses import ChainBroken, NewResponse, ResponseStore, Turn
from chatkeep.usage.meter import UsageMeter

logger = logging.getLogger(__name__)


def not_found(response_id: str) -> NotFoundError:
    return NotFoundError(
        f"Response with id '{response_id}' not found.", param="response_id", code=None
    )


def previous_not_found(response_id: str, missing: str) -> NotFoundError:
    """OpenAI's 404 for `previous_response_id`; `missing` is the link of its chain that is
    gone (deleted, purged, never stored, another project's), named when it is another."""
    broken = (
        ""
        if missing == response_id
        else f" (an earlier response of its chain, '{missing}', is gone)"
    )
    return NotFoundError(
        f"Previous response with id '{response_id}' not found{broken}.",
        param="previous_response_id",
        code="previous_response_not_found",
    )


@dataclass(frozen=True, slots=True)
class _Call:
    """One create call, prepared: the backend and its request, the Response so far."""

    parsed: ParsedResponseRequest
    context: CallContext
    store: bool
    backend: Backend
    request: BackendRequest
    response: Response
    items: list[dict[str, Any]]
    started: float


class ResponseService:
    """The Responses API over a `ResponseStore` and the model router."""

    def __init__(
        self,
        store: ResponseStore,
        router: ModelRouter,
        completion_ids: CompletionIdGenerator,
        ids: ResponseIdGenerator | None = None,
        meter: UsageMeter | None = None,
        lines: LineLog | None = None,
    ) -> None:
        self._store = store
        self._router = router
        self._completion_ids = completion_ids
        self._ids = ids or ResponseIdGenerator()
        self._meter = meter
        self._lines = lines or LineLog()

    def stores(self, parsed: ParsedResponseRequest, context: CallContext) -> bool:
        asked = parsed.params.store
        return context.policy.decides_store(True if asked is None else asked)

    async def _prepare(
        self, parsed: ParsedResponseRequest, context: CallContext, *, stream: bool
    ) -> _Call:
        started = time.perf_counter()
        params = parsed.params
        chain: list[Turn] = []
        if params.previous_response_id is not None:
            try:
                chain = await self._store.chain(context.project, params.previous_response_id)
            except ChainBroken as broken:
                missing = broken.response_id
                raise previous_not_found(params.previous_response_id, missing) from None
        items = stored_input_items(params.input, self._ids.item_id)
        messages = conversation(
            params.instructions, [(t.input_items, t.output) for t in chain], items
        )
        if not messages:
            raise InvalidRequestError(
                "Missing required parameter: 'input'.",
                param="input",
                code="missing_required_parameter",
            )
        body = chat_call.chat_body(params, messages, stream=stream)
        chat_params = chat_call.validated(body)
        backend = self._router.backend_for(params.model)
        completion_id, created_ms = self._completion_ids.new_id()
        request = BackendRequest(
            params=chat_params,
            body=body,
            completion_id=completion_id,
            created=created_ms // 1000,
            include_usage=True,
        )
        response_id, minted_ms = self._ids.new_response_id()
        store = self.stores(parsed, context)
        response = skeleton(params, response_id, minted_ms // 1000, store)
        return _Call(parsed, context, store, backend, request, response, items, started)

    async def create_response(
        self, parsed: ParsedResponseRequest, context: CallContext
    ) -> Response:
        call = await self._prepare(parsed, context, stream=False)
        completion = await call.backend.create(call.request)
        response = finished(
            call.response, outcome_of(completion, self._ids.item_id), int(time.time())
        )
        await self._keep(call, response)
        return response

    async def open_response_stream(
        self, parsed: ParsedResponseRequest, context: CallContext
    ) -> AsyncIterator[bytes]:
        """Start a streamed create; errors before the model's first chunk are raised from
        here (a plain error response), later ones end the stream with an `error` event."""
        call = await self._prepare(parsed, context, stream=True)
        batches = call.backend.stream(call.request)
        try:
            first = await anext(batches)
        except StopAsyncIteration:
            first = []
        except BaseException:
            await _close(batches)
            raise
        return self._relay(call, first, batches)

    async def _relay(
        self,
        call: _Call,
        first: list[Any],
        batches: AsyncIterator[list[Any]],
    ) -> AsyncIterator[bytes]:
        writer = EventWriter(self._ids.item_id)
        try:
            yield writer.started(call.response)
            batch: list[Any] | None = first
            while batch is not None:
                frame = writer.chunks(batch)
                if frame:
                    yield frame
                batch = await anext(batches, None)
            closing = writer.close()
            if closing:
                yield closing
            response = finished(call.response, writer.outcome(), int(time.time()))
            await self._keep(call, response)
        except ChatkeepError as error:
            logger.warning(
                "response stream ended by an error after it began: %s %s",
                error.status_code,
                error.code or error.error_type,
            )
            yield writer.failed(error)
            return
        finally:
            await _close(batches)
        yield writer.ended(response)

    async def _keep(self, call: _Call, response: Response) -> None:
        """Store the response when it is to be kept; then log the one line of the call."""
        context, params = call.context, call.parsed.params
        if call.store:
            stored, items = await redacted(response, call.items, context.policy)
            await self._store.insert_response(
                NewResponse(
                    id=response["id"],
                    project=context.project,
                    model=response["model"],
                    created=response["created_at"],
                    previous_response_id=params.previous_response_id,
                    metadata=dict(params.metadata or {}),
                    usage=response["usage"],
                    response=stored,
                    input_items=items,
                    keep_content=context.policy.store_content,
                )
            )
        usage = response.get("usage") or {}
        if self._meter is not None:  # answered: counted as a chat completion is (usage API)
            self._meter.record(
                context.project,
                context.api_key_id,
                response["model"],
                response["created_at"],
                {
                    "prompt_tokens": usage.get("input_tokens"),
                    "completion_tokens": usage.get("output_tokens"),
                    "prompt_tokens_details": usage.get("input_tokens_details"),
                },
            )
        self._lines.info(
            logger,
            RESPONSE_LINE,
            response["id"],
            context.request_id,
            context.project,
            response["model"],
            call.backend.name,
            bool(params.stream),
            call.store,
            response["status"],
            usage.get("input_tokens"),
            usage.get("output_tokens"),
            (time.perf_counter() - call.started) * 1000,
        )

    async def retrieve_response(self, project: str, response_id: str) -> Response:
        found = None
        if is_response_id(response_id):  # no other id was ever minted: no lookup needed
            found = await self._store.get_response(project, response_id)
        if found is None:
            raise not_found(response_id)
        return found

    async def delete_response(self, project: str, response_id: str) -> dict[str, Any]:
        if not (
            is_response_id(response_id) and await self._store.delete_response(project, response_id)
        ):
            raise not_found(response_id)
        return {"id": response_id, "object": "response", "deleted": True}

    async def list_input_items(
        self, project: str, response_id: str, *, limit: int, order: str, after: str | None
    ) -> CursorPage:
        items = None
        if is_response_id(response_id):
            items = await self._store.input_items(project, response_id)
        if items is None:
            raise not_found(response_id)
        ordered = items if order == "asc" else items[::-1]
        if after is not None:
            ids = [item["id"] for item in ordered]
            if after not in ids:
                raise InvalidRequestError(
                    f"Invalid 'after': no input item of response '{response_id}' has id '{after}'.",
                    param="after",
                    code="invalid_value",
                )
            ordered = ordered[ids.index(after) + 1 :]
        page = ordered[:limit]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(ordered) > limit,
        }


async def _close(batches: AsyncIterator[Any]) -> None:
    aclose = getattr(batches, "aclose", None)
    if aclose is not None:
        await aclose()
