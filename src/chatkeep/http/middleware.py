"""The outermost layer of every HTTP request.

It mints the request id (exposed as `request.state.request_id`), adds the headers every
response carries (`x-request-id`, `openai-version`, `openai-processing-ms`), counts the
request in the HTTP metric (by route template, method and status), and turns an
unexpected exception into a 500 in OpenAI's envelope rather than a bare text page. A plain
ASGI middleware, not BaseHTTPMiddleware: it costs one closure per request.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatkeep.http.channel import UNEXPECTED, ResponseChannel
from chatkeep.ids import CompletionIdGenerator
from chatkeep.log_lines import ACCESS_LINE
from chatkeep.log_writer import LineLog
from chatkeep.observability.metrics import UNMATCHED_ROUTE, Metrics, route_template

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("chatkeep.access")

OPENAI_VERSION = b"2020-10-01"


class RequestIdMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        ids: CompletionIdGenerator,
        access_log: bool,
        metrics: Metrics,
        lines: LineLog | None = None,
    ) -> None:
        self.app = app
        self.ids = ids
        self.access_log = access_log
        self.metrics = metrics
        self.lines = lines or LineLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self.ids.request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 0

        def with_headers(message: Message) -> Message:
            nonlocal status
            if message["type"] != "http.response.start":
                return message
            status = message["status"]
            elapsed_ms = int((time.perf_counter() - started) * 1000)
            headers = list(message.get("headers", ()))
            headers.append((b"x-request-id", request_id.encode()))
            headers.append((b"openai-version", OPENAI_VERSION))
            headers.append((b"openai-processing-ms", str(elapsed_ms).encode()))
            return {**message, "headers": headers}

        async def send_for_channel(message: Message) -> None:
            await send(with_headers(message))  # the channel keeps its own stage

        async def send_with_headers(message: Message) -> None:
            channel.note(message)
            await send(with_headers(message))

        channel = ResponseChannel(send_for_channel)
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            logger.exception("unexpected error, request_id=%s", request_id)
            if channel.started and not channel.streaming:
                raise  # a plain response half sent: the server can only drop the connection
            await channel.fail(UNEXPECTED)
        finally:
            route = route_template(scope) or UNMATCHED_ROUTE
            self.metrics.http_request(route, scope["method"], status)
            if self.access_log:
                _log_access(self.lines, scope, request_id, status, started)


def _log_access(lines: LineLog, scope: Scope, request_id: str, status: int, started: float) -> None:
    """One line per request; the path as sent (percent-encoded), never the query string,
    which can hold metadata values. Status 0: the client left before any answer."""
    raw = scope.get("raw_path") or scope["path"].encode()
    path = raw.partition(b"?")[0].decode("ascii", "backslashreplace")
    lines.info(
        access_logger,
        ACCESS_LINE,
        request_id,
        scope["state"].get("project", "-"),
        scope["method"],
        path,
        status,
        (time.perf_counter() - started) * 1000,
    )
