"""The lean upstream client (`http_client`, `http_conn`) against raw loopback upstreams:
the pool (reuse, its limit, keep-alive off, idle connections that went away), bodies framed
every way and split over many reads, answers cut short, and the bytes it sends. Each test
runs on asyncio's loop and on uvloop's (chatkeep's)."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from typing import Any

import anyio
import pytest

from chatkeep.backends import http_client
from chatkeep.backends.http_client import LeanClient
from chatkeep.backends.http_conn import (
    Answer,
)
from tests.backends.raw_upstream import (
    CLOSE,
    Step,
    chunked,
    plain,
    raw_upstream,
)

pytestmark = pytest.mark.anyio
LIMIT = 10
HEADERS = {"Content-Type": "application/json", "User-Agent": "chatkeep/test"}


@pytest.fixture(params=[pytest.param(False, id="asyncio"), pytest.param(True, id="uvloop")])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return "asyncio", {"use_uvloop": request.param}


def client_for(port: int, **options: Any) -> LeanClient:
    settings: dict[str, Any] = {
        "max_connections": 4,
        "connect_timeout": 2.0,
        "max_response_bytes": 1 << 20,
    }
    return LeanClient("127.0.0.1", port, "/v1/chat/completions", HEADERS, **{**settings, **options})


async def body_of(answer: Answer) -> bytes:
    """The whole body, as `AnswerBody.read_all` reads it: piece by piece."""
    pieces = []
    while data := await answer.content.readany():
        pieces.append(data)
    answer.release()
    return b"".join(pieces)


async def exchange(client: LeanClient, body: bytes = b"{}") -> tuple[int, bytes]:
    answer = await client.post(body)
    return answer.status, await body_of(answer)


# --- the pool ------------------------------------------------------------------------------


async def test_a_connection_is_reused_for_the_next_request() -> None:
    async with raw_upstream(lambda i, _: [plain(b"%d" % i)]) as up:
        client = client_for(up.port)
        with anyio.fail_after(LIMIT):
            answers = [await exchange(client) for _ in range(3)]
        await client.aclose()
    assert answers == [(200, b"0"), (200, b"1"), (200, b"2")]
    assert up.connections == 1


async def test_requests_beyond_the_limit_wait_for_a_connection() -> None:
    async with raw_upstream(lambda i, _: [0.05, plain()]) as up:
        client = client_for(up.port, max_connections=2)
        with anyio.fail_after(LIMIT):
            answers = await asyncio.gather(*(exchange(client) for _ in range(7)))
        await client.aclose()
    assert answers == [(200, b'{"ok":true}')] * 7
    assert up.most_open == 2
    assert up.connections == 2


async def test_an_answer_left_unread_closes_its_connection() -> None:
    big = b"x" * 300_000
    async with raw_upstream(lambda i, _: [plain(big)]) as up:
        client = client_for(up.port)
        with anyio.fail_after(LIMIT):
            answer = await client.post(b"{}")
            answer.release()  # its body was not read to its end
            assert await exchange(client) == (200, big)
        await client.aclose()
    assert up.connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        plain(extra=b"Connection: close\r\n"),
        b"HTTP/1.0 200 OK\r\nContent-Length: 11\r\n\r\n" + b'{"ok":true}',
    ],
    ids=["connection-close", "http-1.0"],
)
async def test_keep_alive_off_means_a_new_connection_each_time(answer: bytes) -> None:
    async with raw_upstream(lambda i, _: [answer]) as up:
        client = client_for(up.port)
        with anyio.fail_after(LIMIT):
            for _ in range(3):
                assert await exchange(client) == (200, b'{"ok":true}')
        await client.aclose()
    assert up.connections == 3


async def test_an_idle_connection_the_upstream_closed_is_not_used() -> None:
    async with raw_upstream(lambda i, _: [plain(), 0.05, CLOSE]) as up:
        client = client_for(up.port)
        with anyio.fail_after(LIMIT):
            assert await exchange(client) == (200, b'{"ok":true}')
            await asyncio.sleep(0.2)  # the upstream closed it meanwhile
            assert await exchange(client) == (200, b'{"ok":true}')
        await client.aclose()
    assert up.connections == 2


async def test_a_connection_idle_past_the_keep_alive_time_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http_client, "KEEPALIVE_SECONDS", 0.1)
    async with raw_upstream(lambda i, _: [plain()]) as up:
        client = client_for(up.port)
        with anyio.fail_after(LIMIT):
            await exchange(client)
            await asyncio.sleep(0.2)
            await exchange(client)
        await client.aclose()
    assert up.connections == 2


# --- bodies ---------------------------------------------------------------------------------


async def test_a_chunked_body_and_its_pieces_as_they_come() -> None:
    events = [b"data: %d\n\n" % i for i in range(5)]
    steps: list[Step] = []
    for step in chunked(*events):
        steps += [step, 0.02]
    async with raw_upstream(lambda i, _: steps) as up:
        client = client_for(up.port)
        with anyio.fail_after(LIMIT):
            answer = await client.post(b"{}")
            first = await answer.content.readany()
            rest = await body_of(answer)
            assert await exchange(client) == (200, b"".join(events))  # reused after it
        await client.aclose()
    assert answer.content_type == "text/event-stream"
    assert answer.content_length is None
    assert first == events[0]  # the first event, before the others were sent
    assert first + rest == b"".join(events)
    assert up.connections == 1


async def test_a_body_split_over_many_reads() -> None:
    whole = plain(b'{"content": "%b"}' % (b"abc" * 2000))
    steps: list[Step] = [whole[i : i + 7] for i in range(0, len(whole), 7)]
    async with raw_upstream(lambda i, _: steps) as up:
        client = client_for(up.port)
        with anyio.fail_after(LIMIT):
            status, body = await exchange(client)
        await client.aclose()
    assert status == 200
    assert body == whole.partition(b"\r\n\r\n")[2]


async def test_a_body_without_length_ends_with_the_connection() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
    async with raw_upstream(lambda i, _: [answer, b'{"a":', 0.02, b"1}", CLOSE]) as up:
        client = client_for(up.port)
        with anyio.fail_after(LIMIT):
            assert await exchange(client) == (200, b'{"a":1}')
            assert await exchange(client) == (200, b'{"a":1}')
        await client.aclose()
    assert up.connections == 2


async def test_a_large_body_read_slowly_arrives_whole() -> None:
    """Reading pauses while much waits for the reader, and resumes as it reads."""
    big = bytes(range(256)) * 8192  # 2 MiB
    async with raw_upstream(lambda i, _: [plain(big)]) as up:
        client = client_for(up.port, max_response_bytes=len(big))
        with anyio.fail_after(LIMIT):
            answer = await client.post(b"{}")
            pieces = []
            while data := await answer.content.readany():
                pieces.append(data)
                await asyncio.sleep(0.01)
            answer.release()
            assert await exchange(client) == (200, big)
        await client.aclose()
    assert b"".join(pieces) == big
    assert up.connections == 1


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        (b"gzip", gzip.compress),
        (b"deflate", zlib.compress),
        (b"deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some send it
    ],
    ids=["gzip", "deflate", "raw-deflate"],
)
async def test_compressed_bodies_are_decoded(coding: bytes, encode: Any) -> None:
    text = b'{"content": "%b"}' % (b"hello " * 1000)
    coded = encode(text)
    extra = b"Content-Encoding: %b\r\n" % coding
    cut = len(coded) // 2
    steps: list[Step] = [plain(coded, extra=extra)[:-cut], 0.02, coded[-cut:]]
    async with raw_upstream(lambda i, _: steps) as up:
        client = client_for(up.port)
        with anyio.fail_after(LIMIT):
            assert await exchange(client) == (200, text)
        await client.aclose()


@pytest.mark.parametrize("coding", [b"gzip", b"deflate"])
async def test_an_empty_compressed_body_is_empty(coding: bytes) -> None:
    steps: list[Step] = [plain(b"", extra=b"Content-Encoding: %b\r\n" % coding)]
    async with raw_upstream(lambda i, _: steps) as up:
        client = client_for(up.port)
        with anyio.fail_after(LIMIT):
            assert await exchange(client) == (200, b"")
            assert await exchange(client) == (200, b"")
        await client.aclose()
    assert up.connections == 1


async def test_a_compressed_body_is_inflated_no_further_than_the_limit() -> None:
    bomb = gzip.compress(b"0" * (8 << 20))  # 8 MiB of zeros, about 8 KiB compressed
    steps: list[Step] = [plain(bomb, extra=b"Content-Encoding: gzip\r\n")]
    async with raw_upstream(lambda i, _: steps) as up:
        client = client_for(up.port, max_response_bytes=1000)
        with anyio.fail_after(LIMIT):
            status, body = await exchange(client)
        await client.aclose()
    assert status == 200
    assert len(body) == 1001  # one byte over: what tells the reader it is too large


async def test_an_interim_answer_is_skipped() -> None:
    steps: list[Step] = [b"HTTP/1.1 100 Continue\r\n\r\n", 0.02, plain()]
    async with raw_upstream(lambda i, _: steps) as up:
        client = client_for(up.port)
        with anyio.fail_after(LIMIT):
            assert await exchange(client) == (200, b'{"ok":true}')
            assert await exchange(client) == (200, b'{"ok":true}')
        await client.aclose()
    assert up.connections == 1


async def test_an_error_answer_keeps_its_status_and_headers() -> None:
    answer = plain(b'{"error": {}}', status=429, extra=b"Retry-After: 7\r\n")
    async with raw_upstream(lambda i, _: [answer]) as up:
        client = client_for(up.port)
        with anyio.fail_after(LIMIT):
            sent = await client.post(b"{}")
            await body_of(sent)
        await client.aclose()
    assert sent.status == 429
    assert sent.headers["retry-after"] == "7"
    assert sent.content_type == "application/json"
    assert sent.content_length == len(b'{"error": {}}')
