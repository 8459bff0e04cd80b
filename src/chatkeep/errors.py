"""The one exception tree of chatkeep, rendered once as OpenAI's error envelope.

    ChatkeepError                      500 server_error (the base; never raised bare)
    ├── InvalidRequestError            400 invalid_request_error (bad input; names `param`)
    │   └── RequestTooLargeError       413 invalid_request_error
    ├── AuthenticationError            401 invalid_request_error
    ├── PermissionDeniedError          403 invalid_request_error
    ├── NotFoundError                  404 invalid_request_error (unknown, unstored or deleted ids)
    │   └── ModelNotFoundError         404 invalid_request_error, code model_not_found
    ├── MethodNotAllowedError          405 invalid_request_error
    ├── RateLimitError                 429 rate_limit_error
    ├── UpstreamRejectedError          4xx as the upstream answered (its own status and error)
    ├── UpstreamError                  502 upstream_error (a model server failed us)
    │   ├── UpstreamMalformedError     502, its 2xx answer was no chat completion
    │   ├── UpstreamTooLargeError      502, its answer passed `max_response_bytes`
    │   └── UpstreamStreamBroken       502, failed after streaming began (sent as an event)
    ├── StoreUnavailableError          503 service_unavailable_error (the database is unreachable)
    └── UpstreamTimeoutError           504 upstream_error (a model server did not answer in time)

Service code raises these; `to_envelope` is the single place that turns one into the
`{"error": {"message", "type", "param", "code"}}` body, always with all four keys. The
HTTP layer's own refusals, made before any route runs (408 request timeout, 431 head too
large, 505 HTTP version, 400 malformed HTTP; `http/connection.py`), are InvalidRequestError
envelopes sent with those statuses.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar


class ChatkeepError(Exception):
    """Base of every error chatkeep answers with; carries its own HTTP status and envelope."""

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    # Whether an SDK retry could help; rendered as the `x-should-retry` header when set.
    should_retry: ClassVar[bool | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def to_envelope(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.should_retry is not None:
            headers.setdefault("x-should-retry", "true" if self.should_retry else "false")
        return headers


class InvalidRequestError(ChatkeepError):
    status_code = 400
    error_type = "invalid_request_error"
    should_retry = False


class RequestTooLargeError(InvalidRequestError):
    status_code = 413


class AuthenticationError(ChatkeepError):
    status_code = 401
    error_type = "invalid_request_error"
    should_retry = False


class PermissionDeniedError(ChatkeepError):
    status_code = 403
    error_type = "invalid_request_error"
    should_retry = False


class NotFoundError(ChatkeepError):
    status_code = 404
    error_type = "invalid_request_error"
    should_retry = False


class ModelNotFoundError(NotFoundError):
    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model `{model}` does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )


class MethodNotAllowedError(ChatkeepError):
    status_code = 405
    error_type = "invalid_request_error"
    should_retry = False


class RateLimitError(ChatkeepError):
    status_code = 429
    error_type = "rate_limit_error"


class UpstreamError(ChatkeepError):
    status_code = 502
    error_type = "upstream_error"


class StoreUnavailableError(ChatkeepError):
    status_code = 503
    error_type = "service_unavailable_error"


class UpstreamTimeoutError(ChatkeepError):
    status_code = 504
    error_type = "upstream_error"


def not_found(completion_id: str) -> NotFoundError:
    """The 404 for a completion id that is unknown, was never stored, or was deleted."""
    return NotFoundError(
        f"No chat completion found with id '{completion_id}'. Only chat completions created "
        "with `store` set to `true` can be retrieved, and deleted ones are gone.",
        param="completion_id",
        code=None,
    )


# 4xx statuses the SDKs retry by default (timeout, conflict, rate limit): left to them.
_RETRYABLE_4XX = frozenset({408, 409, 429})


class UpstreamRejectedError(ChatkeepError):
    """An upstream answered 4xx: the client gets that status and the upstream's error.

    Raised as `rejected_class(status)(...)`, the subclass that carries the status.
    """

    status_code: ClassVar[int] = 400
    error_type: ClassVar[str] = "invalid_request_error"
    should_retry: ClassVar[bool | None] = False

    def __init__(
        self,
        message: str,
        *,
        error_type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code, headers=headers)
        self.upstream_type = error_type

    def to_envelope(self) -> dict[str, Any]:
        envelope = super().to_envelope()
        if self.upstream_type:
            envelope["error"]["type"] = self.upstream_type
        return envelope


@functools.cache
def rejected_class(status: int) -> type[UpstreamRejectedError]:
    """The `UpstreamRejectedError` subclass whose `status_code` is `status`."""
    retry = None if status in _RETRYABLE_4XX else False
    kind = "rate_limit_error" if status == 429 else "invalid_request_error"

    class _Rejected(UpstreamRejectedError):
        status_code = status
        error_type = kind
        should_retry = retry

    _Rejected.__name__ = _Rejected.__qualname__ = f"UpstreamRejected{status}Error"
    return _Rejected


class UpstreamMalformedError(UpstreamError):
    """A 2xx answer that is not a chat completion (or stream of chunks); retrying won't fix it."""

    should_retry = False


class UpstreamTooLargeError(UpstreamError):
    """The upstream's answer passed its `max_response_bytes`; the same request would most
    likely come back as big, so retrying is not suggested."""

    should_retry = False


class UpstreamStreamBroken(UpstreamError):
    """The upstream stream failed after its first chunk was relayed.

    The service catches it while relaying and sends `to_envelope()` as an error event.
    """
