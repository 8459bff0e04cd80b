"""The outermost layer of every HTTP request.

It mints the request id (exposed as `request.state.request_id`), adds the headers every
response carries (`x-request-id`, `openai-version`, `openai-processing-ms`), and turns an
unexpected exception into a 500 in OpenAI's envelope rather than a bare text page. A plain
ASGI middleware, not BaseHTTPMiddleware: it costs one closure per request.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatkeep.http.channel import UNEXPECTED, ResponseChannel
from chatkeep.ids import CompletionIdGenerator

logger = logging.getLogger(__name__)

OPENAI_VERSION = b"2020-10-01"


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp, ids: CompletionIdGenerator) -> None:
        self.app = app
        self.ids = ids

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self.ids.request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed_ms = int((time.perf_counter() - started) * 1000)
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"openai-version", OPENAI_VERSION))
                headers.append((b"openai-processing-ms", str(elapsed_ms).encode()))
                message = {**message, "headers": headers}
            await send(message)

        channel = ResponseChannel(send_with_headers)
        try:
            await self.app(scope, receive, channel.observe)
        except Exception:
            logger.exception("unexpected error, request_id=%s", request_id)
            if channel.started and not channel.streaming:
                raise  # a plain response half sent: the server can only drop the connection
            await channel.fail(UNEXPECTED)
