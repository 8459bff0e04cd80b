"""JSON responses and the one place errors become OpenAI's error envelope."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from chatkeep.errors import ChatkeepError, MethodNotAllowedError, NotFoundError
from chatkeep.protocol.codec import encode_json


class OpenAIJSONResponse(Response):
    """A JSON body encoded with orjson, always typed `application/json`."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return encode_json(content)


def error_response(error: ChatkeepError) -> OpenAIJSONResponse:
    return OpenAIJSONResponse(
        error.to_envelope(), status_code=error.status_code, headers=error.response_headers()
    )


async def handle_chatkeep_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ChatkeepError):  # registered for ChatkeepError only
        raise exc
    return error_response(exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (unknown route) and 405 (wrong method), in OpenAI's envelope."""
    if not isinstance(exc, HTTPException):  # registered for HTTPException only
        raise exc
    where = f"{request.method} {request.url.path}"
    error: ChatkeepError
    if exc.status_code == 405:
        error = MethodNotAllowedError(f"Invalid method for URL ({where}).", headers=exc.headers)
    elif exc.status_code == 404:
        error = NotFoundError(f"Invalid URL ({where}).")
    else:
        error = ChatkeepError(str(exc.detail))
        response = error_response(error)
        response.status_code = exc.status_code
        return response
    return error_response(error)
