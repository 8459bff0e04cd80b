"""The Responses API's routes: create (plain or an event stream), retrieve, delete, and the
input items of a stored response. Each parses its input and calls `ResponseService`."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from chatkeep.errors import InvalidRequestError
from chatkeep.http.body import read_body
from chatkeep.http.create_route import STORED_HEADER
from chatkeep.http.paths import path_param
from chatkeep.http.responses import OpenAIJSONResponse
from chatkeep.http.state import AppState
from chatkeep.protocol.codec import decode_json
from chatkeep.protocol.queries import DEFAULT_LIMIT, parse_limit, parse_order
from chatkeep.responses.request import parse_create_response
from chatkeep.service.completions import CallContext

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.chatkeep
    return state


async def _project(request: Request, state: AppState) -> str:
    project = await state.authenticator.project_for(request.headers)
    request.state.project = project  # for the access log
    return project


async def create_response(request: Request) -> Response:
    state = _state(request)
    caller = await state.authenticator.caller_for(request.headers)  # an admin key is refused
    project = request.state.project = caller.project  # for the access log
    body = await read_body(request.headers, request.receive, state.settings.max_request_bytes)
    parsed = parse_create_response(decode_json(body))
    policy = await state.policies.policy_for(project)
    context = CallContext(
        project=project,
        request_id=request.state.request_id,
        policy=policy,
        api_key_id=caller.key_id,  # the usage it is counted under
    )
    service = state.responses
    headers: dict[str, str] = {}
    stored = service.stores(parsed, context)
    if stored != (parsed.params.store is not False):
        # The project's policy, not the request, decided (as for chat completions).
        headers[STORED_HEADER] = "true" if stored else "false"
    if parsed.params.stream:
        frames = await service.open_response_stream(parsed, context)
        return StreamingResponse(
            frames, media_type="text/event-stream", headers={**_SSE_HEADERS, **headers}
        )
    response = await service.create_response(parsed, context)
    return OpenAIJSONResponse(response, headers=headers)


async def retrieve_response(request: Request) -> Response:
    state = _state(request)
    project = await _project(request, state)
    query = dict(request.query_params)
    if query.get("stream") == "true":
        raise InvalidRequestError(
            "chatkeep does not run background responses, so a stored response cannot be "
            "streamed again: 'stream' must be omitted or false.",
            param="stream",
            code="unsupported_parameter",
        )
    response_id = path_param(request, "response_id")
    return OpenAIJSONResponse(await state.responses.retrieve_response(project, response_id))


async def delete_response(request: Request) -> Response:
    state = _state(request)
    project = await _project(request, state)
    response_id = path_param(request, "response_id")
    return OpenAIJSONResponse(await state.responses.delete_response(project, response_id))


async def list_input_items(request: Request) -> Response:
    state = _state(request)
    project = await _project(request, state)
    response_id = path_param(request, "response_id")
    limit, order, after = _page(request.query_params.multi_items())
    page = await state.responses.list_input_items(
        project, response_id, limit=limit, order=order, after=after
    )
    return OpenAIJSONResponse(page)


def _page(params: Iterable[tuple[str, str]]) -> tuple[int, str, str | None]:
    """`limit` (1-100, default 20), `order` (default `desc`, as OpenAI's), `after`."""
    query = dict(params)  # a parameter given twice takes its last value
    limit = parse_limit(query["limit"]) if "limit" in query else DEFAULT_LIMIT
    order = parse_order(query["order"]) if "order" in query else "desc"
    return limit, order, query.get("after")


RESPONSES_ROUTES = [
    Route("/v1/responses", create_response, methods=["POST"]),
    Route("/v1/responses/{response_id}", retrieve_response, methods=["GET"]),
    Route("/v1/responses/{response_id}", delete_response, methods=["DELETE"]),
    Route("/v1/responses/{response_id}/input_items", list_input_items, methods=["GET"]),
]
