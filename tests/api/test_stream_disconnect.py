"""A client that leaves mid-stream: the upstream request is cancelled and nothing is stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import openai
import pytest
import uvicorn

from chatkeep.config import Settings
from chatkeep.http.app import create_app
from tests.backends.fault_upstream import FaultUpstream, running_fault_upstream

pytestmark = pytest.mark.anyio


@pytest.fixture
async def upstream() -> AsyncIterator[FaultUpstream]:
    async with running_fault_upstream() as server:
        yield server


@pytest.fixture
async def chatkeep_url(tmp_path: Path, upstream: FaultUpstream) -> AsyncIterator[str]:
    """chatkeep on a loopback socket in this test's loop, relaying every model to `upstream`."""
    config_file = tmp_path / "chatkeep.toml"
    config_file.write_text(
        f'default = "fault"\n[upstreams.fault]\nbase_url = "{upstream.base_url}"\n'
    )
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'chatkeep.db'}", config=config_file)
    config = uvicorn.Config(create_app(settings), port=0, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    with anyio.fail_after(10):
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    await task


async def test_leaving_mid_stream_cancels_upstream_and_stores_nothing(
    upstream: FaultUpstream, chatkeep_url: str
) -> None:
    async with openai.AsyncOpenAI(api_key="sk", base_url=chatkeep_url, max_retries=0) as client:
        with anyio.fail_after(10):
            stream = await client.chat.completions.create(
                model="endless",
                messages=[{"role": "user", "content": "go on"}],
                stream=True,
                store=True,
            )
            received = 0
            async for _chunk in stream:
                received += 1
                if received == 2:
                    break
            await stream.close()
            await upstream.client_gone.wait()
            assert (await client.chat.completions.list()).data == []


async def test_leaving_a_response_stream_cancels_upstream_and_stores_nothing(
    upstream: FaultUpstream, chatkeep_url: str
) -> None:
    async with openai.AsyncOpenAI(api_key="sk", base_url=chatkeep_url, max_retries=0) as client:
        with anyio.fail_after(10):
            stream = await client.responses.create(model="endless", input="go on", stream=True)
            response_id = None
            async for event in stream:
                if event.type == "response.created":
                    response_id = event.response.id
                if event.type == "response.output_text.delta":
                    break
            await stream.close()
            await upstream.client_gone.wait()
            assert response_id is not None
            with pytest.raises(openai.NotFoundError):  # announced, never completed: not kept
                await client.responses.retrieve(response_id)
