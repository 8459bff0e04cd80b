"""What the metrics and tracing hooks cost per request, measured with `timeit` (run by hand).

    python bench/observability.py

It times the calls the hot path makes, as it makes them: the HTTP request counter, a
create's end (`create_done`: duration, overhead, two token counts; the first token too when
streamed), the streams-open gauge, and the service's clock readings; in one process and in
prometheus_client's multiprocess mode (`serve --workers`); and, with tracing on, a request's
spans (server span, client span with its attributes, traceparent injection) for scale. With
tracing off the hot path makes no tracer call at all (the middleware is not in the stack).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

from chatkeep.observability.metrics import CreateRecord, Metrics

NUMBER = 100_000
USAGE = {"prompt_tokens": 12, "completion_tokens": 80, "total_tokens": 92}


def _us(statement: object, number: int = NUMBER) -> float:
    best = min(timeit.repeat(statement, number=number, repeat=5))  # type: ignore[arg-type]
    return best / number * 1e6


def metrics_costs(metrics: Metrics) -> dict[str, float]:
    def plain() -> None:
        record = CreateRecord(time.perf_counter())
        record.backend = "vllm"
        record.upstream_seconds = 0.0001
        record.usage = USAGE  # type: ignore[assignment]
        metrics.create_done(record, "llama-3", False, "default")
        metrics.http_request("/v1/chat/completions", "POST", 200)

    def streamed() -> None:
        record = CreateRecord(time.perf_counter())
        record.backend = "vllm"
        record.first_token = time.perf_counter()
        record.usage = USAGE  # type: ignore[assignment]
        metrics.streams_open.inc()
        metrics.streams_open.dec()
        metrics.create_done(record, "llama-3", True, "default")
        metrics.http_request("/v1/chat/completions", "POST", 200)

    def clock() -> None:  # what the service adds: two readings around the backend's answer
        asked = time.perf_counter()
        _ = time.perf_counter() - asked

    return {
        "plain create (record, create_done, http counter)": _us(plain),
        "streamed create (+ first token, streams-open gauge)": _us(streamed),
        "service clock readings per backend wait": _us(clock),
    }


def tracing_costs() -> dict[str, float]:
    from opentelemetry.sdk.trace import TracerProvider

    from chatkeep.backends.base import BackendRequest
    from chatkeep.observability.tracing import RequestTrace, Tracing
    from chatkeep.protocol.requests import parse_create_request

    tracing = Tracing(TracerProvider())  # spans made and ended, none exported
    parsed = parse_create_request(
        b'{"model": "llama-3", "messages": [{"role": "user", "content": "hi"}]}'
    )
    body = parsed.body
    completion = {"model": "llama-3", "choices": [{"finish_reason": "stop"}], "usage": USAGE}

    def request_spans() -> None:
        span = tracing.server_span("POST", {}, {"http.request.method": "POST"})
        trace = RequestTrace(tracing.tracer, span)
        request = BackendRequest(parsed.params, body, "chatcmpl-x", 0, False, trace)
        call = trace.upstream_call("vllm", body, request)
        call.headers()
        call.answered(completion)
        trace.create_answered("chatcmpl-x", "llama-3")
        span.end()

    return {"tracing on: a create's two spans": _us(request_spans, 20_000)}


def main() -> None:
    if sys.argv[1:] == ["--multiprocess"]:
        from chatkeep.observability.workers_metrics import use_multiprocess_values

        directory = Path(tempfile.mkdtemp(prefix="chatkeep-bench-metrics-"))
        use_multiprocess_values(directory)
        for name, us in metrics_costs(Metrics(multiprocess_dir=directory)).items():
            print(f"| {name}, --workers (multiprocess files) | {us:.2f} µs |")
        return
    print("| hook | per request |\n| --- | --- |")
    for name, us in metrics_costs(Metrics()).items():
        print(f"| {name} | {us:.2f} µs |")
    # A fresh process: the multiprocess value class is chosen once per process.
    subprocess.run([sys.executable, __file__, "--multiprocess"], check=True)
    for name, us in tracing_costs().items():
        print(f"| {name} | {us:.2f} µs |")


if __name__ == "__main__":
    main()
