"""Observability: Prometheus metrics (`metrics`, `workers_metrics` for several processes)
and opt-in OpenTelemetry traces (`tracing`, `tracing_middleware`).

Both are built once per app by `create_app` and handed down; the hot path calls them through
a few cheap, pre-bound methods (docs/observability.md lists what each costs).
"""
