"""Calls to an `UpstreamBackend` for the tests: a request under our id, its answers collected."""

from __future__ import annotations

from typing import Any

import pytest

from chatkeep.backends.base import BackendRequest
from chatkeep.backends.upstream import UpstreamBackend
from chatkeep.errors import ChatkeepError
from chatkeep.protocol.requests import CreateChatCompletionRequest
from chatkeep.protocol.responses import ChatCompletionChunk

OUR_ID = "chatcmpl-ours0000000000000000000000000"
OUR_CREATED = 1_800_000_000
LIMIT = 10  # seconds any one test may take


def request(model: str, *, include_usage: bool = True, **fields: Any) -> BackendRequest:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **fields}
    return BackendRequest(
        params=CreateChatCompletionRequest.model_construct(**body),
        body=body,
        completion_id=OUR_ID,
        created=OUR_CREATED,
        include_usage=include_usage,
    )


async def collect(backend: UpstreamBackend, req: BackendRequest) -> list[ChatCompletionChunk]:
    return [chunk async for batch in backend.stream(req) for chunk in batch]


async def raised_by(awaitable: Any) -> ChatkeepError:
    with pytest.raises(ChatkeepError) as info:
        await awaitable
    return info.value
