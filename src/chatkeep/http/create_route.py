"""`POST /v1/chat/completions`, the hot path, as a plain ASGI handler ahead of Starlette.

Every model call goes through this route, so it skips what the other routes get from
Starlette and this one does not need: route matching, the Request and Response objects, the
exception middleware, and the task group Starlette puts around every stream. Measured on the
relay benchmark, those layers were a large share of chatkeep's own cost per request
(bench/README.md). It does what a route does: authenticate, parse, call the service, render;
errors get the envelope every route uses (`error_response`), and a client that disconnects
mid-stream cancels the stream, as with Starlette's StreamingResponse. Every answer goes
through a `ResponseChannel`, so an error after a stream began ends it with an error event.
Each create is measured once, when it ends (`Metrics.create_done` / `create_failed`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from chatkeep.errors import ChatkeepError, MethodNotAllowedError
from chatkeep.http.body import read_body
from chatkeep.http.channel import ResponseChannel
from chatkeep.http.state import AppState
from chatkeep.observability.metrics import CreateRecord
from chatkeep.observability.tracing import CANCELLED, error_type
from chatkeep.protocol.codec import encode_json
from chatkeep.protocol.requests import ParsedCreateRequest, parse_create_request
from chatkeep.protocol.sse import DONE_EVENT
from chatkeep.service.completions import CallContext

PATH = "/v1/chat/completions"
STORED_HEADER = "x-chatkeep-stored"
# The list route (GET) lives in Starlette's router; this path's other methods are answered here.
_PASSED_ON = frozenset({"GET", "HEAD"})
_ALLOW = {"allow": "GET, HEAD, POST"}


class CreateRoute:
    """ASGI middleware answering `POST /v1/chat/completions`; other paths pass on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] in _PASSED_ON:
            await self.app(scope, receive, send)
            return
        state: AppState = scope["app"].state.chatkeep
        channel = ResponseChannel(send)
        scope["state"]["route"] = PATH  # for the HTTP metric and the server span
        try:
            if scope["method"] != "POST":
                where = f"{scope['method']} {PATH}"
                raise MethodNotAllowedError(f"Invalid method for URL ({where}).", headers=_ALLOW)
            await _create(state, scope, receive, channel, CreateRecord(time.perf_counter()))
        except ChatkeepError as error:
            await channel.fail(error)
        except ClientDisconnect:
            return  # gone before its body arrived: nobody to answer


def _request_id(scope: Scope) -> str:
    request_id: str = scope["state"]["request_id"]
    return request_id


async def _create(
    state: AppState,
    scope: Scope,
    receive: Receive,
    channel: ResponseChannel,
    record: CreateRecord,
) -> None:
    headers = Headers(scope=scope)
    caller = await state.authenticator.caller_for(headers)  # an admin key is refused
    project = caller.project
    scope["state"]["project"] = project  # for the access log
    parsed = parse_create_request(
        await read_body(headers, receive, state.settings.max_request_bytes)
    )
    policy = await state.policies.policy_for(project)
    context = CallContext(
        project=project,
        request_id=_request_id(scope),
        policy=policy,
        api_key_id=caller.key_id,
        record=record,
        trace=scope["state"].get("trace"),  # set when tracing is on
    )
    overruled = _overruled(context, parsed)
    model, stream = parsed.params.model, bool(parsed.params.stream)
    try:
        if stream:
            frames = await state.creator.open_chat_completion_stream(parsed, context)
            if not await _send_stream(frames, receive, channel, overruled, state):
                state.metrics.create_failed(record, model, stream, project, CANCELLED)
                return
        else:
            completion = await state.creator.create_chat_completion(parsed, context)
            await channel.send_json(200, encode_json(completion), overruled)
    except Exception as error:
        if record.backend:  # it failed once a backend was chosen for it
            state.metrics.create_failed(record, model, stream, project, error_type(error))
        raise
    state.metrics.create_done(record, model, stream, project)


def _overruled(context: CallContext, parsed: ParsedCreateRequest) -> dict[str, str] | None:
    """`x-chatkeep-stored` when the project's policy, not the request, decided whether the
    completion is kept (`store: never` refusing a `store: true`, `always` keeping one
    that did not ask): the client learns what happened to its data."""
    stores = context.stores(parsed)
    if stores == bool(parsed.params.store):
        return None
    return {STORED_HEADER: "true" if stores else "false"}


async def _send_stream(
    frames: AsyncIterator[bytes],
    receive: Receive,
    channel: ResponseChannel,
    headers: dict[str, str] | None,
    state: AppState,
) -> bool:
    """Send the SSE frames; a client that goes away cancels the stream where it waits.
    True when the stream was sent whole, False when the client left first.

    An error from `frames` (the upstream broke, the store could not commit) leaves here
    with the stream open, and the caller's `channel.fail` ends it with an error event.
    """
    streaming = asyncio.current_task()
    done = False
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        if not done and streaming is not None:
            gone = True
            streaming.cancel()

    watcher = asyncio.get_running_loop().create_task(watch())
    state.metrics.streams_open.inc()
    try:
        await channel.start_stream(headers)
        last = b""
        async for frame in frames:
            if last:  # nothing follows `[DONE]`; were it to, the order would hold
                await channel.send_frame(last)
                last = b""
            if frame is DONE_EVENT:  # held, to go out with the stream's end in one write
                last = frame
            else:
                await channel.send_frame(frame)
        done = True
        await channel.end_stream(last)
    except asyncio.CancelledError:
        if not gone or streaming is None:
            raise
        streaming.uncancel()  # the client left: nothing more to send, nothing stored
    finally:
        done = True
        watcher.cancel()
        state.metrics.streams_open.dec()
        aclose = getattr(frames, "aclose", None)
        if aclose is not None:
            await aclose()
    return not gone
