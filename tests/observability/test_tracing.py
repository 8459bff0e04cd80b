"""OpenTelemetry traces: spans captured with the SDK's in-memory exporter, through the
official client and the fault-injecting upstream. The GenAI attributes are there, message
content never is, and the caller's `traceparent` reaches the upstream as the client span's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from chatkeep.config import Settings
from chatkeep.http.app import create_app
from chatkeep.observability.tracing import Tracing, wants_tracing
from chatkeep.observability.tracing_middleware import TracingMiddleware
from tests.backends.fault_upstream import FaultUpstream, running_fault_upstream
from tests.conftest import API_KEY

pytestmark = pytest.mark.anyio

SECRET = "the-secret-prompt-7f3a"
USER = [{"role": "user", "content": f"please keep {SECRET} to yourself"}]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@dataclass
class Traced:
    client: openai.AsyncOpenAI
    upstream: FaultUpstream
    exporter: InMemorySpanExporter

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def one(self, kind: SpanKind) -> ReadableSpan:
        found = [span for span in self.spans() if span.kind == kind]
        assert len(found) == 1, found
        return found[0]


@asynccontextmanager
async def traced(tmp_path: Path, database_url: str) -> AsyncIterator[Traced]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with running_fault_upstream() as upstream:
        config = tmp_path / "chatkeep.toml"
        config.write_text(
            f'default = "fault"\n[upstreams.fault]\nbase_url = "{upstream.base_url}"\n'
            "read_timeout = 2\n"
        )
        settings = Settings(database_url=database_url, config=config, purge_interval_seconds=0)
        app = create_app(settings, tracing=Tracing(provider))
        async with app.router.lifespan_context(app):
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://ck") as http:
                client = openai.AsyncOpenAI(
                    api_key=API_KEY, base_url="http://ck/v1", http_client=http, max_retries=0
                )
                yield Traced(client, upstream, exporter)


def _no_content(spans: list[ReadableSpan]) -> None:
    for span in spans:
        shown = repr((span.name, dict(span.attributes or {}), span.events, span.status))
        assert SECRET not in shown, shown


async def test_a_stored_create_has_a_server_and_a_client_span_with_genai_attributes(
    tmp_path: Path, database_url: str
) -> None:
    async with traced(tmp_path, database_url) as t:
        completion = await t.client.chat.completions.create(
            model="ok",
            messages=USER,
            store=True,
            temperature=0.25,
            top_p=0.5,
            max_completion_tokens=64,
            seed=7,
            extra_headers={"traceparent": PARENT},
        )
        server, client = t.one(SpanKind.SERVER), t.one(SpanKind.CLIENT)
        assert server.name == "POST /v1/chat/completions"
        assert client.name == "chat ok"
        # The caller's trace continues: same trace, the server span under the caller's span.
        assert format(server.context.trace_id, "032x") == TRACE_ID
        assert server.parent is not None and format(server.parent.span_id, "016x") == PARENT[36:52]
        assert client.parent is not None and client.parent.span_id == server.context.span_id
        attributes = dict(client.attributes or {})
        assert attributes == {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "fault",
            "gen_ai.request.model": "ok",
            "gen_ai.request.stream": False,
            "gen_ai.request.temperature": 0.25,
            "gen_ai.request.top_p": 0.5,
            "gen_ai.request.max_tokens": 64,
            "gen_ai.request.seed": 7,
            "gen_ai.response.id": completion.id,
            "gen_ai.response.model": "ok-2024",
            "gen_ai.response.finish_reasons": ("tool_calls",),
            "gen_ai.usage.input_tokens": 5,
            "gen_ai.usage.output_tokens": 3,
            "chatkeep.project": "default",
            "chatkeep.stored": True,
        }
        server_attributes = dict(server.attributes or {})
        assert server_attributes["gen_ai.response.id"] == completion.id  # the stored copy's
        assert server_attributes["chatkeep.stored"] is True
        assert server_attributes["http.route"] == "/v1/chat/completions"
        assert server_attributes["http.response.status_code"] == 200
        assert server_attributes["chatkeep.project"] == "default"
        # The stored completion is the one the trace names.
        assert (await t.client.chat.completions.retrieve(completion.id)).id == completion.id
        _no_content(t.spans())


async def test_the_upstream_receives_the_client_spans_traceparent(
    tmp_path: Path, database_url: str
) -> None:
    async with traced(tmp_path, database_url) as t:
        await t.client.chat.completions.create(
            model="ok", messages=USER, extra_headers={"traceparent": PARENT}
        )
        client = t.one(SpanKind.CLIENT)
        sent = {k.lower(): v for k, v in t.upstream.headers[-1].items()}["traceparent"]
        assert sent == f"00-{TRACE_ID}-{client.context.span_id:016x}-01"


async def test_a_streamed_create_notes_its_finish_reasons_and_usage(
    tmp_path: Path, database_url: str
) -> None:
    async with traced(tmp_path, database_url) as t:
        stream = await t.client.chat.completions.create(
            model="ok", messages=USER, stream=True, stream_options={"include_usage": True}
        )
        ids = {chunk.id async for chunk in stream}
        client = dict(t.one(SpanKind.CLIENT).attributes or {})
        assert client["gen_ai.request.stream"] is True
        assert client["gen_ai.response.finish_reasons"] == ("stop",)
        assert client["gen_ai.usage.output_tokens"] == 3
        assert client["chatkeep.stored"] is False
        assert {client["gen_ai.response.id"]} == ids
        assert "traceparent" in {name.lower() for name in t.upstream.headers[-1]}
        _no_content(t.spans())


async def test_a_failed_upstream_call_marks_both_spans(tmp_path: Path, database_url: str) -> None:
    async with traced(tmp_path, database_url) as t:
        with pytest.raises(openai.InternalServerError):
            await t.client.chat.completions.create(model="status-500", messages=USER)
        server, client = t.one(SpanKind.SERVER), t.one(SpanKind.CLIENT)
        assert client.status.status_code == StatusCode.ERROR
        assert dict(client.attributes or {})["error.type"] == "UpstreamError"
        assert dict(server.attributes or {})["http.response.status_code"] == 502
        assert server.status.status_code == StatusCode.ERROR
        _no_content(t.spans())


async def test_other_routes_get_a_server_span_named_by_their_template(
    tmp_path: Path, database_url: str
) -> None:
    async with traced(tmp_path, database_url) as t:
        with pytest.raises(openai.NotFoundError):
            await t.client.chat.completions.retrieve("chatcmpl-nothing-here")
        server = t.one(SpanKind.SERVER)
        assert server.name == "GET /v1/chat/completions/{completion_id}"
        assert "gen_ai.operation.name" not in (server.attributes or {})


# --- opting in ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "chatkeep"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, True),
    ],
)
def test_tracing_is_opt_in(environ: dict[str, str], wanted: bool) -> None:
    assert wants_tracing(environ) is wanted
    tracing = Tracing.from_environment(environ)
    assert (tracing is not None) is wanted


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_TRACES_EXPORTER": "zipkin"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "udp"},
    ],
)
def test_an_exporter_chatkeep_does_not_know_is_refused_at_start(environ: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="chatkeep knows"):
        Tracing.from_environment(environ)


def test_off_there_is_no_tracing_middleware(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    app = create_app(Settings(database_url=database_url))
    assert app.state.chatkeep.tracing is None
    assert TracingMiddleware not in [m.cls for m in app.user_middleware]


@pytest.fixture
def otlp_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    yield


def test_on_from_the_environment(otlp_environment: None, database_url: str) -> None:
    app = create_app(Settings(database_url=database_url))
    assert isinstance(app.state.chatkeep.tracing, Tracing)
    assert TracingMiddleware in [m.cls for m in app.user_middleware]
