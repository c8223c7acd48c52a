"""Prometheus metrics for a NOC. One registry per daemon, so tests can run several."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# *_created series double the scrape size and tell a NOC nothing here.
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Children:
    """`metric.labels(*values)`, looked up once per label set.

    labels() validates and joins its values on every call (~2 µs), and the hot path
    calls it several times per lookup; the children it returns never change.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[object, tuple[str, ...]], Any] = {}

    def __call__(self, metric: Counter | Gauge | Histogram, *values: str) -> Any:
        key = (metric, values)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = metric.labels(*values)
        return found


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.child = Children()
        r = self.registry = CollectorRegistry()
        self.lookups = Counter(
            "hlrd_lookups", "Lookups by provider and outcome", ["provider", "outcome"], registry=r
        )
        self.lookup_seconds = Histogram(
            "hlrd_lookup_duration_seconds",
            "Lookup latency, request to result",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.binds = Gauge(
            "hlrd_upstream_binds", "Upstream binds by state", ["provider", "state"], registry=r
        )
        self.in_flight = Gauge(
            "hlrd_upstream_window_in_flight",
            "Requests awaiting an answer in the upstream windows",
            ["provider"],
            registry=r,
        )
        self.queued = Gauge(
            "hlrd_upstream_queued", "Lookups waiting for a rate slot", ["provider"], registry=r
        )
        self.rate = Gauge(
            "hlrd_upstream_rate_tps", "Current send rate limit", ["provider"], registry=r
        )
        self.throttled = Counter(
            "hlrd_upstream_throttled", "ESME_RTHROTTLED answers", ["provider"], registry=r
        )
        self.retries = Counter(
            "hlrd_upstream_retries", "Lookups resent after a link loss", ["provider"], registry=r
        )
        self.decisions = Counter(
            "hlrd_decisions",
            "Call decisions by verdict and reason",
            ["verdict", "reason"],
            registry=r,
        )
        self.rejected_numbers = Counter(
            "hlrd_rejected_numbers", "Numbers refused before lookup", ["problem"], registry=r
        )
        self.receipts_discarded = Counter(
            "hlrd_upstream_receipts_discarded",
            "Upstream receipts not taken as any lookup's answer, by reason",
            ["provider", "reason"],
            registry=r,
        )
        self.connections = Gauge(
            "hlrd_client_connections", "Open client connections", ["frontend"], registry=r
        )
        self.connections_refused = Counter(
            "hlrd_client_connections_refused",
            "Client connections refused at accept, by reason (total, per_ip)",
            ["frontend", "reason"],
            registry=r,
        )
        self.connections_closed = Counter(
            "hlrd_client_connections_closed",
            "Client connections closed by hlrd for misbehaviour, by reason",
            ["frontend", "reason"],
            registry=r,
        )

    def watch(self, gauge: Gauge, labels: tuple[str, ...], fn: Callable[[], float]) -> None:
        gauge.labels(*labels).set_function(fn)

    def render(self) -> bytes:
        return generate_latest(self.registry)
