"""An upstream's answer within its bounds: its size (`max_response_bytes`) and its silences
(`read_timeout`), with nothing of either left on a connection that goes back to the pool.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import openai
import orjson
import pytest

from chatkeep.backends.upstream import UpstreamBackend
from chatkeep.errors import ChatkeepError, UpstreamStreamBroken, UpstreamTimeoutError
from chatkeep.protocol.responses import ChatCompletionChunk
from tests.backends.conftest import chatkeep_with_config
from tests.backends.fault_upstream import FaultUpstream, completion
from tests.backends.upstream_calls import LIMIT, OUR_ID, raised_by, request

pytestmark = pytest.mark.anyio

SMALL = 64 * 1024  # the size limit of these tests, in bytes
MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def assert_too_large(error: ChatkeepError, *, started: bool) -> None:
    assert isinstance(error, UpstreamStreamBroken) is started
    assert error.status_code == 502
    assert error.to_envelope()["error"]["type"] == "upstream_error"
    assert error.code == "upstream_response_too_large"
    assert "max_response_bytes" in error.message
    if not started:  # the same request would most likely come back as big
        assert error.response_headers()["x-should-retry"] == "false"


async def first_batch(backend: UpstreamBackend, model: str) -> list[ChatCompletionChunk]:
    chunks = backend.stream(request(model, stream=True))
    try:
        return await anext(chunks)
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


# --- silence, and the connection pool -------------------------------------------------------


async def test_a_large_stream_leaves_no_timer_on_its_pooled_connection(
    upstream: FaultUpstream, make_backend: Callable[..., UpstreamBackend]
) -> None:
    """The false 504: after a large stream, the next request on the same connection failed
    at once with "sent nothing for N s" when it came more than `read_timeout` later.

    The stream ends while its last ~540 KiB wait unread, so aiohttp has paused reading with
    the end of the body still unparsed; reading on parses it. aiohttp's own read timer
    (`sock_read`) was re-armed after that end, rode along into the pool, and fired there.
    """
    backend = make_backend(read_timeout=0.5)
    with anyio.fail_after(LIMIT):
        chunks = backend.stream(request("large", stream=True))
        relayed = list(await anext(chunks))
        await upstream.finished.wait()  # everything else is sent, and not read yet
        await asyncio.sleep(0.05)
        async for batch in chunks:
            relayed.extend(batch)
        await asyncio.sleep(0.8)  # idle for longer than `read_timeout`
        answer = await backend.create(request("ok"))
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in relayed)
    assert len(content) == sum(upstream.large_sizes)
    assert answer["id"] == OUR_ID
    assert len(upstream.bodies) == 2  # the second request reached the upstream...
    assert len(set(upstream.client_ports)) == 1  # ...on the connection the stream used


async def test_waiting_for_a_free_connection_is_not_silence(
    upstream: FaultUpstream, make_backend: Callable[..., UpstreamBackend]
) -> None:
    upstream.delay = 0.3
    backend = make_backend(max_connections=1, read_timeout=0.6)
    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as group:
            for _ in range(3):  # the last waits 0.6 s for the connection, then 0.3 s
                group.start_soon(backend.create, request("slow-first-byte"))
    assert len(upstream.bodies) == 3


# --- size -----------------------------------------------------------------------------------


async def test_an_answer_of_exactly_the_limit_is_kept_and_one_byte_more_is_not(
    make_backend: Callable[..., UpstreamBackend],
) -> None:
    size = len(json.dumps(completion("ok")).encode())  # as the upstream sends it
    with anyio.fail_after(LIMIT):
        answer = await make_backend(max_response_bytes=size).create(request("ok"))
        error = await raised_by(make_backend(max_response_bytes=size - 1).create(request("ok")))
    assert answer["id"] == OUR_ID
    assert_too_large(error, started=False)


async def test_a_plain_answer_over_the_limit_is_cut_off_while_read(
    upstream: FaultUpstream, make_backend: Callable[..., UpstreamBackend]
) -> None:
    backend = make_backend(max_response_bytes=SMALL)
    with anyio.fail_after(LIMIT):
        error = await raised_by(backend.create(request("huge")))
        await upstream.client_gone.wait()  # the connection was closed, not read to its end
    assert_too_large(error, started=False)


async def test_a_plain_answer_announced_over_the_limit_is_refused_before_reading(
    upstream: FaultUpstream, make_backend: Callable[..., UpstreamBackend]
) -> None:
    upstream.delay = 1.0  # its body would come 10 s after its headers
    backend = make_backend(max_response_bytes=SMALL, read_timeout=5)
    with anyio.fail_after(3):
        error = await raised_by(backend.create(request("huge-announced")))
    assert_too_large(error, started=False)


async def test_a_stream_event_without_end_is_refused_before_the_first_chunk(
    upstream: FaultUpstream, make_backend: Callable[..., UpstreamBackend]
) -> None:
    backend = make_backend(max_response_bytes=SMALL)
    with anyio.fail_after(LIMIT):
        error = await raised_by(first_batch(backend, "huge-line"))
        await upstream.client_gone.wait()
    assert_too_large(error, started=False)


async def test_a_stream_over_the_limit_ends_in_an_error_after_what_fit(
    upstream: FaultUpstream, make_backend: Callable[..., UpstreamBackend]
) -> None:
    backend = make_backend(max_response_bytes=SMALL)
    relayed: list[ChatCompletionChunk] = []
    with anyio.fail_after(LIMIT), pytest.raises(UpstreamStreamBroken) as info:
        async for batch in backend.stream(request("flood", stream=True)):
            relayed.extend(batch)
    with anyio.fail_after(LIMIT):
        await upstream.client_gone.wait()
    assert relayed
    assert sum(len(orjson.dumps(chunk)) for chunk in relayed) < SMALL
    assert_too_large(info.value, started=True)


async def test_silence_is_still_a_timeout(
    upstream: FaultUpstream, make_backend: Callable[..., UpstreamBackend]
) -> None:
    upstream.delay = 0.5
    backend = make_backend(read_timeout=0.3)
    with anyio.fail_after(LIMIT), pytest.raises(UpstreamStreamBroken) as info:
        async for _batch in backend.stream(request("stream-stall", stream=True)):
            pass
    assert info.value.code == "upstream_timeout"
    assert info.value.message == "Upstream 'fault' sent nothing for 0.3 s."
    with anyio.fail_after(LIMIT):
        error = await raised_by(first_batch(backend, "slow-first-byte"))
    assert isinstance(error, UpstreamTimeoutError)


# --- through chatkeep -----------------------------------------------------------------------


@pytest.fixture
async def chatkeep(tmp_path: Path, upstream: FaultUpstream) -> AsyncIterator[openai.AsyncOpenAI]:
    """chatkeep in-process, relaying every model to `upstream`, with a small size limit."""
    toml = (
        f'default = "fault"\n\n[upstreams.fault]\nbase_url = "{upstream.base_url}"\n'
        f"max_response_bytes = {SMALL}\n"
    )
    async with chatkeep_with_config(tmp_path, toml) as client:
        yield client


async def test_answers_over_the_limit_reach_the_client_as_errors_and_are_not_stored(
    chatkeep: openai.AsyncOpenAI,
) -> None:
    with anyio.fail_after(LIMIT):
        with pytest.raises(openai.APIStatusError) as plain:
            await chatkeep.chat.completions.create(model="huge", messages=MESSAGES, store=True)
        stream = await chatkeep.chat.completions.create(
            model="flood", messages=MESSAGES, store=True, stream=True
        )
        received = 0
        with pytest.raises(openai.APIError) as streamed:
            async for _chunk in stream:
                received += 1
        stored = await chatkeep.chat.completions.list()
    assert plain.value.status_code == 502
    assert plain.value.code == "upstream_response_too_large"
    assert plain.value.type == "upstream_error"
    assert plain.value.response.headers["x-should-retry"] == "false"
    assert received > 0  # what fit was relayed, then the error event
    assert streamed.value.code == "upstream_response_too_large"
    assert stored.data == []
