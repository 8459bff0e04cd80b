"""OpenTelemetry traces, opt-in: a server span per request, a `chat {model}` client span per
upstream call, with the GenAI semantic conventions' attributes and never message content.

Whether to trace is decided once, at start (`Tracing.from_environment`, the standard
`OTEL_*` variables); off, there is no `Tracing` at all, and the hot path's only cost is a
`None` test. The SDK's exporter, sampler, resource and batch settings read their own
`OTEL_*` variables. The provider is the app's own, never the process-wide global one.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context

from chatkeep import __version__
from chatkeep.errors import ChatkeepError, UpstreamRejectedError

if TYPE_CHECKING:
    from chatkeep.backends.base import BackendRequest
    from chatkeep.protocol.responses import ChatCompletion, ChatCompletionChunk, CompletionUsage

OPERATION = "chat"
CANCELLED = "cancelled"
_TRUE = frozenset({"true", "1", "yes"})


def wants_tracing(environ: Mapping[str, str]) -> bool:
    """Tracing is on when an OTLP endpoint or a traces exporter other than `none` is named,
    and the SDK is not disabled (`OTEL_SDK_DISABLED=true`)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return any(environ.get(name, "").strip() for name in endpoints)


def _exporter(environ: Mapping[str, str]) -> Callable[[], SpanExporter]:
    """How to make the exporter the variables name: `console`, or OTLP over HTTP (the
    default) or gRPC; a `ValueError` for a name chatkeep does not know, at start."""
    name = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if name == "console":
        return ConsoleSpanExporter
    if name != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER={name!r}: chatkeep knows otlp, console, none.")
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if protocol.strip() == "grpc":
        try:  # an optional extra: imported by name, so that type checks need it neither
            grpc = importlib.import_module("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
        except ImportError:
            raise ValueError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the gRPC exporter: "
                "pip install 'chatkeep[otlp-grpc]'."
            ) from None
        exporter: Callable[[], SpanExporter] = grpc.OTLPSpanExporter
        return exporter
    if protocol.strip() not in ("http/protobuf", ""):
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: chatkeep knows http/protobuf and grpc."
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HTTPSpanExporter,
    )

    return HTTPSpanExporter


class Tracing:
    """The app's tracer. With an `exporter`, `start` (in the process that serves, after
    any fork) adds the batch processor that sends spans, and `close` flushes it."""

    def __init__(
        self, provider: TracerProvider, *, exporter: Callable[[], SpanExporter] | None = None
    ) -> None:
        self._provider = provider
        self._exporter = exporter
        self._started = False
        self.tracer: Tracer = provider.get_tracer("chatkeep", __version__)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Tracing | None:
        """The tracing the `OTEL_*` variables ask for, or None (the default: off)."""
        if not wants_tracing(environ):
            return None
        resource = Resource.create({SERVICE_VERSION: __version__})
        if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            resource = resource.merge(Resource({SERVICE_NAME: "chatkeep"}))
        return cls(TracerProvider(resource=resource), exporter=_exporter(environ))

    def start(self) -> None:
        if self._exporter is not None and not self._started:
            self._provider.add_span_processor(BatchSpanProcessor(self._exporter()))
            self._started = True

    def close(self) -> None:
        if self._started:
            self._provider.shutdown()
            self._started = False

    def server_span(
        self, name: str, headers: Mapping[str, str], attributes: dict[str, Any]
    ) -> Span:
        """A request's span, the child of the caller's `traceparent` when it sent one."""
        context = propagate.extract(headers) if headers else None
        return self.tracer.start_span(
            name, context=context, kind=SpanKind.SERVER, attributes=attributes
        )


class RequestTrace:
    """One request's server span, handed down the create path to its upstream call, with
    the caller's project and whether its completion is stored (set by the service)."""

    __slots__ = ("project", "span", "stored", "tracer")

    def __init__(self, tracer: Tracer, span: Span) -> None:
        self.tracer = tracer
        self.span = span
        self.project = ""
        self.stored = False

    def create_answered(self, completion_id: str, model: str) -> None:
        """The create's GenAI facts on the server span (the id links to the stored copy)."""
        self.span.set_attributes(
            {
                "gen_ai.operation.name": OPERATION,
                "gen_ai.request.model": model,
                "gen_ai.response.id": completion_id,
                "chatkeep.project": self.project,
                "chatkeep.stored": self.stored,
            }
        )

    def upstream_call(
        self, upstream: str, body: Mapping[str, Any], request: BackendRequest
    ) -> UpstreamCallSpan:
        """A `chat {model}` client span for one call to `upstream`, sent `body` (whose
        `model` is the name the upstream is asked for)."""
        params = request.params
        model = str(body.get("model"))
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.provider.name": upstream,
            "gen_ai.request.model": model,
            "gen_ai.request.stream": bool(params.stream),
            "gen_ai.response.id": request.completion_id,
            "chatkeep.project": self.project,
            "chatkeep.stored": self.stored,
        }
        max_tokens = params.max_completion_tokens or params.max_tokens
        for name, value in (
            ("gen_ai.request.temperature", params.temperature),
            ("gen_ai.request.top_p", params.top_p),
            ("gen_ai.request.max_tokens", max_tokens),
            ("gen_ai.request.seed", params.seed),
        ):
            if value is not None:
                attributes[name] = value
        span = self.tracer.start_span(
            f"{OPERATION} {model}",
            context=set_span_in_context(self.span),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        return UpstreamCallSpan(span)


class UpstreamCallSpan:
    """The client span of one upstream call, and what it learns from the answer."""

    __slots__ = ("_finish_reasons", "_model", "_usage", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self._finish_reasons: list[str] = []
        self._model = ""
        self._usage: CompletionUsage | None = None

    def headers(self) -> dict[str, str]:
        """`traceparent` (and `tracestate`) for the upstream request: this span's."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=set_span_in_context(self.span))
        return carrier

    async def around(self, answer: Awaitable[ChatCompletion]) -> ChatCompletion:
        """Await a whole answer, ending the span with what it says or how it failed."""
        try:
            completion = await answer
        except BaseException as error:
            self.failed(error)
            raise
        self.answered(completion)
        return completion

    async def around_stream(
        self, batches: AsyncGenerator[list[ChatCompletionChunk]]
    ) -> AsyncGenerator[list[ChatCompletionChunk]]:
        """Relay a streamed answer, noting each batch; the span ends with the stream."""
        try:
            async with aclosing(batches):
                async for batch in batches:
                    self.note_chunks(batch)
                    yield batch
        except BaseException as error:
            self.failed(error)
            raise
        self.end()

    def note_chunks(self, batch: Sequence[ChatCompletionChunk]) -> None:
        for chunk in batch:
            self._note(chunk.get("model"), chunk.get("choices", ()), chunk.get("usage"))

    def answered(self, completion: Mapping[str, Any]) -> None:
        self._note(completion.get("model"), completion.get("choices", ()), completion.get("usage"))
        self.end()

    def _note(self, model: Any, choices: Any, usage: Any) -> None:
        if model:
            self._model = str(model)
        for choice in choices:
            reason = choice.get("finish_reason") if isinstance(choice, dict) else None
            if reason:
                self._finish_reasons.append(str(reason))
        if usage:
            self._usage = usage

    def end(self) -> None:
        """The call is over and answered: its response facts, then the span's end."""
        attributes: dict[str, Any] = {"gen_ai.response.finish_reasons": self._finish_reasons}
        if self._model:
            attributes["gen_ai.response.model"] = self._model
        usage = self._usage
        if usage:
            attributes["gen_ai.usage.input_tokens"] = usage.get("prompt_tokens", 0)
            attributes["gen_ai.usage.output_tokens"] = usage.get("completion_tokens", 0)
        self.span.set_attributes(attributes)
        self.span.end()

    def failed(self, error: BaseException) -> None:
        record_error(self.span, error)
        self.span.end()


def error_type(error: BaseException) -> str:
    """`error.type`: the error's class, or the status an upstream rejected the call with;
    `cancelled` when the client went away."""
    if isinstance(error, UpstreamRejectedError):
        return str(error.status_code)
    if isinstance(error, GeneratorExit | asyncio.CancelledError):
        return CANCELLED
    return type(error).__name__


def record_error(span: Span, error: BaseException) -> None:
    """Mark a span failed. Only the error's class and status: its message can quote input."""
    span.set_attribute("error.type", error_type(error))
    description = None
    if isinstance(error, ChatkeepError):
        description = f"{error.status_code} {error.error_type}"
    span.set_status(Status(StatusCode.ERROR, description))
