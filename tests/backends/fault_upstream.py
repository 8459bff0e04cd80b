"""A fault-injecting OpenAI-compatible upstream on a real loopback socket, for the tests.

The requested `model` picks the behaviour (`ok`, `status-500`, `stream-cut`, ...; see
`FaultUpstream.handle`). Every request body is recorded, and so is the client port of
every connection, so tests can check what was forwarded and whether connections are reused.
`GET /v1/models` answers too (after `models_delay`), and with `api_key` set every request
without that key gets a 401, as from a real server.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

CREATED = 1_700_000_000
UPSTREAM_ID = "chatcmpl-upstream"
FINGERPRINT = "fp_fault0000"
USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
HUGE = 64 * 1024 * 1024  # bytes of the answers that do not end
LOGPROB = {"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}


def completion(model: str) -> dict[str, Any]:
    """A whole completion with a tool call, logprobs and usage: all of it must survive."""
    return {
        "id": UPSTREAM_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": f"{model}-2024",
        "system_fingerprint": FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": "call_upstream1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                        }
                    ],
                },
                "logprobs": {"content": [LOGPROB], "refusal": None},
                "finish_reason": "tool_calls",
                "stop_reason": None,
            }
        ],
        "usage": USAGE,
    }


def chunks(model: str, *, usage: bool) -> list[dict[str, Any]]:
    """A streamed answer "Hello" in three content chunks, then the optional usage chunk."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": UPSTREAM_ID,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": f"{model}-2024",
            "system_fingerprint": FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    result = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, "stop"),
    ]
    if usage:
        last = chunk({})
        last["choices"] = []
        last["usage"] = USAGE
        result.append(last)
    return result


def event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


@dataclass
class FaultUpstream:
    """The server's state; `delay` is the pause used by the slow behaviours, in seconds."""

    base_url: str = ""
    delay: float = 0.5
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    client_ports: list[int] = field(default_factory=list)
    client_gone: asyncio.Event = field(default_factory=asyncio.Event)
    # Chunks written so far by the `trickle` stream.
    trickled: int = 0
    # Content sizes of the two big chunks of the `large` stream, and when it was all sent.
    large_sizes: tuple[int, int] = (480 * 1024, 48 * 1024)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    api_key: str | None = None
    models_delay: float = 0.0
    models_asked: int = 0

    def refused(self, request: web.Request) -> web.Response | None:
        """The 401 a server with a key gives a request without it."""
        if self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        return _error(401, "Incorrect API key provided.", "invalid_request_error", None)

    async def list_models(self, request: web.Request) -> web.Response:
        self.models_asked += 1
        await asyncio.sleep(self.models_delay)
        refusal = self.refused(request)
        if refusal is not None:
            return refusal
        model = {"id": "ok", "object": "model", "created": CREATED, "owned_by": "fault"}
        return web.json_response({"object": "list", "data": [model]})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        refusal = self.refused(request)
        if refusal is not None:
            return refusal
        body = await request.json(loads=orjson.loads)
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            self.client_ports.append(peer[1])
        model: str = body["model"]
        stream = bool(body.get("stream"))
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        behaviour = model.split("/")[-1]
        match behaviour:
            case "status-400":
                return _error(400, "Invalid 'temperature'.", "invalid_request_error", "temperature")
            case "status-429":
                return _error(429, "Rate limit reached.", "rate_limit_error", None, retry_after="7")
            case "status-500":
                return _error(500, "The server had an error.", "server_error", None)
            case "ollama-404":
                return web.json_response({"error": f"model '{model}' not found"}, status=404)
            case "malformed":
                return web.Response(
                    body=b'{"id": "x", "choices": [', content_type="application/json"
                )
            case "not-a-completion":
                return web.json_response({"hello": "world"})
            case "reset":
                _reset(request)
                await asyncio.sleep(1)
                return web.Response()
            case "slow-first-byte":
                await asyncio.sleep(self.delay)
            case "trickle" if not stream:
                return await self._trickle(request, orjson.dumps(completion(model)))
            case "huge" if not stream:
                return await self._huge(request, announced=False)
            case "huge-announced" if not stream:
                return await self._huge(request, announced=True)
        if not stream or behaviour == "json-to-stream":
            return web.json_response(completion(model))
        return await self._stream(request, behaviour, chunks(model, usage=usage))

    async def _trickle(self, request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(body)
        await response.prepare(request)
        for i in range(len(body)):
            await response.write(body[i : i + 1])
            await asyncio.sleep(self.delay / 10)
        await response.write_eof()
        return response

    async def _huge(self, request: web.Request, *, announced: bool) -> web.StreamResponse:
        """A completion whose content never ends (64 MiB at most), or says in its
        `content-length` that it is that big and then waits before sending any of it."""
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if announced:
            response.content_length = HUGE
        await response.prepare(request)
        try:
            if announced:
                await asyncio.sleep(self.delay * 10)
            await response.write(b'{"choices": [{"message": {"content": "')
            await self._endless(response, b"x" * 65536)
        except ConnectionError:  # reset, or "Connection lost" while writing
            self.client_gone.set()
        except asyncio.CancelledError:
            self.client_gone.set()
            raise
        return response

    async def _endless(self, response: web.StreamResponse, piece: bytes) -> None:
        for _ in range(HUGE // len(piece)):
            await response.write(piece)

    async def _stream(
        self, request: web.Request, behaviour: str, answer: list[dict[str, Any]]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            await self._stream_body(request, response, behaviour, answer)
        except ConnectionError:  # reset, or "Connection lost" while writing
            self.client_gone.set()
        except asyncio.CancelledError:
            self.client_gone.set()
            raise
        return response

    async def _stream_body(
        self,
        request: web.Request,
        response: web.StreamResponse,
        behaviour: str,
        answer: list[dict[str, Any]],
    ) -> None:
        await response.write(b": keep-alive comment\n\n")
        if behaviour == "crlf":
            for payload in answer:
                await response.write(b"data: " + orjson.dumps(payload) + b"\r\n\r\n")
            await response.write(b"data: [DONE]\r\n\r\n")
            return
        if behaviour == "huge-line":  # one event that never ends
            await response.write(b'data: {"choices": [{"delta": {"content": "')
            await self._endless(response, b"x" * 65536)
            return
        if behaviour == "error-first":
            await response.write(event({"error": {"message": "prompt too long", "code": "p"}}))
            return
        await response.write(event(answer[0]))
        match behaviour:
            case "stream-cut":
                await response.write(event(answer[1]))
                await asyncio.sleep(0.05)
                request.transport.close() if request.transport else None
                return
            case "stream-reset":
                await asyncio.sleep(0.05)
                _reset(request)
                return
            case "stream-stall":
                await asyncio.sleep(self.delay * 10)
            case "stream-error":
                await response.write(event({"error": {"message": "engine died", "code": None}}))
                return
            case "stream-malformed":
                await response.write(b"data: {not json\n\n")
                return
            case "stream-no-done":
                for payload in answer[1:]:
                    await response.write(event(payload))
                await response.write_eof()
                return
            case "trickle":
                for payload in answer[1:]:
                    await asyncio.sleep(self.delay)
                    await response.write(event(payload))
                    self.trickled += 1
                await response.write(b"data: [DONE]\n\n")
                await response.write_eof()
                return
            case "large":
                await self._large(response, answer[1])
                return
            case "flood":  # chunks without end, as fast as the client takes them
                await asyncio.sleep(0.05)  # the first chunk is read on its own
                await self._endless(response, event(answer[1]) * 256)
                return
            case "endless":
                for _ in range(1000):
                    await asyncio.sleep(0.02)
                    await response.write(event(answer[1]))
        for payload in answer[1:]:
            await response.write(event(payload))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()

    async def _large(self, response: web.StreamResponse, chunk: dict[str, Any]) -> None:
        """A big chunk, and a moment later another with `[DONE]` and the end of the body.

        Sized so that the first waits whole in the client's buffer and the second, arriving
        in one read, takes it past the point where aiohttp pauses reading (512 KiB): the
        end of the body is then parsed only when the client reads on.
        """
        first, second = self.large_sizes
        await asyncio.sleep(0.05)
        await response.write(event(_with_content(chunk, "x" * first)))
        await asyncio.sleep(0.05)
        await response.write(event(_with_content(chunk, "y" * second)) + b"data: [DONE]\n\n")
        await response.write_eof()
        self.finished.set()


def _with_content(chunk: dict[str, Any], content: str) -> dict[str, Any]:
    choice = {**chunk["choices"][0], "delta": {"content": content}}
    return {**chunk, "choices": [choice]}


def _error(
    status: int, message: str, kind: str, param: str | None, *, retry_after: str | None = None
) -> web.Response:
    error = {"message": message, "type": kind, "param": param, "code": f"code_{status}"}
    headers = {"retry-after": retry_after} if retry_after else None
    return web.json_response({"error": error}, status=status, headers=headers)


def _reset(request: web.Request) -> None:
    """Close the connection with a TCP RST instead of a FIN."""
    transport = request.transport
    if transport is None:
        return
    sock: socket.socket | None = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


@asynccontextmanager
async def running_fault_upstream() -> AsyncIterator[FaultUpstream]:
    """Serve a `FaultUpstream` on 127.0.0.1 on a free port, for the duration of the block."""
    upstream = FaultUpstream()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", upstream.handle)
    app.router.add_get("/v1/models", upstream.list_models)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    upstream.base_url = f"http://{host}:{port}/v1"
    try:
        yield upstream
    finally:
        await runner.cleanup()
