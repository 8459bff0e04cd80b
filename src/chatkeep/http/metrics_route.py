"""`GET /metrics`: the Prometheus text exposition of this server (every worker's, added up).

It never takes a project key: a scraper is not a project. With `metrics_token` set it takes
that bearer token instead, compared in constant time; without, anyone who reaches the server
may read it (the figures hold no content, but do name models, upstreams and, when turned on,
projects).
"""

from __future__ import annotations

import asyncio
import hmac

from starlette.requests import Request
from starlette.responses import Response

from chatkeep.errors import AuthenticationError
from chatkeep.http.state import AppState
from chatkeep.observability.metrics import CONTENT_TYPE

PATH = "/metrics"


async def metrics(request: Request) -> Response:
    state: AppState = request.app.state.chatkeep
    token = state.settings.metrics_token
    if token is not None:
        _check_token(request.headers.get("authorization", ""), token.get_secret_value())
    # The workers' files are read from disk: off the event loop.
    text = await asyncio.to_thread(state.metrics.exposition)
    return Response(text, media_type=CONTENT_TYPE)


def _check_token(header: str, token: str) -> None:
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise AuthenticationError(
            "`/metrics` needs the metrics token (CHATKEEP_METRICS_TOKEN) as a bearer token: "
            "`Authorization: Bearer <token>`.",
            code="invalid_metrics_token",
            headers={"www-authenticate": "Bearer"},
        )
