"""Counters and histograms without locks, for the metrics one event loop moves per request.

prometheus_client guards every value with a lock, since any thread may move it: a
histogram's observe takes two (its sum and its bucket), and a create observes four or five
(metrics.py). In one server process every per-request metric is moved on the event loop's
thread only, so these keep plain numbers instead, and a scrape reads them as they are. A
scrape, which runs in a worker thread, may see an observation in a histogram's count and
not yet in its sum; Prometheus tolerates that, as it does across the files of
prometheus_client's own multiprocess mode. Families with these are registered in the
process's registry like any other collector, and are exposed exactly as prometheus_client
exposes its own (tests/observability compare the two).

With several workers (`chatkeep serve --workers`), values live in prometheus_client's shared
files instead (metrics.py picks prometheus_client's own classes there).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

INF = float("inf")


class LoopCounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class LoopHistogramChild:
    __slots__ = ("_bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound (+Inf)
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        # A value equal to a bound counts in that bound's bucket (`le`).
        self.counts[bisect_left(self._bounds, amount)] += 1
        self.sum += amount


Child = TypeVar("Child", LoopCounterChild, LoopHistogramChild)


class _Family(Collector, Generic[Child]):
    """Children by label values, made on first use (as `prometheus_client`'s `.labels`)."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], Child] = {}
        registry.register(self)

    def describe(self) -> list[Metric]:
        """The family without samples: the registry refuses a name that is taken."""
        return list(self._empty())

    def _empty(self) -> Iterator[Metric]:
        raise NotImplementedError

    def labels(self, *values: str) -> Child:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: {len(self.labelnames)} label values expected")
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._new()
        return child

    def _new(self) -> Child:
        raise NotImplementedError

    def collect(self) -> Iterator[Metric]:
        raise NotImplementedError

    def _items(self) -> list[tuple[tuple[str, ...], Child]]:
        return list(self._children.items())  # a copy: the loop may add a child meanwhile


class LoopCounter(_Family[LoopCounterChild]):
    """A counter family (exposed as `<name>_total`, as prometheus_client's `Counter`)."""

    def _new(self) -> LoopCounterChild:
        return LoopCounterChild()

    def _empty(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self._items():
            family.add_metric(list(values), child.value)
        yield family


class LoopHistogram(_Family[LoopHistogramChild]):
    """A histogram family with fixed bucket bounds (+Inf added, as prometheus_client does)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self.bounds = tuple(float(bound) for bound in buckets if bound != INF)
        super().__init__(name, documentation, labelnames, registry)

    def _new(self) -> LoopHistogramChild:
        return LoopHistogramChild(self.bounds)

    def _empty(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        edges = [floatToGoString(bound) for bound in self.bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        for values, child in self._items():
            counts, total = list(child.counts), child.sum
            running, buckets = 0, []
            for edge, count in zip(edges, counts, strict=True):
                running += count
                buckets.append((edge, running))
            family.add_metric(list(values), buckets, total)
        yield family


class LoopGauge(Collector):
    """A gauge without labels, moved up and down (streams in flight)."""

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        self.value = 0.0
        registry.register(self)

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self.name, self.documentation, value=self.value)
