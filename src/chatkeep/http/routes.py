"""The routes: each parses its input, calls one service function, and renders the result.

`POST /v1/chat/completions` is served ahead of these, by `create_route.CreateRoute`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatkeep.errors import NotFoundError
from chatkeep.http import docs_page, export_route, metrics_route, usage_routes
from chatkeep.http.body import read_body
from chatkeep.http.export_route import export_chat_completions
from chatkeep.http.openapi import openapi_json
from chatkeep.http.paths import path_param
from chatkeep.http.responses import OpenAIJSONResponse
from chatkeep.http.responses_api import RESPONSES_ROUTES
from chatkeep.http.state import AppState
from chatkeep.protocol.queries import parse_list_query, parse_messages_query
from chatkeep.protocol.requests import parse_update_request
from chatkeep.service import models as model_catalog
from chatkeep.service.completions import CallContext


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.chatkeep
    return state


async def _context(request: Request, state: AppState) -> CallContext:
    project = await state.authenticator.project_for(request.headers)
    request.state.project = project  # for the access log
    return CallContext(project=project, request_id=request.state.request_id)


async def list_chat_completions(request: Request) -> Response:
    state = _state(request)
    context = await _context(request, state)
    query = parse_list_query(request.query_params.multi_items())
    return OpenAIJSONResponse(await state.stored.served_list_page(context.project, query))


async def retrieve_chat_completion(request: Request) -> Response:
    state = _state(request)
    context = await _context(request, state)
    completion_id = path_param(request, "completion_id")
    stored = await state.stored.retrieve_chat_completion(context.project, completion_id)
    return OpenAIJSONResponse(stored)


async def update_chat_completion(request: Request) -> Response:
    state = _state(request)
    context = await _context(request, state)
    body = await read_body(request.headers, request.receive, state.settings.max_request_bytes)
    metadata = parse_update_request(body)
    completion_id = path_param(request, "completion_id")
    updated = await state.stored.update_chat_completion(context.project, completion_id, metadata)
    return OpenAIJSONResponse(updated)


async def delete_chat_completion(request: Request) -> Response:
    state = _state(request)
    context = await _context(request, state)
    completion_id = path_param(request, "completion_id")
    deleted = await state.stored.delete_chat_completion(context.project, completion_id)
    return OpenAIJSONResponse(deleted)


async def list_chat_completion_messages(request: Request) -> Response:
    state = _state(request)
    context = await _context(request, state)
    completion_id = path_param(request, "completion_id")
    query = parse_messages_query(completion_id, request.query_params.multi_items())
    page = await state.stored.list_chat_completion_messages(context.project, completion_id, query)
    return OpenAIJSONResponse(page)


async def list_models(request: Request) -> Response:
    state = _state(request)
    await _context(request, state)
    return OpenAIJSONResponse({"object": "list", "data": state.router.models()})


async def retrieve_model(request: Request) -> Response:
    state = _state(request)
    await _context(request, state)
    name = path_param(request, "model")
    if not name:  # `/v1/models/`: the `path` parameter matches the empty string too
        raise NotFoundError(f"Invalid URL (GET {request.url.path}).")
    return OpenAIJSONResponse(model_catalog.retrieve_model(state.router, name))


async def health(request: Request) -> Response:
    """Liveness and readiness: 200 when the store answers, 503 otherwise."""
    await _state(request).store.ping()
    return OpenAIJSONResponse({"status": "ok"})


# The document and its page describe the server and hold no data: no key needed (no
# `_context`), as for `/health`.


async def openapi_document(request: Request) -> Response:
    """This server's OpenAPI 3.1 document, built once per process."""
    return Response(openapi_json(), media_type="application/json")


async def docs(request: Request) -> Response:
    """The document rendered by Swagger UI, served from this server only."""
    return docs_page.page_response()


async def docs_asset(request: Request) -> Response:
    name = path_param(request, "name")
    return docs_page.asset_response(name, method=request.method, path=request.url.path)


ROUTES = [
    Route("/v1/chat/completions", list_chat_completions, methods=["GET"]),
    Route("/v1/chat/completions/{completion_id}", retrieve_chat_completion, methods=["GET"]),
    Route("/v1/chat/completions/{completion_id}", update_chat_completion, methods=["POST"]),
    Route("/v1/chat/completions/{completion_id}", delete_chat_completion, methods=["DELETE"]),
    Route(
        "/v1/chat/completions/{completion_id}/messages",
        list_chat_completion_messages,
        methods=["GET"],
    ),
    Route(export_route.PATH, export_chat_completions, methods=["GET"]),
    Route(usage_routes.USAGE_PATH, usage_routes.completions_usage, methods=["GET"]),
    Route(usage_routes.COSTS_PATH, usage_routes.costs, methods=["GET"]),
    *RESPONSES_ROUTES,
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", retrieve_model, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
    Route(metrics_route.PATH, metrics_route.metrics, methods=["GET"]),
    Route("/openapi.json", openapi_document, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
    Route("/docs/static/{name}", docs_asset, methods=["GET"]),
]
