"""One response per request, by construction: the only way the create route answers.

A `ResponseChannel` knows whether its response has started. `fail` renders an error the
one way still open: a JSON error response before anything was sent, an SSE `error` event
and the end of the stream once a stream has begun; past that it refuses. So no error path
can start a second response after the first one's headers went out, which the ASGI server
would answer by dropping the connection.
"""

from __future__ import annotations

import enum
import logging

from starlette.types import Message, Send

from chatkeep.errors import ChatkeepError
from chatkeep.protocol.codec import encode_json
from chatkeep.protocol.sse import encode_event

logger = logging.getLogger(__name__)

_JSON = (b"content-type", b"application/json")
_SSE_TYPE = b"text/event-stream; charset=utf-8"
_SSE_HEADERS = [
    (b"content-type", _SSE_TYPE),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


UNEXPECTED = ChatkeepError(
    "The server had an error while processing your request. Sorry about that!"
)


class _Stage(enum.Enum):
    IDLE = "idle"  # nothing sent yet
    OPEN = "open"  # headers sent, the body is still open
    COMPLETE = "complete"  # the whole response is sent


class ResponseChannel:
    """Wraps the ASGI `send` of one request; each method checks and advances the stage.

    `note` keeps the stage of messages that code speaking ASGI itself sends (Starlette's
    routes), so that `fail` still picks the right form for them.
    """

    __slots__ = ("_send", "_sse", "_stage")

    def __init__(self, send: Send) -> None:
        self._send = send
        self._stage = _Stage.IDLE
        self._sse = False

    @property
    def started(self) -> bool:
        return self._stage is not _Stage.IDLE

    @property
    def streaming(self) -> bool:
        """An event stream has begun and is still open: an error can still be sent."""
        return self._sse and self._stage is _Stage.OPEN

    def note(self, message: Message) -> None:
        """Keep the stage of a message that code speaking ASGI itself is about to send
        through this channel's `send` (Starlette's routes, via the outermost middleware)."""
        kind = message["type"]
        if kind == "http.response.start":
            self._advance(_Stage.IDLE, _Stage.OPEN)
            self._sse = (b"content-type", _SSE_TYPE) in message.get("headers", ())
        elif kind == "http.response.body" and not message.get("more_body", False):
            self._advance(_Stage.OPEN, _Stage.COMPLETE)

    async def send_json(
        self, status: int, content: bytes, headers: dict[str, str] | None = None
    ) -> None:
        """The whole response at once: a JSON body with its length."""
        self._advance(_Stage.IDLE, _Stage.COMPLETE)
        raw = [(b"content-length", str(len(content)).encode()), _JSON]
        if headers:
            raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        await self._send({"type": "http.response.start", "status": status, "headers": raw})
        await self._send({"type": "http.response.body", "body": content})

    async def start_stream(self, headers: dict[str, str] | None = None) -> None:
        self._advance(_Stage.IDLE, _Stage.OPEN)
        self._sse = True
        raw = _SSE_HEADERS
        if headers:
            raw = raw + [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        await self._send({"type": "http.response.start", "status": 200, "headers": raw})

    async def send_frame(self, frame: bytes) -> None:
        if not self.streaming:
            raise RuntimeError(f"no open stream to send a frame on ({self._stage.value})")
        await self._send({"type": "http.response.body", "body": frame, "more_body": True})

    async def end_stream(self, last: bytes = b"") -> None:
        """End the stream, with `last` as its last frame (one write for both)."""
        self._advance(_Stage.OPEN, _Stage.COMPLETE)
        await self._send({"type": "http.response.body", "body": last, "more_body": False})

    async def fail(self, error: ChatkeepError) -> None:
        """Answer `error` in the one form the response's stage still allows."""
        if self._stage is _Stage.IDLE:
            content = encode_json(error.to_envelope())
            await self.send_json(error.status_code, content, error.response_headers())
        elif self.streaming:
            # Headers are sent: the failure becomes an error event, then the stream ends.
            logger.warning(
                "stream ended by an error after it began: %s %s",
                error.status_code,
                error.code or error.error_type,
            )
            await self.send_frame(encode_event(error.to_envelope()))
            await self.end_stream()
        else:
            raise RuntimeError(f"cannot answer an error: the response is {self._stage.value}")

    def _advance(self, expected: _Stage, to: _Stage) -> None:
        if self._stage is not expected:
            raise RuntimeError(f"the response is {self._stage.value}, not {expected.value}")
        self._stage = to
