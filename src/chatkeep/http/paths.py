"""Routing on the raw path: an encoded slash stays inside its segment.

The ASGI server decodes the path before routing, so `/v1/chat/completions/{id}%2Fmessages`
would reach the messages route and `DELETE .../{id}%2F` the delete route with a trailing
slash. An API server routes on the path as sent: `RawPathRouting` hands the router a path
whose segments keep `/` and `%` escaped (`%2F`, `%25`), so each segment matches exactly one
route parameter, and `path_param` decodes a parameter back to the text the client sent.
Nothing is redirected: a trailing or doubled slash is an unknown route (see `create_app`).
"""

from __future__ import annotations

from urllib.parse import unquote

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send


def routing_path(raw_path: bytes) -> str | None:
    """The path to route on, or None when the decoded path is already exact (no escapes)."""
    path = raw_path.partition(b"?")[0]  # some clients' raw_path carries the query
    if b"%" not in path:
        return None
    segments = path.decode("latin-1").split("/")
    return "/".join(_escaped(unquote(segment)) for segment in segments)


def _escaped(segment: str) -> str:
    return segment.replace("%", "%25").replace("/", "%2F")


def path_param(request: Request, name: str) -> str:
    """A path parameter as the client meant it (`RawPathRouting` left it escaped)."""
    value: str = request.path_params[name]
    return unquote(value) if "%" in value else value


class RawPathRouting:
    """ASGI middleware: route on the raw path (one `in` test on paths without escapes)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path")
        if raw and b"%" in raw and scope["type"] == "http":  # most paths have no escapes
            path = routing_path(raw)
            if path is not None:  # uvicorn's raw_path, like its path, holds the root path
                scope["path"] = path
        await self.app(scope, receive, send)
