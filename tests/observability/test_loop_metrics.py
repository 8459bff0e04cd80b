"""The lock-free families expose exactly what prometheus_client's own would."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from chatkeep.observability.loop_metrics import LoopCounter, LoopGauge, LoopHistogram

BUCKETS = (0.001, 0.01, 0.1, 1.0)
# Below, on, between and above the bounds, and negative.
VALUES = (0.0005, 0.001, 0.001, 0.05, 0.1, 0.7, 1.0, 3.5, -2.0)


def test_histograms_and_counters_are_exposed_as_prometheus_client_exposes_them() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop_histogram = LoopHistogram("h_seconds", "doc", ["a", "b"], buckets=BUCKETS, registry=ours)
    histogram = Histogram("h_seconds", "doc", ["a", "b"], buckets=BUCKETS, registry=theirs)
    loop_counter = LoopCounter("c", "doc", ["route"], ours)
    counter = Counter("c", "doc", ["route"], registry=theirs)
    loop_gauge = LoopGauge("g", "doc", ours)
    gauge = Gauge("g", "doc", registry=theirs)
    for labels in (("x", "1"), ("y", "2")):
        for value in VALUES:
            loop_histogram.labels(*labels).observe(value)
            histogram.labels(*labels).observe(value)
    for route, times in (("/a", 3), ("/b", 1)):
        for _ in range(times):
            loop_counter.labels(route).inc()
            counter.labels(route).inc()
    loop_gauge.inc(), loop_gauge.inc(), loop_gauge.dec()
    gauge.inc(), gauge.inc(), gauge.dec()

    def without_created(text: bytes) -> list[str]:  # prometheus_client adds `_created` times
        return [line for line in text.decode().splitlines() if "_created" not in line]

    assert without_created(generate_latest(ours)) == without_created(generate_latest(theirs))


def test_a_wrong_number_of_label_values_is_refused() -> None:
    family = LoopCounter("c", "doc", ["route", "method"], CollectorRegistry())
    with pytest.raises(ValueError, match="2 label values"):
        family.labels("/a")


def test_a_name_taken_in_the_registry_is_refused_as_prometheus_client_refuses_it() -> None:
    registry = CollectorRegistry()
    LoopCounter("c", "doc", [], registry)
    Histogram("h", "doc", registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        LoopCounter("c", "doc", [], registry)
    with pytest.raises(ValueError, match="Duplicated"):
        LoopHistogram("h", "doc", [], buckets=BUCKETS, registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        Gauge("c_total", "doc", registry=registry)
