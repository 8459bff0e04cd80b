"""The upstream backend against a real fault-injecting server on loopback.

Each test is bounded: the backend's own timeouts are short, and `anyio.fail_after` guards
the test body, so a regression shows as a failure rather than a hung suite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

from chatkeep.backends.base import BackendRequest
from chatkeep.backends.upstream import UpstreamBackend
from chatkeep.backends.upstream_config import UpstreamConfig
from chatkeep.config import Settings
from chatkeep.errors import (
    UpstreamError,
    UpstreamMalformedError,
    UpstreamRejectedError,
    UpstreamStreamBroken,
    UpstreamTimeoutError,
)
from chatkeep.http.app import create_app
from chatkeep.protocol.responses import ChatCompletionChunk
from chatkeep.protocol.sse import SSEDecoder
from chatkeep.service.stream_accumulator import ChatCompletionAccumulator
from tests.backends.fault_upstream import (
    FINGERPRINT,
    USAGE,
    FaultUpstream,
)
from tests.backends.upstream_calls import (
    LIMIT,
    OUR_CREATED,
    OUR_ID,
    collect,
    raised_by,
    request,
)
from tests.conftest import ThreadedServer, free_port

pytestmark = pytest.mark.anyio


# --- the normal path ---------------------------------------------------------------------


async def test_create_keeps_the_upstream_answer_under_our_id(backend: UpstreamBackend) -> None:
    with anyio.fail_after(LIMIT):
        completion = await backend.create(request("ok"))
    assert completion["id"] == OUR_ID
    assert completion["created"] == OUR_CREATED
    assert completion["model"] == "ok-2024"  # the upstream's resolved model name
    assert completion["system_fingerprint"] == FINGERPRINT
    assert completion["usage"] == USAGE
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [
        {
            "id": "call_upstream1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        }
    ]
    logprobs = choice["logprobs"]
    assert logprobs is not None and logprobs["content"] is not None
    assert logprobs["content"][0]["token"] == "Hi"
    assert "stop_reason" in choice  # vendor fields survive


async def test_body_is_forwarded_intact_minus_store_and_metadata(
    upstream: FaultUpstream, make_backend: Callable[..., UpstreamBackend]
) -> None:
    backend = make_backend(api_key="sk-upstream-secret")
    vendor: dict[str, Any] = {"top_k": 20, "chat_template_kwargs": {"enable_thinking": False}}
    with anyio.fail_after(LIMIT):
        await backend.create(request("ok", store=True, metadata={"a": "b"}, **vendor))
    sent = upstream.bodies[-1]
    assert sent["top_k"] == 20
    assert sent["chat_template_kwargs"] == {"enable_thinking": False}
    assert sent["messages"] == [{"role": "user", "content": "hi"}]
    assert "store" not in sent
    assert "metadata" not in sent
    assert upstream.headers[-1]["Authorization"] == "Bearer sk-upstream-secret"
    assert upstream.headers[-1]["Content-Type"] == "application/json"


async def test_store_and_metadata_forwarded_when_switched_on(
    upstream: FaultUpstream, make_backend: Callable[..., UpstreamBackend]
) -> None:
    backend = make_backend(forward_store=True)
    with anyio.fail_after(LIMIT):
        await backend.create(request("ok", store=True, metadata={"a": "b"}))
    assert upstream.bodies[-1]["store"] is True
    assert upstream.bodies[-1]["metadata"] == {"a": "b"}


async def test_model_is_renamed_for_the_upstream(
    upstream: FaultUpstream, make_backend: Callable[..., UpstreamBackend]
) -> None:
    backend = make_backend(upstream_model=lambda model: f"vendor/{model}")
    with anyio.fail_after(LIMIT):
        completion = await backend.create(request("ok"))
        chunks = await collect(backend, request("ok", stream=True))
    assert [body["model"] for body in upstream.bodies] == ["vendor/ok", "vendor/ok"]
    assert completion["model"] == "vendor/ok-2024"
    assert chunks[0]["model"] == "vendor/ok-2024"


async def test_stream_relays_every_chunk_under_our_id(
    upstream: FaultUpstream, backend: UpstreamBackend
) -> None:
    req = request("ok", stream=True, stream_options={"include_obfuscation": False})
    with anyio.fail_after(LIMIT):
        chunks = await collect(backend, req)
    assert {chunk["id"] for chunk in chunks} == {OUR_ID}
    assert {chunk["created"] for chunk in chunks} == {OUR_CREATED}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == USAGE
    # Usage was asked of the upstream for storing; the client's own stream options stay.
    sent = upstream.bodies[-1]
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_obfuscation": False, "include_usage": True}


async def test_stream_without_include_usage_leaves_stream_options_alone(
    upstream: FaultUpstream, backend: UpstreamBackend
) -> None:
    with anyio.fail_after(LIMIT):
        chunks = await collect(backend, request("ok", include_usage=False, stream=True))
    assert "stream_options" not in upstream.bodies[-1]
    assert all(chunk["choices"] for chunk in chunks)


async def test_stream_with_crlf_line_endings_and_comments(backend: UpstreamBackend) -> None:
    with anyio.fail_after(LIMIT):
        chunks = await collect(backend, request("crlf", stream=True))
    assert len(chunks) == 5
    assert chunks[1]["choices"][0]["delta"] == {"content": "Hel"}


async def test_chunks_are_relayed_as_they_arrive(
    upstream: FaultUpstream, backend: UpstreamBackend
) -> None:
    upstream.delay = 0.2
    seen_when_relayed: list[int] = []
    with anyio.fail_after(LIMIT):
        async for _batch in backend.stream(request("trickle", stream=True)):
            seen_when_relayed.append(upstream.trickled)
    # The first chunk reached us before the upstream wrote the next one: nothing buffered.
    assert seen_when_relayed[:2] == [0, 1]


async def test_connections_are_pooled_and_reused(
    upstream: FaultUpstream, make_backend: Callable[..., UpstreamBackend]
) -> None:
    upstream.delay = 0.1
    backend = make_backend(max_connections=2)
    with anyio.fail_after(LIMIT):
        for _ in range(3):
            await backend.create(request("ok"))
            await collect(backend, request("ok", stream=True))
        assert len(set(upstream.client_ports)) == 1
        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(backend.create, request("slow-first-byte"))
    assert len(set(upstream.client_ports)) <= 2  # the pool never grew past its limit


async def test_client_going_away_closes_the_upstream_request(
    upstream: FaultUpstream, backend: UpstreamBackend
) -> None:
    with anyio.fail_after(LIMIT):
        chunks = backend.stream(request("endless", stream=True))
        await anext(chunks)
        await anext(chunks)
        await chunks.aclose()  # type: ignore[attr-defined]
        await upstream.client_gone.wait()


# --- another chatkeep as the upstream -----------------------------------------------------


@pytest.fixture
def chatkeep_upstream(tmp_path: Path) -> Iterator[str]:
    """A second chatkeep (echo model, its own SQLite file) serving on a loopback socket."""
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'upstream.db'}"))
    with ThreadedServer(app) as url:
        yield url


async def stored_on(url: str) -> list[str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/v1/chat/completions") as response,
    ):
        assert response.status == 200
        page = await response.json()
    return [item["id"] for item in page["data"]]


@pytest.mark.parametrize("forward_store", [False, True])
async def test_chatkeep_as_the_upstream(chatkeep_upstream: str, forward_store: bool) -> None:
    config = UpstreamConfig(base_url=f"{chatkeep_upstream}/v1", forward_store=forward_store)
    backend = UpstreamBackend("chatkeep", config, api_key="sk-upstream")
    fields: dict[str, Any] = {"store": True, "n": 2, "logprobs": True, "top_logprobs": 2}
    try:
        with anyio.fail_after(LIMIT):
            created = await backend.create(request("echo", **fields))
            accumulator = ChatCompletionAccumulator()
            async for batch in backend.stream(request("echo", stream=True, **fields)):
                for chunk in batch:
                    accumulator.add(chunk)
            stored = await stored_on(chatkeep_upstream)
    finally:
        await backend.aclose()
    assert created["id"] == OUR_ID
    assert created["choices"][1]["message"]["content"] == "hi"
    assert accumulator.result() == created  # the stream adds up to the plain answer
    # The upstream kept its own copies only when told to store them.
    assert len(stored) == (2 if forward_store else 0)
    assert OUR_ID not in stored


# --- faults before anything was relayed ----------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_400_comes_back_with_its_status_and_error(
    backend: UpstreamBackend, stream: bool
) -> None:
    with anyio.fail_after(LIMIT):
        error = await raised_by(_first(backend, request("status-400"), stream))
    assert isinstance(error, UpstreamRejectedError)
    assert error.status_code == 400
    assert error.to_envelope() == {
        "error": {
            "message": "Invalid 'temperature'.",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "code_400",
        }
    }
    assert error.response_headers()["x-should-retry"] == "false"


async def test_upstream_429_keeps_retry_after_and_lets_the_sdk_retry(
    backend: UpstreamBackend,
) -> None:
    with anyio.fail_after(LIMIT):
        error = await raised_by(backend.create(request("status-429")))
    assert error.status_code == 429
    assert error.to_envelope()["error"]["type"] == "rate_limit_error"
    assert error.response_headers() == {"retry-after": "7"}


async def test_upstream_error_as_a_bare_string_is_enveloped(backend: UpstreamBackend) -> None:
    with anyio.fail_after(LIMIT):
        error = await raised_by(backend.create(request("ollama-404")))
    assert error.status_code == 404
    assert error.to_envelope()["error"]["message"] == "model 'ollama-404' not found"
    assert set(error.to_envelope()["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_500_becomes_502(backend: UpstreamBackend, stream: bool) -> None:
    with anyio.fail_after(LIMIT):
        error = await raised_by(_first(backend, request("status-500"), stream))
    assert type(error) is UpstreamError
    assert error.status_code == 502
    assert error.to_envelope()["error"]["type"] == "upstream_error"
    assert "The server had an error." in error.message


@pytest.mark.parametrize("model", ["malformed", "not-a-completion"])
async def test_malformed_body_becomes_502_not_worth_retrying(
    backend: UpstreamBackend, model: str
) -> None:
    with anyio.fail_after(LIMIT):
        error = await raised_by(backend.create(request(model)))
    assert isinstance(error, UpstreamMalformedError)
    assert error.status_code == 502
    assert error.response_headers()["x-should-retry"] == "false"


@pytest.mark.parametrize("model", ["json-to-stream", "error-first"])
async def test_stream_that_fails_before_its_first_chunk_raises_plainly(
    backend: UpstreamBackend, model: str
) -> None:
    with anyio.fail_after(LIMIT):
        error = await raised_by(_first(backend, request(model), stream=True))
    assert isinstance(error, UpstreamError)
    assert not isinstance(error, UpstreamStreamBroken)
    assert error.status_code == 502


@pytest.mark.parametrize("stream", [False, True])
async def test_reset_connection_becomes_502(backend: UpstreamBackend, stream: bool) -> None:
    with anyio.fail_after(LIMIT):
        error = await raised_by(_first(backend, request("reset"), stream))
    assert type(error) is UpstreamError
    assert error.code == "upstream_connection_error"


async def test_refused_connection_becomes_502() -> None:
    config = UpstreamConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", connect_timeout=2)
    backend = UpstreamBackend("gone", config)
    try:
        with anyio.fail_after(LIMIT):
            error = await raised_by(backend.create(request("ok")))
    finally:
        await backend.aclose()
    assert type(error) is UpstreamError
    assert error.message == "Upstream 'gone' could not be reached."


@pytest.mark.parametrize("stream", [False, True])
async def test_slow_first_byte_times_out_as_504(
    upstream: FaultUpstream, make_backend: Callable[..., UpstreamBackend], stream: bool
) -> None:
    upstream.delay = 2.0
    backend = make_backend(read_timeout=0.2)
    with anyio.fail_after(LIMIT):
        error = await raised_by(_first(backend, request("slow-first-byte"), stream))
    assert isinstance(error, UpstreamTimeoutError)
    assert error.status_code == 504
    assert error.message == "Upstream 'fault' sent nothing for 0.2 s."


async def test_slow_trickle_is_cut_by_the_total_timeout(
    upstream: FaultUpstream, make_backend: Callable[..., UpstreamBackend]
) -> None:
    upstream.delay = 0.2  # one byte every 20 ms: never silent for long, never done in time
    backend = make_backend(read_timeout=1, total_timeout=0.5)
    with anyio.fail_after(LIMIT):
        error = await raised_by(backend.create(request("trickle")))
    assert isinstance(error, UpstreamTimeoutError)


# --- faults after the first chunk was relayed ---------------------------------------------


@pytest.mark.parametrize(
    ("model", "code"),
    [
        ("stream-cut", "upstream_stream_broken"),
        ("stream-reset", "upstream_stream_broken"),
        ("stream-no-done", "upstream_stream_broken"),
        ("stream-malformed", "upstream_malformed_response"),
        ("stream-error", "upstream_error"),
        ("stream-stall", "upstream_timeout"),
    ],
)
async def test_stream_breaking_midway_raises_stream_broken(
    upstream: FaultUpstream,
    make_backend: Callable[..., UpstreamBackend],
    model: str,
    code: str,
) -> None:
    upstream.delay = 0.5
    backend = make_backend(read_timeout=0.3)
    relayed: list[ChatCompletionChunk] = []
    with anyio.fail_after(LIMIT), pytest.raises(UpstreamStreamBroken) as info:
        async for batch in backend.stream(request(model, stream=True)):
            relayed.extend(batch)
    assert relayed, "the first chunk should have been relayed before the break"
    assert info.value.status_code == 502
    assert info.value.code == code
    assert info.value.to_envelope()["error"]["type"] == "upstream_error"


async def _first(backend: UpstreamBackend, req: BackendRequest, stream: bool) -> object:
    if not stream:
        return await backend.create(req)
    body = {**req.body, "stream": True}
    chunks = backend.stream(
        BackendRequest(req.params, body, req.completion_id, req.created, req.include_usage)
    )
    try:
        return await anext(chunks)
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


# --- SSE decoding -------------------------------------------------------------------------


def test_sse_decoder_follows_the_event_stream_rules() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b': comment\n\nevent: x\nid: 1\ndata: {"a":\ndata:1}\n\n')
    assert events == [b'{"a":\n1}']
    # CRLF split across reads, and a bare CR as a line ending.
    assert decoder.feed(b"data: one\r") == []
    assert decoder.feed(b"\n\r\ndata: two\r\r") == [b"one", b"two"]
    # Empty data is not an event; a field name alone is a field with an empty value.
    assert decoder.feed(b"data\n\ndata:\n\n") == []
    assert decoder.feed(b"data\ndata: x\n\n") == [b"\nx"]
    # An event is dispatched only once its blank line arrives.
    assert decoder.feed(b"data: partial") == []
    assert decoder.feed(b" still\n") == []
    assert decoder.feed(b"\n") == [b"partial still"]
