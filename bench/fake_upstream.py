"""A fake OpenAI-compatible upstream that answers every request with a canned body.

A bare `asyncio.Protocol` on uvloop: no HTTP framework, no JSON work per request, so that
it costs a small fraction of what the relays under test cost (the suite measures it alone
as target (a) to show that). A POST whose body says `"stream": true` gets a 20-chunk SSE
stream (plus a usage chunk when `"include_usage": true`); any other POST gets one
`chat.completion`; a GET gets a model list. Keep-alive, HTTP/1.1, one write per answer.

    python bench/fake_upstream.py --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
from typing import cast

import orjson
import uvloop

MODEL = "bench-model"
STREAM_CHUNKS = 20
_STREAM_FLAG = re.compile(rb'"stream"\s*:\s*true')
_USAGE_FLAG = re.compile(rb'"include_usage"\s*:\s*true')
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:\s*chunked", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)
_TEXT = (
    "Benchmarks measure what a gateway adds on top of a very fast model server, "
    "one request at a time."
)
# 19 content chunks (each word with its space), then the finishing chunk: 20 chunks.
_WORDS = [*(word + " " for word in _TEXT.split()[:-1]), _TEXT.split()[-1], ""]
USAGE = {"prompt_tokens": 14, "completion_tokens": 19, "total_tokens": 33}


def _http(content_type: bytes, body: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n"
    return head % (content_type, len(body)) + body


def completion_body() -> bytes:
    """The canned non-streamed answer: a realistic `chat.completion` of about 500 bytes."""
    return orjson.dumps(
        {
            "id": "chatcmpl-fakeupstream0000000000000",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": _TEXT, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
            "system_fingerprint": "fp_bench",
        }
    )


def stream_body(*, include_usage: bool) -> bytes:
    """The canned streamed answer: 20 `chat.completion.chunk` events, then `[DONE]`."""
    base = {
        "id": "chatcmpl-fakeupstream0000000000000",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": MODEL,
        "system_fingerprint": "fp_bench",
    }
    events = []
    for n, word in enumerate(_WORDS[:STREAM_CHUNKS]):
        last = n == STREAM_CHUNKS - 1
        delta: dict[str, object] = {"content": word} if not last else {}
        if n == 0:
            delta["role"] = "assistant"
        choice = {
            "index": 0,
            "delta": delta,
            "logprobs": None,
            "finish_reason": "stop" if last else None,
        }
        events.append({**base, "choices": [choice]})
    if include_usage:
        events.append({**base, "choices": [], "usage": USAGE})
    frames = [b"data: " + orjson.dumps(event) + b"\n\n" for event in events]
    return b"".join(frames) + b"data: [DONE]\n\n"


MODELS = _http(
    b"application/json",
    orjson.dumps(
        {
            "object": "list",
            "data": [
                {"id": MODEL, "object": "model", "created": 1_700_000_000, "owned_by": "bench"}
            ],
        }
    ),
)
COMPLETION = _http(b"application/json", completion_body())
STREAM = _http(b"text/event-stream", stream_body(include_usage=False))
STREAM_WITH_USAGE = _http(b"text/event-stream", stream_body(include_usage=True))


def answer_for(method: bytes, body: bytes) -> bytes:
    if method == b"GET":
        return MODELS
    if _STREAM_FLAG.search(body) is None:
        return COMPLETION
    return STREAM_WITH_USAGE if _USAGE_FLAG.search(body) else STREAM


def _chunked_body(data: bytes | bytearray, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked body starting at `start`: (body, end offset), or None if incomplete."""
    parts: list[bytes] = []
    pos = start
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(data[pos:line_end]).split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            end = data.find(b"\r\n\r\n", pos - 2)
            return (b"".join(parts), end + 4) if end >= 0 else None
        if len(data) < pos + size + 2:
            return None
        parts.append(bytes(data[pos : pos + size]))
        pos += size + 2


class CannedProtocol(asyncio.Protocol):
    """One client connection: parse just enough HTTP/1.1 to find each request's end."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._transport is not None and self._answer_one():
            pass

    def _answer_one(self) -> bool:
        buffer = self._buffer
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return False
        head = bytes(buffer[: head_end + 2])
        body_start = head_end + 4
        length = _CONTENT_LENGTH.search(head)
        if length is not None:
            end = body_start + int(length.group(1))
            if len(buffer) < end:
                return False
            body = bytes(buffer[body_start:end])
        elif _CHUNKED.search(head) is not None:
            decoded = _chunked_body(buffer, body_start)
            if decoded is None:
                return False
            body, end = decoded
        else:
            body, end = b"", body_start
        del buffer[:end]
        transport = cast(asyncio.Transport, self._transport)
        transport.write(answer_for(head[: head.find(b" ")], body))
        if _CLOSE.search(head) is not None:
            transport.close()
            self._transport = None
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(CannedProtocol, host, port, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
