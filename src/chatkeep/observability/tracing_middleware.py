"""The server span of every HTTP request, as an ASGI middleware that is only in the stack
when tracing is on (`create_app`): off, it costs nothing at all.

The span is the child of the caller's `traceparent`; it is named `{method} {route}` once the
route is known, and carries the request id, the project and the HTTP facts, never a query
string or a body. The create path finds it as `scope["state"]["trace"]` (`RequestTrace`).
"""

from __future__ import annotations

from opentelemetry.trace import Span, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatkeep.observability.metrics import route_template
from chatkeep.observability.tracing import RequestTrace, Tracing, record_error

_PROPAGATED = frozenset({b"traceparent", b"tracestate", b"baggage"})


class TracingMiddleware:
    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _PROPAGATED
        }
        method = scope["method"]
        span = self.tracing.server_span(
            method,
            carrier,
            {
                "http.request.method": method,
                "url.path": scope["path"],
                "url.scheme": scope.get("scheme", "http"),
            },
        )
        state = scope.setdefault("state", {})
        state["trace"] = RequestTrace(self.tracing.tracer, span)
        status = 0

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except BaseException as error:
            record_error(span, error)
            raise
        finally:
            _finish(span, scope, method, status)


def _finish(span: Span, scope: Scope, method: str, status: int) -> None:
    state = scope["state"]
    route = route_template(scope)
    if route is not None:
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
    span.set_attribute("chatkeep.request_id", state.get("request_id", ""))
    project = state.get("project")
    if project is not None:
        span.set_attribute("chatkeep.project", project)
    if status:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_attribute("error.type", str(status))
            span.set_status(Status(StatusCode.ERROR))
    span.end()
