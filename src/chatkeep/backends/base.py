"""The Backend protocol: where completions come from.

A backend receives a validated request and answers with the model-generated part of a
completion (choices, usage, model, system_fingerprint, service_tier). The service owns
everything else: the completion id, `created`, the request id and storage. The echo model
and the upstream relay both implement this protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from chatkeep.protocol.requests import CreateChatCompletionRequest
from chatkeep.protocol.responses import ChatCompletion, ChatCompletionChunk, Model

if TYPE_CHECKING:
    from chatkeep.observability.tracing import RequestTrace


@dataclass(frozen=True, slots=True)
class BackendRequest:
    """What a backend needs to answer one create call.

    `params` is the validated request; `body` is the decoded JSON exactly as the client sent
    it (unknown vendor fields included), for backends that forward it. `include_usage`
    asks a streaming backend for a final usage chunk even when the client did not, so that
    a stored completion always has its usage; the service hides that chunk when the client
    did not ask for it. `trace` is the request's server span when tracing is on: a backend
    that calls out makes its client span under it (and propagates it).
    """

    params: CreateChatCompletionRequest
    body: dict[str, Any]
    completion_id: str
    created: int
    include_usage: bool
    trace: RequestTrace | None = None


class Backend(Protocol):
    """A source of chat completions for some set of model names."""

    name: str

    def serves(self, model: str) -> bool:
        """Whether this backend answers the given model name."""
        ...

    def models(self) -> list[Model]:
        """The models this backend lists on `GET /v1/models`."""
        ...

    async def create(self, request: BackendRequest) -> ChatCompletion:
        """Answer a non-streamed request with a whole `chat.completion` object."""
        ...

    def stream(self, request: BackendRequest) -> AsyncIterator[list[ChatCompletionChunk]]:
        """Answer a streamed request with `chat.completion.chunk` objects, in order.

        Each item is a non-empty batch: the chunks that became available together (one
        network read of an upstream, say). The service writes a batch to the client as one
        frame, so a fast upstream costs one write per read rather than one per chunk, while
        a slow one is still relayed as each piece arrives.

        Every chunk carries `request.completion_id` and `request.created`. When
        `request.include_usage` is true the last chunk has `choices: []` and the usage.
        """
        ...

    async def aclose(self) -> None:
        """Release connections and other resources."""
        ...
