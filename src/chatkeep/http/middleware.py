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

from chatkeep.errors import ChatkeepError
from chatkeep.ids import CompletionIdGenerator
from chatkeep.protocol.codec import encode_json

logger = logging.getLogger(__name__)

OPENAI_VERSION = b"2020-10-01"
UNEXPECTED = ChatkeepError(
    "The server had an error while processing your request. Sorry about that!"
)


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
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                elapsed_ms = int((time.perf_counter() - started) * 1000)
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"openai-version", OPENAI_VERSION))
                headers.append((b"openai-processing-ms", str(elapsed_ms).encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            logger.exception("unexpected error, request_id=%s", request_id)
            if response_started:
                raise
            await _send_unexpected(send_with_headers)


async def _send_unexpected(send: Send) -> None:
    body = encode_json(UNEXPECTED.to_envelope())
    await send(
        {
            "type": "http.response.start",
            "status": UNEXPECTED.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
