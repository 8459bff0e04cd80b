"""`GET /v1/organization/usage/completions` and `GET /v1/organization/costs`: OpenAI's usage
and costs API (docs/observability.md). The only routes an admin key may call; a project key
sees its own project there.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from chatkeep.http.responses import OpenAIJSONResponse
from chatkeep.http.state import AppState
from chatkeep.usage.query import parse_usage_query

USAGE_PATH = "/v1/organization/usage/completions"
COSTS_PATH = "/v1/organization/costs"
# Names the models used in a costs page that have no price in the config file.
UNPRICED_HEADER = "x-chatkeep-unpriced-models"


async def completions_usage(request: Request) -> Response:
    state: AppState = request.app.state.chatkeep
    caller = await state.authenticator.caller_for(request.headers, admin_ok=True)
    request.state.project = caller.project  # for the access log
    items = request.query_params.multi_items()
    query = parse_usage_query(items, "completions", now=int(time.time()))
    return OpenAIJSONResponse(await state.usage.completions_usage(caller, query))


async def costs(request: Request) -> Response:
    state: AppState = request.app.state.chatkeep
    caller = await state.authenticator.caller_for(request.headers, admin_ok=True)
    request.state.project = caller.project
    query = parse_usage_query(request.query_params.multi_items(), "costs", now=int(time.time()))
    page = await state.usage.costs(caller, query)
    headers = {UNPRICED_HEADER: ", ".join(page.unpriced)} if page.unpriced else None
    return OpenAIJSONResponse(page.body, headers=headers)
