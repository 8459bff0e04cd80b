"""Prometheus metrics of one server process: what is counted, and the cheap calls that count it.

Names and labels follow Prometheus conventions and, where one exists, the OpenTelemetry
semantic conventions (GenAI and HTTP, version `SEMCONV_VERSION`, translated as Prometheus
does: dots become underscores, seconds get `_seconds`): their names, attributes and advised
histogram buckets. The rest is chatkeep's own (`chatkeep_*`). docs/observability.md lists them.

Cost on the hot path (measured in docs/observability.md): a create does one dictionary
lookup for its pre-bound label children, cached per (model, backend, stream[, project]),
then one observe per histogram (duration, overhead, two token counts, time to first token
when streamed) and one counter increment for the HTTP request. Nothing is counted per chunk.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from chatkeep.observability.loop_metrics import LoopCounter, LoopGauge, LoopHistogram

if TYPE_CHECKING:
    from chatkeep.protocol.responses import CompletionUsage

SEMCONV_VERSION = "1.37.0"
# Text format 0.0.4, which every Prometheus reads (the names here need none of 1.0.0's escaping).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# The semantic conventions' advised buckets (gen_ai.server.request.duration,
# gen_ai.server.time_to_first_token, gen_ai.client.token.usage).
DURATION_BUCKETS = tuple(0.01 * 2**power for power in range(14))  # 0.01, 0.02, ... 81.92
TTFT_BUCKETS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25)
TTFT_BUCKETS += (0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TOKEN_BUCKETS = tuple(4.0**power for power in range(14))  # 1, 4, 16, ... 67108864
# chatkeep's own: its overhead is counted in tens of microseconds, commits in milliseconds.
OVERHEAD_BUCKETS: tuple[float, ...] = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025)
OVERHEAD_BUCKETS += (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
COMMIT_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
COMMIT_BUCKETS += (0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 10000)

# Methods are named as sent; any other is `_OTHER`, as the HTTP conventions say.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
# Clients name the models, and the echo model or a pattern route answers any name: past
# this many label sets, a new model name is counted as `_OTHER` (bounded cardinality).
MAX_MODEL_SERIES = 500
OTHER = "_OTHER"
UNMATCHED_ROUTE = "_UNMATCHED"
UPSTREAM_ERROR_KINDS = (
    "timeout",
    "connection",
    "malformed",
    "too_large",
    "error_event",
    "4xx",
    "5xx",
)


_Child = TypeVar("_Child", covariant=True)

# (model, backend, stream, project or "" when projects are not a label)
_CreateKey = tuple[str, str, bool, str]


def route_template(scope: Mapping[str, Any]) -> str | None:
    """The matched route's template (`/v1/chat/completions/{completion_id}`), if any."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    template = scope.get("state", {}).get("route")
    return template if isinstance(template, str) else None


class CreateRecord:
    """What one create call noted on its way: when it began, which backend answered, how
    long chatkeep waited on that backend, when the first chunk came, and the usage."""

    __slots__ = ("backend", "first_token", "started", "upstream_seconds", "usage")

    def __init__(self, started: float) -> None:
        self.started = started
        self.backend = ""
        self.upstream_seconds = 0.0
        self.first_token = 0.0
        self.usage: CompletionUsage | None = None


class _Observed(Protocol):
    def observe(self, amount: float) -> None: ...


class _Counted(Protocol):
    def inc(self, amount: float = 1.0) -> None: ...


class _Labelled(Protocol[_Child]):
    def labels(self, *values: str) -> _Child: ...


_CounterKind = Callable[[str, str, list[str]], _Labelled[_Counted]]
_HistogramKind = Callable[[str, str, list[str], tuple[float, ...]], _Labelled[_Observed]]


def _per_request_kinds(registry: CollectorRegistry | None) -> tuple[_CounterKind, _HistogramKind]:
    """How the per-request families are made: without locks in one process
    (`loop_metrics`), else as prometheus_client's, in the workers' shared files."""
    if registry is not None:
        return (
            lambda name, doc, labels: LoopCounter(name, doc, labels, registry),
            lambda name, doc, labels, buckets: LoopHistogram(
                name, doc, labels, buckets=buckets, registry=registry
            ),
        )
    return (
        lambda name, doc, labels: Counter(name, doc, labels, registry=None),
        lambda name, doc, labels, buckets: Histogram(
            name, doc, labels, buckets=buckets, registry=None
        ),
    )


@dataclass(frozen=True, slots=True)
class _CreateSeries:
    """The label children of one (model, backend, stream[, project]), bound once."""

    duration: _Observed
    overhead: _Observed
    first_token: _Observed
    input_tokens: _Observed
    output_tokens: _Observed


class Metrics:
    """The metrics of one app. Single-process: its own registry. With `multiprocess_dir`
    (`chatkeep serve --workers`), values live in that directory's files (the process must
    use prometheus_client's multiprocess values: `workers_metrics`) and a scrape adds
    up every worker's."""

    def __init__(
        self, *, project_label: bool = False, multiprocess_dir: Path | None = None
    ) -> None:
        self.project_label = project_label
        self._multiprocess_dir = multiprocess_dir
        self._registry = CollectorRegistry() if multiprocess_dir is None else None
        registry = self._registry
        genai = ["gen_ai_operation_name", "gen_ai_request_model", "backend"]
        genai += ["gen_ai_request_stream"] + (["project"] if project_label else [])
        # What every request moves, on the event loop: lock-free in one process.
        counter, histogram = _per_request_kinds(registry)
        self.http_requests = counter(
            "chatkeep_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["http_route", "http_request_method", "http_response_status_code"],
        )
        self.request_duration = histogram(
            "gen_ai_server_request_duration_seconds",
            "Chat completion creates, from request to last byte, by model, backend and stream.",
            [*genai, "error_type"],
            DURATION_BUCKETS,
        )
        self.first_token = histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Streamed creates: from request to the first chunk from the backend.",
            genai,
            TTFT_BUCKETS,
        )
        self.overhead = histogram(
            "chatkeep_gateway_overhead_seconds",
            "Time a create spent in chatkeep itself: its duration less the waits on its backend.",
            genai,
            OVERHEAD_BUCKETS,
        )
        self.token_usage = histogram(
            "gen_ai_client_token_usage",
            "Tokens per create, input and output, as the backend reported them.",
            [*genai, "gen_ai_token_type"],
            TOKEN_BUCKETS,
        )
        self.upstream_errors = Counter(
            "chatkeep_upstream_errors",
            "Failed calls to upstream model servers, by upstream and kind.",
            ["upstream", "kind"],
            registry=registry,
        )
        self.streams_open: Gauge | LoopGauge = (
            LoopGauge("chatkeep_streams_open", "Streamed creates in flight.", registry)
            if registry is not None
            else Gauge(
                "chatkeep_streams_open",
                "Streamed creates in flight.",
                registry=None,
                multiprocess_mode="livesum",
            )
        )
        self.commit_duration = Histogram(
            "chatkeep_store_commit_duration_seconds",
            "Store commits of stored completions (one per group-committed batch).",
            ["store"],
            buckets=COMMIT_BUCKETS,
            registry=registry,
        )
        self.commit_batch = Histogram(
            "chatkeep_store_commit_batch_size",
            "Stored completions committed together in one transaction.",
            ["store"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.purge_runs = Counter(
            "chatkeep_purge_runs",
            "Retention purges, by outcome (done, skipped: another server held the lock, failed).",
            ["outcome"],
            registry=registry,
        )
        self.purged_rows = Counter(
            "chatkeep_purged_rows",
            "Rows purged: `content` (completions that lost their content) and `records` "
            "(completions removed).",
            ["kind"],
            registry=registry,
        )
        self._http: dict[tuple[str, str, int], _Counted] = {}
        self._creates: dict[_CreateKey, _CreateSeries] = {}
        self._failed: set[_CreateKey] = set()  # label sets seen failing only, in the bound too

    # --- the hot path ------------------------------------------------------------------

    def http_request(self, route: str, method: str, status: int) -> None:
        """One HTTP request answered (status 0: the client left before any answer)."""
        key = (route, method, status)
        child = self._http.get(key)
        if child is None:
            child = self._http_child(key)
        child.inc()

    def create_done(self, record: CreateRecord, model: str, stream: bool, project: str) -> None:
        """A create answered whole: its duration, overhead, first token and tokens."""
        series = self._series(model, record.backend, stream, project)
        ended = time.perf_counter()
        took = ended - record.started
        series.duration.observe(took)
        series.overhead.observe(took - record.upstream_seconds)
        if stream and record.first_token:
            series.first_token.observe(record.first_token - record.started)
        usage = record.usage
        if usage:
            series.input_tokens.observe(usage["prompt_tokens"])
            series.output_tokens.observe(usage["completion_tokens"])

    def create_failed(
        self, record: CreateRecord, model: str, stream: bool, project: str, error_type: str
    ) -> None:
        """A create that failed once its backend was chosen: its duration, by error type."""
        key = self._bounded(self._key(model, record.backend, stream, project))
        self._failed.add(key)
        labels = self._labels(key)
        self.request_duration.labels(*labels, error_type).observe(
            time.perf_counter() - record.started
        )

    # --- elsewhere ---------------------------------------------------------------------

    def upstream_error(self, upstream: str, kind: str) -> None:
        self.upstream_errors.labels(upstream, kind).inc()

    def commit_observer(self, store: str) -> Callable[[float, int], None]:
        """The call a store's writer makes after each commit: (seconds, completions)."""
        duration = self.commit_duration.labels(store)
        batch = self.commit_batch.labels(store)

        def observe(seconds: float, size: int) -> None:
            duration.observe(seconds)
            batch.observe(size)

        return observe

    def purge_done(self, content: int, records: int) -> None:
        self.purge_runs.labels("done").inc()
        self.purged_rows.labels("content").inc(content)
        self.purged_rows.labels("records").inc(records)

    def purge_skipped(self) -> None:
        self.purge_runs.labels("skipped").inc()

    def purge_failed(self) -> None:
        self.purge_runs.labels("failed").inc()

    def exposition(self) -> bytes:
        """The text `/metrics` answers: this process's, or every worker's added up."""
        if self._registry is not None:
            return generate_latest(self._registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self._multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    # --- label children ----------------------------------------------------------------

    def _http_child(self, key: tuple[str, str, int]) -> _Counted:
        route, method, status = key
        shown = method if method in _METHODS else OTHER
        child = self.http_requests.labels(route, shown, str(status))
        if len(self._http) < MAX_MODEL_SERIES:  # routes are few; the bound is for methods
            self._http[key] = child
        return child

    def _bounded(self, key: _CreateKey) -> _CreateKey:
        """The key itself, or its model counted as `_OTHER` once the series are many."""
        if key in self._creates or key in self._failed:
            return key
        if len(self._creates) + len(self._failed) < MAX_MODEL_SERIES:
            return key
        return (OTHER, key[1], key[2], key[3])

    def _labels(self, key: _CreateKey) -> list[str]:
        model, backend, stream, project = key
        labels = ["chat", model, backend, "true" if stream else "false"]
        if self.project_label:
            labels.append(project)
        return labels

    def _key(self, model: str, backend: str, stream: bool, project: str) -> _CreateKey:
        return (model, backend, stream, project if self.project_label else "")

    def _series(self, model: str, backend: str, stream: bool, project: str) -> _CreateSeries:
        key = (model, backend, stream, project if self.project_label else "")
        series = self._creates.get(key)  # the hot path: one lookup, then observes
        if series is None:
            series = self._new_series(key)
        return series

    def _new_series(self, key: _CreateKey) -> _CreateSeries:
        key = self._bounded(key)
        series = self._creates.get(key)  # the `_OTHER` series, made already
        if series is not None:
            return series
        labels = self._labels(key)
        series = _CreateSeries(
            duration=self.request_duration.labels(*labels, ""),
            overhead=self.overhead.labels(*labels),
            first_token=self.first_token.labels(*labels),
            input_tokens=self.token_usage.labels(*labels, "input"),
            output_tokens=self.token_usage.labels(*labels, "output"),
        )
        self._creates[key] = series
        return series
