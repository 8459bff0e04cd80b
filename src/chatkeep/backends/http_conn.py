"""One keep-alive HTTP/1.1 connection to an upstream, and the answer being read on it.

`Connection` is an `asyncio.Protocol`: httptools' C parser (the one uvicorn uses) calls it
back with the answer's head and body, which it keeps on the `Answer` of the request in
flight; the body is handed to its reader as it arrives (each `read_nowait` takes all that
has arrived, in one piece). The pool (`http_client`) sends the requests and decides what
is reused. An answer's faults are raised as the exceptions below, which `upstream_faults`
maps to the same kinds and messages as aiohttp's.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from typing import Self, cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

# Reading pauses while this much of a body waits for its reader (a slow client of a fast
# stream), and resumes once the reader took it.
_HIGH_WATER = 256 * 1024
# The most an answer's head (status line and headers) may take; aiohttp's limits (8 KiB a
# line) bound it too. The parser keeps a header whole until it ends: this bounds that.
_HEAD_LIMIT = 64 * 1024


class UpstreamUnreachable(OSError):
    """No connection could be made: refused, an unknown host, a TLS handshake that failed."""


class UpstreamConnectTimeout(TimeoutError):
    """No connection within `connect_timeout`."""


class UpstreamDropped(OSError):
    """The connection closed, or carried no valid HTTP answer, before the answer's head."""


class AnswerBrokenOff(OSError):
    """The answer's body ended before its end (cut, a bad chunk, a bad compressed stream)."""


class Answer:
    """The answer to one request: its head (status, headers) once `head` is done, and its
    body as it arrives. `content` is the answer itself: the four reading methods that
    `AnswerBody` uses on aiohttp's `StreamReader`, with the same meaning.
    """

    __slots__ = (
        "_chunks",
        "_conn",
        "_decoded",
        "_decoder",
        "_deflate",
        "_error",
        "_fed",
        "_limit",
        "_loop",
        "_paused",
        "_raw_headers",
        "_size",
        "_waiter",
        "complete",
        "content_length",
        "content_type",
        "eof",
        "framed",
        "head",
        "keep_alive",
        "released",
        "status",
    )

    def __init__(self, conn: Connection, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self._conn = conn
        self._limit = limit
        self._loop = loop
        self.head: asyncio.Future[None] = loop.create_future()
        self.status = 0
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self.content_length: int | None = None
        self.content_type = "application/octet-stream"
        self.framed = False  # a length or chunks say where the body ends (else: the close)
        self.keep_alive = False
        self._decoder: zlib._Decompress | None = None
        self._deflate = False  # a deflate body whose first byte has not come yet
        self._decoded = 0
        self._fed = False  # a compressed body's bytes came (an empty one is no stream)
        self._chunks: list[bytes] = []
        self._size = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self.eof = False  # all of the body has arrived
        self.complete = False  # ... and the parser saw the message end (not a close)
        self.released = False

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        """The answer's headers (made on demand: only error answers need them)."""
        pairs = ((n.decode("latin-1"), v.decode("latin-1")) for n, v in self._raw_headers)
        return CIMultiDictProxy(CIMultiDict(pairs))

    @property
    def content(self) -> Self:
        return self

    # --- reading (the reader's side) ------------------------------------------------------

    def read_nowait(self) -> bytes:
        """All of the body that has arrived and was not read yet; `b""` if none."""
        chunks = self._chunks
        if not chunks:
            if self._error is not None and not self.eof:
                raise self._error
            return b""
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._size = 0
        if self._paused:
            self._paused = False
            self._conn.resume_reading()
        return data

    def is_eof(self) -> bool:
        """Whether all of the body has arrived."""
        return self.eof

    def at_eof(self) -> bool:
        """Whether all of the body has arrived and been read."""
        return self.eof and not self._chunks

    async def readany(self) -> bytes:
        """The next piece of the body (what has arrived), `b""` at its end."""
        while not self._chunks and not self.eof and self._error is None:
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return self.read_nowait()

    def release(self) -> None:
        """Done with the answer: its connection goes back to the pool if the answer was read
        to its end and both sides keep the connection alive, else it is closed."""
        if not self.released:
            self.released = True
            self._conn.done(reusable=self.complete and self.keep_alive and not self._chunks)

    def close(self) -> None:
        """Done with the answer, read or not: its connection is closed."""
        if not self.released:
            self.released = True
            self._conn.done(reusable=False)

    # --- the parser's side ----------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def fail(self, error: BaseException) -> None:
        """The connection failed: the head's waiter or the body's reader gets `error`."""
        if not self.head.done():
            self.head.set_exception(error)
            self.head.exception()  # retrieved: whoever awaits gets it all the same
        elif not self.eof:
            self._error = error
            self._wake()

    def headers_complete(self, status: int, keep_alive: bool) -> None:
        self.status = status
        self.keep_alive = keep_alive
        for name, value in self._raw_headers:
            key = name.lower()
            if key == b"content-length":
                try:
                    self.content_length = int(value)
                except ValueError:  # the parser refuses such a head before we get here
                    self.content_length = None
                self.framed = True
            elif key == b"content-type":
                media = value.split(b";", 1)[0].strip().lower()
                self.content_type = media.decode("latin-1")
            elif key == b"transfer-encoding":
                self.framed = self.framed or value.strip().lower().endswith(b"chunked")
            elif key == b"content-encoding":
                coding = value.strip().lower()
                self._decoder = _decoder_for(coding)
                self._deflate = coding == b"deflate"
        if not self.head.done():
            self.head.set_result(None)

    def body(self, data: bytes) -> None:
        if self._decoder is not None or self._deflate:
            data = self._decode(data)
            if not data:
                return
        self._chunks.append(data)
        self._size += len(data)
        if self._size > _HIGH_WATER and not self._paused:
            self._paused = True
            self._conn.pause_reading()
        self._wake()

    def _decode(self, data: bytes) -> bytes:
        """`data` decompressed, at most one byte past the size limit in all: the reader
        refuses the answer there, so nothing beyond is ever made."""
        left = self._limit - self._decoded + 1
        if left <= 0 or not data:
            return b""
        try:
            decoder = self._decoder
            if decoder is None:  # deflate: zlib-wrapped (as it should be) or raw, says byte 1
                wrapped = data[0] & 0x0F == 8
                decoder = self._decoder = zlib.decompressobj(
                    zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS
                )
            self._fed = True
            data = decoder.decompress(data, left)
        except zlib.error as exc:
            raise AnswerBrokenOff(f"a body that does not decompress ({exc})") from None
        self._decoded += len(data)
        return data

    def message_complete(self) -> None:
        self.complete = True
        self.end()
        if self._error is not None:
            self.complete = False

    def end(self) -> None:
        """All of the body has arrived."""
        decoder = self._decoder
        if decoder is not None and self._fed and self._decoded <= self._limit:
            rest = decoder.flush()
            if rest:
                self._decoded += len(rest)
                self._chunks.append(rest)
            if not decoder.eof:  # the compressed stream stopped short of its end
                self._error = AnswerBrokenOff("a compressed body cut short")
                self._wake()
                return
        self.eof = True
        self._wake()


def _decoder_for(encoding: bytes) -> zlib._Decompress | None:
    """A decoder for a content coding chatkeep asks for: gzip now; deflate (None) once its
    first byte came. Any other coding is passed on as sent, as aiohttp does."""
    if encoding in (b"gzip", b"x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    return None


class Connection(asyncio.Protocol):
    """One connection of a pool; `on_done(conn, reusable)` is told when its answer is done,
    `on_lost(conn)` when it closes."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_done: Callable[[Connection, bool], None],
        on_lost: Callable[[Connection], None],
    ) -> None:
        self.loop = loop
        self._on_done = on_done
        self._on_lost = on_lost
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self.answer: Answer | None = None
        self.closed = False
        self.idle_since = 0.0
        self._head_bytes = 0  # bytes read before the answer's head was whole

    # --- the pool's side ------------------------------------------------------------------

    def send(self, request: bytes, limit: int) -> Answer:
        """Write a whole request; its answer (await its `head`), whose body is decoded to at
        most `limit` bytes and one more."""
        answer = self.answer = Answer(self, self.loop, limit)
        self._head_bytes = 0
        assert self._transport is not None
        self._transport.write(request)
        return answer

    def usable(self) -> bool:
        transport = self._transport
        return not self.closed and transport is not None and not transport.is_closing()

    def done(self, *, reusable: bool) -> None:
        if not reusable:
            self.close()
        self._on_done(self, reusable)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._transport is not None:
                self._transport.close()
            self._on_lost(self)

    def pause_reading(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.resume_reading()

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        answer = self.answer
        if answer is None or answer.complete or answer.released:
            self.close()  # bytes no request asked for: the connection cannot be trusted
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            error = cause if isinstance(cause, OSError) else _broken(answer, exc)
            answer.fail(error)
            self.close()
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            answer.fail(_broken(answer, exc))
            self.close()
        else:
            if not answer.head.done():
                self._head_bytes += len(data)
                if self._head_bytes > _HEAD_LIMIT:
                    answer.fail(UpstreamDropped(f"an answer head over {_HEAD_LIMIT} bytes"))
                    self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        answer = self.answer
        if answer is not None and not answer.eof:
            if not answer.head.done():
                answer.fail(UpstreamDropped(f"the connection closed before the answer ({exc})"))
            elif answer.framed or exc is not None:
                answer.fail(AnswerBrokenOff(f"the connection closed mid-answer ({exc})"))
            else:  # a body without length or chunks ends where the connection does
                answer.end()
        if not self.closed:
            self.closed = True
            self._on_lost(self)

    # --- httptools' callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        answer = self.answer
        if answer is not None and answer.complete:  # a second answer to one request
            raise UpstreamDropped("more than one answer to one request")

    def on_header(self, name: bytes, value: bytes) -> None:
        answer = self.answer
        assert answer is not None
        answer._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        answer = self.answer
        assert answer is not None
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue, 103): the real one follows
            answer._raw_headers.clear()
            return
        answer.headers_complete(status, self._parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        answer = self.answer
        assert answer is not None
        answer.body(body)

    def on_message_complete(self) -> None:
        answer = self.answer
        assert answer is not None
        if answer.head.done():  # else the end of an interim answer
            answer.message_complete()


def _broken(answer: Answer, exc: BaseException) -> OSError:
    """The error for an answer the parser refused: dropped before its head, broken after."""
    if answer.head.done():
        return AnswerBrokenOff(f"an answer the HTTP parser refused ({exc})")
    return UpstreamDropped(f"an answer the HTTP parser refused ({exc})")
