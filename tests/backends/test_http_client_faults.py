"""The lean upstream client's faults (answers cut short, connections refused or silent, TLS
refused), its TLS, the bytes it sends next to aiohttp's, and the backend's choice between
the two clients."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

from chatkeep.backends.http_client import LeanClient, tls_context
from chatkeep.backends.http_conn import (
    AnswerBrokenOff,
    UpstreamConnectTimeout,
    UpstreamDropped,
    UpstreamUnreachable,
)
from chatkeep.backends.upstream import UpstreamBackend
from chatkeep.backends.upstream_config import UpstreamConfig
from chatkeep.errors import UpstreamError, UpstreamStreamBroken, UpstreamTimeoutError
from tests.backends.fault_upstream import FaultUpstream
from tests.backends.raw_upstream import CLOSE, RESET, Step, chunked, plain, raw_upstream
from tests.backends.test_http_client import HEADERS, LIMIT, body_of, client_for, exchange
from tests.backends.upstream_calls import OUR_ID, raised_by, request
from tests.conftest import free_port

pytestmark = pytest.mark.anyio
TLS = Path(__file__).parent / "tls"


@pytest.fixture(params=[pytest.param(False, id="asyncio"), pytest.param(True, id="uvloop")])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return "asyncio", {"use_uvloop": request.param}


# --- answers cut short ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "steps",
    [
        [plain(b"x" * 100)[:-40], 0.02, CLOSE],
        [plain(b"x" * 100)[:-40], 0.02, RESET],
        [*chunked(b"data: 1\n\n", b"data: 2\n\n")[:2], 0.02, CLOSE],
        [*chunked(b"data: 1\n\n")[:2], b"zz\r\nnot a chunk size", 0.02],
        [plain(b"not gzip at all", extra=b"Content-Encoding: gzip\r\n")],
        [plain(gzip.compress(b"x" * 100)[:-9], extra=b"Content-Encoding: gzip\r\n")],
    ],
    ids=["length-closed", "length-reset", "chunked-closed", "bad-chunk", "bad-gzip", "cut-gzip"],
)
async def test_a_body_cut_short_is_broken_off(steps: list[Step]) -> None:
    async with raw_upstream(lambda i, _: steps) as up:
        client = client_for(up.port)
        with anyio.fail_after(LIMIT), pytest.raises(AnswerBrokenOff):
            await exchange(client)
        await client.aclose()


@pytest.mark.parametrize(
    "steps",
    [
        [CLOSE],
        [RESET],
        [b"HTTP/1.1 200 OK\r\nContent-Le", CLOSE],
        [b"SMTP ready\r\n\r\n"],
        [b"HTTP/1.1 200 OK\r\nX-Endless: ", *[b"x" * 8192, 0.001] * 20],
    ],
    ids=["closed", "reset", "half-a-head", "not-http", "endless-head"],
)
async def test_no_answer_is_a_dropped_connection(steps: list[Step]) -> None:
    async with raw_upstream(lambda i, _: steps) as up:
        client = client_for(up.port)
        with anyio.fail_after(LIMIT), pytest.raises(UpstreamDropped):
            await client.post(b"{}")
        await client.aclose()


async def test_bytes_after_the_answer_close_the_connection() -> None:
    async with raw_upstream(lambda i, _: [plain() + plain()]) as up:
        client = client_for(up.port)
        with anyio.fail_after(LIMIT):
            assert await exchange(client) == (200, b'{"ok":true}')
            assert await exchange(client) == (200, b'{"ok":true}')
        await client.aclose()
    assert up.connections == 2


async def test_a_refused_connection_is_unreachable_and_frees_its_place() -> None:
    client = client_for(free_port(), max_connections=1)
    with anyio.fail_after(LIMIT):
        for _ in range(3):  # the failed connection left the pool: the next one may try
            with pytest.raises(UpstreamUnreachable):
                await client.post(b"{}")


async def test_a_silent_server_is_a_connect_timeout() -> None:
    """A TLS handshake that never gets an answer: the connect timeout covers it."""
    async with raw_upstream(lambda i, _: []) as up:
        client = client_for(up.port, connect_timeout=0.2)
        client._tls = tls_context()
        with anyio.fail_after(LIMIT), pytest.raises(UpstreamConnectTimeout):
            await client.post(b"{}")
        await client.aclose()


# --- TLS ----------------------------------------------------------------------------------------


def server_tls() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(TLS / "upstream.pem", TLS / "upstream.key")
    return context


async def test_tls_with_a_trusted_certificate() -> None:
    async with raw_upstream(lambda i, _: [plain()], tls=server_tls()) as up:
        trusting = tls_context()
        trusting.load_verify_locations(TLS / "upstream.pem")
        client = LeanClient(
            "localhost",
            up.port,
            "/v1/chat/completions",
            HEADERS,
            max_connections=2,
            connect_timeout=2,
            max_response_bytes=1000,
            tls=trusting,
        )
        with anyio.fail_after(LIMIT):
            assert await exchange(client) == (200, b'{"ok":true}')
            assert await exchange(client) == (200, b'{"ok":true}')
        await client.aclose()
    assert up.connections == 1


async def test_tls_with_an_untrusted_certificate_is_unreachable() -> None:
    async with raw_upstream(lambda i, _: [plain()], tls=server_tls()) as up:
        config = UpstreamConfig(base_url=f"https://localhost:{up.port}/v1", connect_timeout=2)
        backend = UpstreamBackend("tls", config)
        with anyio.fail_after(LIMIT):
            error = await raised_by(backend.create(request("ok")))
        await backend.aclose()
    assert type(error) is UpstreamError
    assert error.message == "Upstream 'tls' could not be reached."


async def test_the_backend_over_tls_trusts_what_the_system_trusts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(TLS / "upstream.pem"))  # OpenSSL's own variable
    answer = plain(b'{"choices": []}')
    async with raw_upstream(lambda i, _: [answer], tls=server_tls()) as up:
        config = UpstreamConfig(base_url=f"https://127.0.0.1:{up.port}/v1")
        backend = UpstreamBackend("tls", config)
        with anyio.fail_after(LIMIT):
            completion = await backend.create(request("ok"))
        await backend.aclose()
    assert completion["id"] == OUR_ID


# --- the bytes sent, and the choice of client ---------------------------------------------------


async def test_the_request_is_the_one_aiohttp_sends() -> None:
    headers = {**HEADERS, "Authorization": "Bearer sk-x"}
    trace = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    async with raw_upstream(lambda i, _: [plain()]) as up:
        url = f"http://127.0.0.1:{up.port}/v1/chat/completions"
        with anyio.fail_after(LIMIT):
            async with aiohttp.ClientSession(headers=headers) as session:
                payload = aiohttp.BytesPayload(b'{"model": "m"}')
                async with session.post(url, data=payload, headers=trace) as response:
                    await response.read()
            lean = LeanClient.for_upstream(
                UpstreamConfig(base_url=f"http://127.0.0.1:{up.port}/v1"),
                headers,
                path="/chat/completions",
            )
            assert lean is not None
            await body_of(await lean.post(b'{"model": "m"}', trace))
            await lean.aclose()
    (_, by_aiohttp), (_, by_lean) = up.requests
    assert by_lean == by_aiohttp


@pytest.mark.parametrize(
    ("url", "lean"),
    [
        ("http://127.0.0.1:8000/v1", True),
        ("https://api.example.com/v1", True),
        ("http://[::1]:8000/v1", True),
        ("http://user:secret@127.0.0.1:8000/v1", False),
        ("http://127.0.0.1:8000/a%20b/v1", False),
        ("http://bücher.example/v1", False),
    ],
)
def test_which_base_urls_the_lean_client_carries(url: str, lean: bool) -> None:
    client = LeanClient.for_upstream(UpstreamConfig(base_url=url), HEADERS, path="/x")
    assert (client is not None) is lean


async def test_a_base_url_with_a_password_keeps_aiohttps_basic_auth(
    upstream: FaultUpstream,
) -> None:
    url = upstream.base_url.replace("http://", "http://user:secret@")
    backend = UpstreamBackend("auth", UpstreamConfig(base_url=url))
    try:
        with anyio.fail_after(LIMIT):
            completion = await backend.create(request("ok"))
    finally:
        await backend.aclose()
    assert completion["id"] == OUR_ID
    assert upstream.headers[-1]["Authorization"] == "Basic dXNlcjpzZWNyZXQ="


async def test_the_backend_closes_its_pool(upstream: FaultUpstream) -> None:
    backend = UpstreamBackend("fault", UpstreamConfig(base_url=upstream.base_url))
    with anyio.fail_after(LIMIT):
        await backend.create(request("ok"))
        await backend.aclose()
        await asyncio.sleep(0.05)
        await backend.create(request("ok"))  # a closed backend opens a new connection
        await backend.aclose()
    assert len(set(upstream.client_ports)) == 2


async def test_a_connect_timeout_through_the_backend_is_a_504() -> None:
    async with raw_upstream(lambda i, _: []) as up:  # takes the TCP connection, says nothing
        config = UpstreamConfig(base_url=f"https://127.0.0.1:{up.port}/v1", connect_timeout=0.2)
        backend = UpstreamBackend("mute", config)
        with anyio.fail_after(LIMIT):
            error = await raised_by(backend.create(request("ok")))
        await backend.aclose()
    assert isinstance(error, UpstreamTimeoutError)
    assert error.message == "Upstream 'mute' did not accept a connection within 0.2 s."


async def test_total_timeout_cuts_a_stream_that_never_ends(upstream: FaultUpstream) -> None:
    config = UpstreamConfig(base_url=upstream.base_url, read_timeout=5, total_timeout=0.4)
    backend = UpstreamBackend("fault", config)
    relayed = 0
    try:
        with anyio.fail_after(LIMIT), pytest.raises(UpstreamStreamBroken) as info:
            async for batch in backend.stream(request("endless", stream=True)):
                relayed += len(batch)
    finally:
        await backend.aclose()
    assert relayed > 1
    assert info.value.code == "upstream_timeout"
    assert info.value.message == "Upstream 'fault' did not finish within 0.4 s."
