"""Creating chat completions, plain and streamed, and storing those asked to be stored.

`store: true` means: the completion and its input messages are committed before the
response (or, when streamed, the `data: [DONE]` line) is sent, so that a GET right after a
create always finds it. A stream that breaks, or a client that goes away mid-stream, leaves
nothing stored: only a completion the client received whole is kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from chatkeep.backends.base import Backend, BackendRequest
from chatkeep.ids import CompletionIdGenerator
from chatkeep.lifecycle.policy import DEFAULT_POLICY, ProjectPolicy
from chatkeep.log_lines import COMPLETION_LINE
from chatkeep.log_writer import LineLog
from chatkeep.protocol.requests import ParsedCreateRequest
from chatkeep.protocol.responses import (
    ChatCompletion,
    ChatCompletionChunk,
    CompletionUsage,
    Model,
)
from chatkeep.protocol.sse import DONE_EVENT, encode_event
from chatkeep.service.stored import build_stored_completion
from chatkeep.service.stream_accumulator import ChatCompletionAccumulator
from chatkeep.store.base import CompletionStore, NewCompletion
from chatkeep.usage.meter import UsageMeter

if TYPE_CHECKING:
    from chatkeep.observability.metrics import CreateRecord
    from chatkeep.observability.tracing import RequestTrace

logger = logging.getLogger(__name__)


class ModelRouter(Protocol):
    """Finds the backend that answers a model name (raises `ModelNotFoundError`)."""

    def backend_for(self, model: str) -> Backend: ...

    def models(self) -> list[Model]: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who is calling, the id of this HTTP request, and the caller's project policy.

    `record` notes what the metrics need (the backend, the waits on it, the usage);
    `trace` is the request's server span when tracing is on.
    """

    project: str
    request_id: str
    policy: ProjectPolicy = DEFAULT_POLICY
    # The caller's key, for the usage it is counted under (None: an open server, no key).
    api_key_id: str | None = None
    record: CreateRecord | None = None
    trace: RequestTrace | None = None

    def stores(self, parsed: ParsedCreateRequest) -> bool:
        """Whether this create is kept: the request's `store`, as the policy rules."""
        return self.policy.decides_store(parsed.params.store)


class CompletionCreator:
    """Runs create calls against a backend, stores what is asked to be stored, and counts
    every answered completion on `meter` (the usage routes), stored or not."""

    def __init__(
        self,
        store: CompletionStore,
        router: ModelRouter,
        ids: CompletionIdGenerator,
        meter: UsageMeter | None = None,
        lines: LineLog | None = None,
    ) -> None:
        self._store = store
        self._router = router
        self._ids = ids
        self._meter = meter
        self._lines = lines or LineLog()

    def _backend_request(
        self, parsed: ParsedCreateRequest, store: bool, context: CallContext
    ) -> tuple[Backend, BackendRequest]:
        backend = self._router.backend_for(parsed.params.model)
        if context.record is not None:
            context.record.backend = backend.name
        trace = context.trace
        if trace is not None:
            trace.project, trace.stored = context.project, store
        completion_id, created_ms = self._ids.new_id()
        request = BackendRequest(
            params=parsed.params,
            body=parsed.body,
            completion_id=completion_id,
            created=created_ms // 1000,
            # The meter and a stored completion need its usage even when the client did not
            # ask for it (the service hides it from the client then).
            include_usage=store or self._meter is not None or _client_wants_usage(parsed.body),
            trace=trace,
        )
        return backend, request

    async def create_chat_completion(
        self, parsed: ParsedCreateRequest, context: CallContext
    ) -> ChatCompletion:
        started = time.perf_counter()
        store = context.stores(parsed)
        backend, request = self._backend_request(parsed, store, context)
        asked = time.perf_counter()
        completion = await backend.create(request)
        record = context.record
        if record is not None:
            record.upstream_seconds = time.perf_counter() - asked
            record.usage = completion.get("usage")
        if store:
            stored = _new_completion(completion, parsed, context, self._ids, started)
            await self._store.insert(await _redacted(stored, context))
        if self._meter is not None:  # a dict lookup and four additions (usage/meter.py)
            self._meter.record(
                context.project,
                context.api_key_id,
                completion["model"],
                completion["created"],
                completion.get("usage"),
            )
        _log_completion(
            self._lines,
            completion["id"],
            completion["model"],
            completion.get("usage"),
            backend,
            context,
            stream=False,
            started=started,
        )
        if context.trace is not None:
            context.trace.create_answered(completion["id"], parsed.params.model)
        return completion

    async def open_chat_completion_stream(
        self, parsed: ParsedCreateRequest, context: CallContext
    ) -> AsyncIterator[bytes]:
        """Start a streamed create; errors before the first chunk are raised from here.

        Returns the SSE byte frames to send, ending with `data: [DONE]` once the
        completion (when asked for) is stored. A later failure (the upstream breaks, the
        store cannot commit) is raised by the frames, before `[DONE]`; the HTTP layer,
        whose response has begun, sends it as an `error` event and ends the stream.
        """
        started = time.perf_counter()
        backend, request = self._backend_request(parsed, context.stores(parsed), context)
        asked = time.perf_counter()
        batches = backend.stream(request)
        try:
            first = await anext(batches)
        except StopAsyncIteration:
            first = []
        except BaseException:
            await _close(batches)
            raise
        record = context.record
        if record is not None:
            record.first_token = time.perf_counter()
            record.upstream_seconds = record.first_token - asked
        return self._relay(first, batches, backend, parsed, context, started)

    async def _relay(
        self,
        first: list[ChatCompletionChunk],
        batches: AsyncIterator[list[ChatCompletionChunk]],
        backend: Backend,
        parsed: ParsedCreateRequest,
        context: CallContext,
        started: float,
    ) -> AsyncIterator[bytes]:
        client_wants_usage = _client_wants_usage(parsed.body)
        # Assembling the whole completion is only needed to store it.
        accumulator = ChatCompletionAccumulator() if context.stores(parsed) else None
        seen = _StreamSummary()
        waited = 0.0  # on the backend, for the gateway-overhead metric
        try:
            batch: list[ChatCompletionChunk] | None = first
            while batch is not None:
                if accumulator is not None:
                    for chunk in batch:
                        accumulator.add(chunk)
                seen.note(batch)
                frame = _client_frame(batch, client_wants_usage)
                if frame:
                    yield frame
                asked = time.perf_counter()
                batch = await anext(batches, None)
                waited += time.perf_counter() - asked
        finally:
            await _close(batches)
        record = context.record
        if record is not None:
            record.upstream_seconds += waited
            record.usage = seen.usage
        if accumulator is not None:
            completion = accumulator.result()
            stored = _new_completion(completion, parsed, context, self._ids, started)
            await self._store.insert(await _redacted(stored, context))
        if self._meter is not None and seen.completion_id:  # a stream that ran to its end
            self._meter.record(
                context.project, context.api_key_id, seen.model, seen.created, seen.usage
            )
        _log_completion(
            self._lines,
            seen.completion_id,
            seen.model,
            seen.usage,
            backend,
            context,
            stream=True,
            started=started,
        )
        if context.trace is not None:
            context.trace.create_answered(seen.completion_id, parsed.params.model)
        yield DONE_EVENT


class _StreamSummary:
    """What the log line needs from a stream, without assembling the whole completion."""

    __slots__ = ("completion_id", "created", "model", "usage")

    def __init__(self) -> None:
        self.completion_id = ""
        self.model = ""
        self.created = 0
        self.usage: CompletionUsage | None = None

    def note(self, batch: list[ChatCompletionChunk]) -> None:
        if batch:
            last = batch[-1]
            self.completion_id, self.model = last["id"], last["model"]
            self.created = last["created"]
            self.usage = last.get("usage") or self.usage


async def _close(batches: AsyncIterator[Any]) -> None:
    aclose = getattr(batches, "aclose", None)
    if aclose is not None:
        await aclose()


def _client_wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _client_frame(batch: list[ChatCompletionChunk], client_wants_usage: bool) -> bytes:
    """The SSE frames of one batch; the usage the service asked for is hidden when unasked."""
    if client_wants_usage:
        return b"".join([encode_event(chunk) for chunk in batch])
    frames = []
    for chunk in batch:
        if "usage" in chunk:
            if not chunk["choices"] and chunk["usage"] is not None:
                continue
            chunk = {**chunk}
            chunk.pop("usage")
        frames.append(encode_event(chunk))
    return b"".join(frames)


def _new_completion(
    completion: ChatCompletion,
    parsed: ParsedCreateRequest,
    context: CallContext,
    ids: CompletionIdGenerator,
    started: float,
) -> NewCompletion:
    """The stored copy, with or without its content (as the project's policy says)."""
    params = parsed.params
    seed = params.seed if params.seed is not None else ids.seed()
    stored = build_stored_completion(
        completion, params, parsed.body, request_id=context.request_id, seed=seed
    )
    return NewCompletion(
        id=completion["id"],
        project=context.project,
        model=completion["model"],
        created=completion["created"],
        completion=stored,
        metadata=dict(params.metadata or {}),
        messages=parsed.body["messages"],
        latency_ms=round((time.perf_counter() - started) * 1000),
        keep_content=context.policy.store_content,
    )


async def _redacted(stored: NewCompletion, context: CallContext) -> NewCompletion:
    """The stored copy redacted as the project's policy says; the client's answer is
    another object, never changed. In a worker thread: a large request takes a while to
    scan, and the event loop serves everyone else meanwhile."""
    redactor = context.policy.redactor
    if redactor is None or not stored.keep_content:
        return stored

    def redact() -> NewCompletion:
        return dataclasses.replace(
            stored,
            completion=redactor.completion(stored.completion),
            messages=redactor.messages(stored.messages),
        )

    return await asyncio.to_thread(redact)


def _log_completion(
    lines: LineLog,
    completion_id: str,
    model: str,
    usage: CompletionUsage | None,
    backend: Backend,
    context: CallContext,
    *,
    stream: bool,
    started: float,
) -> None:
    lines.info(
        logger,
        COMPLETION_LINE,
        completion_id,
        context.request_id,
        context.project,
        model,
        backend.name,
        stream,
        usage["prompt_tokens"] if usage else None,
        usage["completion_tokens"] if usage else None,
        (time.perf_counter() - started) * 1000,
    )
