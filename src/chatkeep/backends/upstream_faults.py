"""An upstream's failures, turned into chatkeep errors and counted.

`UpstreamFaults` maps what can go wrong with one upstream (timeouts, a refused or dropped
connection, an answer too large or not a chat completion, an error object, an error
status) to the errors of `chatkeep.errors`, by exception class and status, never by their
text (the table is in docs/upstreams.md); it logs each, and counts it by kind in the
upstream-errors metric. `decode_answer` decodes an upstream's JSON.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from chatkeep.backends.http_conn import (
    AnswerBrokenOff,
    UpstreamConnectTimeout,
    UpstreamUnreachable,
)
from chatkeep.backends.upstream_body import AnswerTooLarge, UpstreamAnswer, UpstreamSilent
from chatkeep.backends.upstream_config import UpstreamConfig
from chatkeep.errors import (
    ChatkeepError,
    UpstreamError,
    UpstreamMalformedError,
    UpstreamStreamBroken,
    UpstreamTimeoutError,
    UpstreamTooLargeError,
    rejected_class,
)
from chatkeep.protocol.codec import refuse_lone_surrogates

if TYPE_CHECKING:
    from chatkeep.observability.metrics import Metrics

# The upstream backend's logger: these lines are its.
logger = logging.getLogger("chatkeep.backends.upstream")

# Headers of an upstream's error answer that the client should see too.
_RELAYED_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")
_MESSAGE_LIMIT = 1000


def decode_answer(raw: bytes) -> Any:
    """Decode JSON; the standard library only for what orjson refuses (integers over 64 bits)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return refuse_lone_surrogates(raw, json.loads(raw))


def _error_fields(raw: bytes) -> dict[str, Any]:
    """The error object of an upstream's error body, whatever envelope it uses."""
    try:
        body = decode_answer(raw)
    except (ValueError, RecursionError):
        return {}
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, str):
        return {"message": error}
    return error if isinstance(error, dict) else {}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _relayed_headers(headers: CIMultiDictProxy[str]) -> dict[str, str]:
    return {name: headers[name] for name in _RELAYED_HEADERS if name in headers}


class _Around:
    """`UpstreamFaults.around`: a plain class rather than a `@contextmanager` generator, which
    costs about a microsecond more on every wait of a stream."""

    __slots__ = ("_faults", "_started")

    def __init__(self, faults: UpstreamFaults, *, started: bool) -> None:
        self._faults = faults
        self._started = started

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if exc is not None:
            self._faults.translate(exc, self._started)


class UpstreamFaults:
    """The errors of upstream `name`: each made, logged and counted (`metrics`) once."""

    def __init__(self, name: str, config: UpstreamConfig, metrics: Metrics | None) -> None:
        self.name = name
        self.config = config
        self._metrics = metrics
        self._before = _Around(self, started=False)
        self._after = _Around(self, started=True)

    def around(self, *, started: bool) -> _Around:
        """`with faults.around(started=...)`: transport failures inside become chatkeep
        errors (never by matching on their text)."""
        return self._after if started else self._before

    def translate(self, exc: BaseException, started: bool) -> None:
        """Raise the chatkeep error for transport failure `exc`; return for anything else."""
        if isinstance(exc, AnswerTooLarge):
            limit = self.config.max_response_bytes
            what = f"sent an answer larger than its max_response_bytes ({limit} bytes)"
            code = "upstream_response_too_large"
            raise self.failure(
                what, code, started, UpstreamTooLargeError, kind="too_large"
            ) from exc
        if isinstance(exc, TimeoutError):
            config = self.config
            if isinstance(exc, (aiohttp.ConnectionTimeoutError, UpstreamConnectTimeout)):
                what = f"did not accept a connection within {config.connect_timeout:g} s"
            elif isinstance(exc, UpstreamSilent):
                what = f"sent nothing for {config.read_timeout:g} s"
            else:
                what = f"did not finish within {config.total_timeout or 0:g} s"
            raise self.failure(
                what, "upstream_timeout", started, UpstreamTimeoutError, kind="timeout"
            ) from exc
        if isinstance(exc, (aiohttp.ClientError, OSError)):
            if isinstance(exc, (aiohttp.ClientConnectorError, UpstreamUnreachable)):
                what = "could not be reached"
            elif isinstance(exc, (aiohttp.ClientPayloadError, AnswerBrokenOff)):
                what = "broke off its answer"
            else:
                what = "dropped the connection"
            code = "upstream_stream_broken" if started else "upstream_connection_error"
            raise self.failure(what, code, started, detail=exc, kind="connection") from exc

    def failure(
        self,
        what: str,
        code: str,
        started: bool,
        before: type[ChatkeepError] = UpstreamError,
        detail: object = None,
        *,
        kind: str,
    ) -> ChatkeepError:
        """The error for a failure: `before` until a chunk was relayed, a broken stream after.
        `kind` is what the failure counts as in the upstream-errors metric."""
        self._count(kind)
        message = f"Upstream '{self.name}' {what}."
        logger.warning("%s%s", message, f" ({detail!r})" if detail is not None else "")
        return (UpstreamStreamBroken if started else before)(message, code=code)

    def _count(self, kind: str) -> None:
        if self._metrics is not None:
            self._metrics.upstream_error(self.name, kind)

    def malformed(self, what: str, started: bool) -> ChatkeepError:
        code = "upstream_malformed_response"
        return self.failure(f"sent {what}", code, started, UpstreamMalformedError, kind="malformed")

    def error_event(self, error: Any, started: bool) -> ChatkeepError:
        fields = error if isinstance(error, dict) else {"message": error}
        message = (_text(fields.get("message")) or "no message")[:_MESSAGE_LIMIT]
        code = _text(fields.get("code")) or "upstream_error"
        return self.failure(f"reported an error: {message}", code, started, kind="error_event")

    def status_error(
        self,
        status: int,
        raw: bytes,
        response: UpstreamAnswer,
        hint: str | None = None,
    ) -> ChatkeepError:
        self._count("4xx" if status < 500 else "5xx")
        fields = _error_fields(raw)
        message = _text(fields.get("message")) or raw[:_MESSAGE_LIMIT].decode("utf-8", "replace")
        message = message[:_MESSAGE_LIMIT] or f"HTTP {status}"
        headers = _relayed_headers(response.headers)
        if hint is None:
            logger.warning("upstream %s answered %d: %s", self.name, status, message)
        else:
            # The upstream's own text ("Invalid URL (POST /chat/completions)") would make the
            # client doubt its own URL: the client gets the hint, the log keeps both.
            url = self.config.shown_url
            logger.warning("%s (base_url %s; the upstream said: %s)", hint, url, message)
            message = hint
        if status < 500:
            return rejected_class(status)(
                message,
                error_type=_text(fields.get("type")),
                param=_text(fields.get("param")),
                code=_text(fields.get("code")),
                headers=headers,
            )
        return UpstreamError(
            f"Upstream '{self.name}' answered HTTP {status}: {message}",
            code="upstream_server_error",
            headers=headers,
        )
