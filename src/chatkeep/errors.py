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
    ├── UpstreamError                  502 upstream_error (a model server failed us)
    ├── StoreUnavailableError          503 service_unavailable_error (the database is unreachable)
    └── UpstreamTimeoutError           504 upstream_error (a model server did not answer in time)

Service code raises these; `to_envelope` is the single place that turns one into the
`{"error": {"message", "type", "param", "code"}}` body, always with all four keys.
"""

from __future__ import annotations

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
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

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
