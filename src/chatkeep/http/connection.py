"""One HTTP/1.1 connection: what the server answers itself, before or instead of the app.

uvicorn's httptools protocol with five changes (docs/deploy.md has the why):

- malformed HTTP gets OpenAI's error envelope (400, JSON, `Connection: close`), not text;
- a request's head and body are read against timeouts, and a client too slow is closed,
  with a 408 envelope when part of a request had arrived;
- only HTTP/1.0 and 1.1 are served: HTTP/0.9 is a 400, HTTP/2 on this wire a 505; a head
  over the size limit is a 431;
- an `Upgrade` offer (h2c, sent by Java and Ktor clients on plain POSTs) is declined, and
  the request, body included, is served as HTTP/1.1 (httptools would drop the body);
- a response's head is written with its first body bytes, in one system call
  (`held_head`).

Hot path: a request that arrives in one read arms no timer and starts no task; it costs
three small callback overrides (where the parser is, and a version check). A timer is armed
once per connection, and per request only when its head or body spans several reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any, ClassVar

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from chatkeep.config import Settings
from chatkeep.errors import ChatkeepError, InvalidRequestError
from chatkeep.http.held_head import HeldHeadTransport
from chatkeep.http.middleware import OPENAI_VERSION
from chatkeep.protocol.codec import encode_json

logger = logging.getLogger(__name__)

# Where the parser is in the current request.
_WAITING = 0  # between requests: no byte of the next one yet
_HEAD = 1  # inside the request line and headers
_BODY = 2  # headers done, body still arriving

# How long a refused client that is still sending is read (and ignored) before the close.
LINGER_SECONDS = 2.0

# Hop-by-hop names that only mean something for a protocol switch we decline.
_UPGRADE_TOKENS = frozenset({b"upgrade", b"http2-settings"})


class Refusal(Exception):
    """A request (or connection) the server answers itself: its status and envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None,
        *,
        retry: bool | None = False,
        error: ChatkeepError | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error if error is not None else InvalidRequestError(message, code=code)
        self.retry = retry

    def render(self, default_headers: list[tuple[bytes, bytes]], request_id: str) -> bytes:
        """The whole response, `Connection: close` included: the connection ends after it."""
        body = encode_json(self.error.to_envelope())
        lines = [STATUS_LINE[self.status]]
        lines.extend(b"%s: %s\r\n" % (name, value) for name, value in default_headers)
        lines.append(b"content-type: application/json\r\n")
        lines.append(b"content-length: %d\r\n" % len(body))
        lines.append(b"connection: close\r\n")
        if self.retry is not None:
            lines.append(b"x-should-retry: %s\r\n" % (b"true" if self.retry else b"false"))
        lines.append(b"x-request-id: %s\r\n" % request_id.encode())
        lines.append(b"openai-version: %s\r\n" % OPENAI_VERSION)
        lines.append(b"openai-processing-ms: 0\r\n\r\n")
        lines.append(body)
        return b"".join(lines)


def malformed(error: httptools.HttpParserError, method: bytes) -> Refusal:
    """The refusal for what the parser rejected, named by the parser's own (fixed) reason."""
    cause = error.__context__
    if isinstance(cause, Refusal):
        return cause
    if cause is not None and not isinstance(cause, httptools.HttpParserError):
        # A fault in the server's own callbacks, not in the request.
        logger.error("error while parsing a request", exc_info=cause)
        server_error = ChatkeepError("The server had an error while processing your request.")
        return Refusal(500, server_error.message, None, retry=None, error=server_error)
    if method == b"PRI":  # the HTTP/2 connection preface, sent without negotiation
        return _version_not_supported("2.0")
    if isinstance(cause, httptools.HttpParserInvalidURLError):
        reason = "invalid request target"  # its text would echo the client's bytes
    else:
        # llhttp's reasons are fixed strings; keep them printable and short regardless.
        reason = "".join(c for c in str(error) if " " <= c <= "~")[:100] or "unparseable"
    return Refusal(400, f"Invalid HTTP request: {reason}.", "invalid_http_request")


def _version_not_supported(version: str) -> Refusal:
    if version == "0.9":
        return Refusal(
            400,
            "Invalid HTTP request: the request line has no HTTP version (HTTP/0.9 is not "
            "served; send HTTP/1.1).",
            "invalid_http_request",
        )
    return Refusal(
        505,
        f"HTTP version not supported: HTTP/{version}. This server speaks HTTP/1.1.",
        "http_version_not_supported",
    )


class HttpConnection(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus read timeouts, limits and JSON refusals.

    Use `connection_class(settings)`, which sets the limits; uvicorn makes one instance per
    connection. Timers are `loop.call_later` handles, as uvicorn's keep-alive timer is: one
    at a time, re-armed only when it fires early.
    """

    header_timeout: ClassVar[float]
    body_timeout: ClassVar[float]
    body_min_rate: ClassVar[float]
    max_header_bytes: ClassVar[int]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._phase = _WAITING
        self._timer: asyncio.TimerHandle | None = None
        self._head_deadline = 0.0
        self._head_bytes = 0  # bytes read since the current head began (an upper bound)
        self._body_since = 0.0
        self._body_bytes = 0  # read since the body timer was armed, with what it found
        self._last_read = 0.0
        self._held = False  # the last body check found the server not asking for the body
        self._declined_upgrade = False
        self._finished = False  # refused: nothing more is read

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A new connection gets the header timeout for its first request line to arrive.
        self._head_deadline = self.loop.time() + self.header_timeout
        self._timer = self.loop.call_later(self.header_timeout, self._on_timer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._finished:
            return
        # uvicorn stops the keep-alive timer on any bytes; here only a request's first byte
        # does (on_message_begin), so that blank lines cannot hold an idle connection open.
        if self._phase == _BODY:
            self._body_bytes += len(data)
        else:
            self._head_bytes += len(data)
        while True:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade as upgrade:
                data = self._decline_upgrade(data, upgrade.args[0] if upgrade.args else len(data))
                continue
            except httptools.HttpParserError as error:
                self._refuse(malformed(error, self.parser.get_method()), linger=True)
                return
            break
        phase = self._phase
        if phase == _WAITING:
            return
        if phase == _HEAD:
            if self._head_bytes > self.max_header_bytes:
                self._refuse(self._head_too_large(), linger=True)
            elif self._timer is None:
                self._head_deadline = self.loop.time() + self.header_timeout
                self._timer = self.loop.call_later(self.header_timeout, self._on_timer)
            return
        self._last_read = self.loop.time()
        if self._timer is None:
            # The body arrived so far sits unread in the cycle: the app runs after this call.
            self._body_since = self._last_read
            self._body_bytes = len(self.cycle.body)
            self._timer = self.loop.call_later(self.body_timeout, self._on_timer)

    # Parser callbacks: uvicorn's, plus where the request is

    def on_message_begin(self) -> None:
        self._unset_keepalive_if_required()
        super().on_message_begin()
        self._phase = _HEAD

    def on_headers_complete(self) -> None:
        parser = self.parser
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise _version_not_supported(version)
        if parser.should_upgrade():
            if parser.get_method() == b"CONNECT":
                raise Refusal(
                    400, "Invalid HTTP request: CONNECT is not served here.", "invalid_http_request"
                )
            # data_received feeds the head again without the offer; nothing is started now.
            self._declined_upgrade = True
            return
        if self._head_bytes > self.max_header_bytes and self._head_size() > self.max_header_bytes:
            raise self._head_too_large()
        super().on_headers_complete()
        if self.scope["method"] != "HEAD":  # a HEAD response writes no body to join
            self.cycle.transport = HeldHeadTransport(self.transport, self.loop)  # type: ignore[assignment]
        self._phase = _BODY
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def on_message_complete(self) -> None:
        if self._declined_upgrade:
            return
        super().on_message_complete()
        self._phase = _WAITING
        self._head_bytes = 0
        self._held = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # Timeouts

    def _on_timer(self) -> None:
        self._timer = None
        if self._finished or self.transport.is_closing():
            return
        now = self.loop.time()
        if self._phase == _WAITING:
            self.transport.close()  # a new connection that never sent a request: no answer
        elif self._phase == _HEAD:
            if now < self._head_deadline:
                self._timer = self.loop.call_later(self._head_deadline - now, self._on_timer)
                return
            self._refuse(
                Refusal(
                    408,
                    "Request timeout: the request line and headers did not arrive within "
                    f"the header timeout ({self.header_timeout:g} s).",
                    "request_timeout",
                    retry=None,
                )
            )
        else:
            self._check_body(now)

    def _check_body(self, now: float) -> None:
        """Time out a body that paused too long, or that arrives slower than the minimum rate
        once the body timeout has passed; time the server spent not reading does not count."""
        if self.flow.read_paused or self.cycle.waiting_for_100_continue:
            # Back-pressure, a pipelined request waiting its turn, or `Expect: 100-continue`
            # not answered yet: the server is not asking for the body, so the client is not late.
            self._restart_body_clock(now)
            self._held = True
            return
        if self._held:
            # The server asked again (read resumed, or `100 Continue` sent) at some moment
            # since the last check: the client's time starts now, never before it was asked.
            self._restart_body_clock(now)
            self._held = False
            return
        deadline = self._last_read + self.body_timeout
        if self.body_min_rate > 0:
            paced = self._body_since + self.body_timeout + self._body_bytes / self.body_min_rate
            deadline = min(deadline, paced)
        if now < deadline:
            self._timer = self.loop.call_later(deadline - now, self._on_timer)
            return
        self._refuse(
            Refusal(
                408,
                "Request timeout: the request body paused longer than the body timeout "
                f"({self.body_timeout:g} s) or arrived slower than {self.body_min_rate:g} "
                "bytes per second.",
                "request_timeout",
                retry=None,
            )
        )

    def _restart_body_clock(self, now: float) -> None:
        self._body_since = self._last_read = now
        self._body_bytes = 0
        self._timer = self.loop.call_later(self.body_timeout, self._on_timer)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # Answers and limits

    def _refuse(self, refusal: Refusal, *, linger: bool = False) -> None:
        """Answer `refusal` and close, without ever writing into another response.

        `linger` (the client is still sending): half-close, and read and drop its bytes for
        a moment before closing, as a close with unread bytes would reset the connection
        and could destroy the answer before the client reads it.
        """
        self._disarm()
        self._finished = True
        request_id = f"req_{secrets.token_hex(16)}"
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown client"
        logger.info(
            "refused %s: %d %s request_id=%s",
            client,
            refusal.status,
            refusal.error.message,
            request_id,
        )
        cycle = self.cycle
        if cycle is not None and isinstance(cycle.transport, HeldHeadTransport):
            cycle.transport.flush()  # what the app wrote goes out before the refusal
        if cycle is not None and not cycle.response_complete:
            if self._phase == _BODY:
                # The refused request is the app's own (or queued behind one): the app sees a
                # disconnect, and the envelope goes out only if no response has begun.
                started = cycle.response_started or bool(self.pipeline)
                cycle.disconnected = True
                cycle.message_event.set()
                if started:
                    self.transport.close()
                    return
            else:
                # A response to an earlier request is under way: let it finish, then close.
                cycle.keep_alive = False
                self.flow.pause_reading()
                return
        elif self._phase == _BODY:
            # The app answered before reading the whole body; nothing more is owed.
            self.transport.close()
            return
        self.transport.write(refusal.render(self.server_state.default_headers, request_id))
        if linger and self.transport.can_write_eof():
            self.transport.write_eof()
            self.flow.resume_reading()
            self._timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def _head_size(self) -> int:
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _head_too_large(self) -> Refusal:
        return Refusal(
            431,
            "Request header fields too large: the request line and headers may take at most "
            f"{self.max_header_bytes} bytes.",
            "request_header_fields_too_large",
        )

    def _decline_upgrade(self, data: bytes, offset: int) -> bytes:
        """A fresh parser, and the bytes to feed it: this request's head without the offer
        (RFC 9110 §7.8 lets a server ignore it), then everything after the head."""
        self._declined_upgrade = False
        version = self.parser.get_http_version().encode()
        head = [b"%s %s HTTP/%s\r\n" % (self.parser.get_method(), self.url, version)]
        for name, value in self.headers:
            if name in _UPGRADE_TOKENS:
                continue
            if name == b"connection":
                kept = [t for t in value.split(b",") if t.strip().lower() not in _UPGRADE_TOKENS]
                if not kept:
                    continue
                value = b",".join(kept)
            head.append(b"%s: %s\r\n" % (name, value))
        head.append(b"\r\n")
        self.parser = httptools.HttpRequestParser(self)
        with contextlib.suppress(AttributeError):  # as uvicorn does (httptools >= 0.6.3)
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        return b"".join(head) + data[offset:]


def connection_class(settings: Settings) -> type[HttpConnection]:
    """The protocol class for `uvicorn.run(http=...)`, with the limits from `settings`."""

    class Connection(HttpConnection):
        header_timeout = settings.header_timeout_seconds
        body_timeout = settings.body_timeout_seconds
        body_min_rate = settings.body_min_bytes_per_second
        max_header_bytes = settings.max_header_bytes

    return Connection
