"""Server-sent events: framing chat completion streams, and decoding an upstream's.

Data-only events (`data: <one-line JSON>` and a blank line), never `event:` lines, which
older SDK releases mis-handle; the stream ends with `data: [DONE]`.
"""

from __future__ import annotations

import re
from typing import Any

from chatkeep.protocol.codec import encode_json

DONE_EVENT = b"data: [DONE]\n\n"
# A whole event of the usual shape, and what it takes besides its data ("data: ", "\n\n").
_WHOLE_EVENTS = re.compile(rb"data: ([^\n]*)\n\n")
_EVENT_FRAME = 8


def encode_event(payload: Any) -> bytes:
    # orjson never emits raw newlines (they are escaped inside strings), so one line is safe.
    return b"data: " + encode_json(payload) + b"\n\n"


class SSEDecoder:
    """Incremental decoder of `text/event-stream`: bytes in, the data of each event out.

    Follows the WHATWG rules for what chat streams use: lines end in CRLF, LF or CR; lines
    starting with `:` are comments; `data` fields of one event are joined with newlines; an
    event is dispatched at a blank line unless its data is empty, and one left unfinished
    at the end of the stream is dropped.
    Other fields (`event`, `id`, `retry`) are ignored.
    """

    __slots__ = ("_buffer", "_cr_pending", "_data")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._data: list[bytes] = []
        self._cr_pending = False

    def feed(self, data: bytes) -> list[bytes]:
        """The data of each event that `data` completes, in order."""
        if self._buffer or self._data or self._cr_pending or b"\r" in data:
            return self._feed(data)
        # The shape of every chat stream: whole `data: <JSON>` events, each one line and a
        # blank one. When `data` is nothing but such events (their lengths add up to its
        # own), they are its events; anything else (a comment, an event of several lines,
        # other fields, an event cut by the read) takes the general rules.
        events: list[bytes] = _WHOLE_EVENTS.findall(data)
        if sum(map(len, events)) + _EVENT_FRAME * len(events) == len(data):
            return [event for event in events if event] if b"" in events else events
        return self._feed(data)

    def _feed(self, data: bytes) -> list[bytes]:
        if self._cr_pending and data[:1] == b"\n":
            data = data[1:]  # the LF of a CRLF split across two reads
        self._cr_pending = data[-1:] == b"\r"
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        self._buffer += data
        if b"\n" not in data:
            return []
        lines = self._buffer.split(b"\n")
        self._buffer = lines.pop()
        events: list[bytes] = []
        for line in lines:
            if not line:
                if self._data:
                    event = b"\n".join(self._data)
                    self._data = []
                    if event:  # an event whose data is empty is not dispatched
                        events.append(event)
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(bytes(value[1:] if value[:1] == b" " else value))
            elif line == b"data":
                self._data.append(b"")
        return events
