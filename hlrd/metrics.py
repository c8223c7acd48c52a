"""Prometheus metrics for a NOC. One registry per daemon, so tests can run several.

Every labelled counter gets its series at 0 when the daemon starts, for every label
set it can take (providers, accounts, routes and reasons known from the config and
the code): a series that appears with its first event loses that event to
Prometheus' increase(), and an alert on "rate > 0" never sees the first burst.
The modules that own a label set create its series (`Metrics.touch`).
"""

from __future__ import annotations

import platform
from bisect import bisect_left
from collections.abc import Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
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
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from .domain.decision import GATE_REASONS, KNOWN_REASONS
from .domain.numbers import NumberProblem

# *_created series double the scrape size and tell a NOC nothing here.
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def hlrd_version() -> str:
    try:
        return version("hlrd")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


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


class PendingCounter:
    """A counter child's increments kept as a plain number until the next scrape.

    A child's inc() validates and takes a lock (~1.5 µs); a cached answer counts three
    or four things and costs ~100 µs in all. Only for counting on the event loop's
    thread: the scrape that flushes runs there too, so no increment is lost between
    the read and the reset.
    """

    __slots__ = ("_child", "pending")

    def __init__(self, child: Any) -> None:
        self._child = child
        self.pending = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.pending += amount

    def flush(self) -> None:
        if self.pending:
            self._child.inc(self.pending)
            self.pending = 0.0


class PendingHistogram:
    """A histogram child's observations counted per bucket until the next scrape
    (observe() is ~2.6 µs; this ~0.3). Same thread rule as PendingCounter."""

    __slots__ = ("_bounds", "_child", "_counts", "_sum")

    def __init__(self, child: Any) -> None:
        self._child = child
        self._bounds: list[float] = list(child._upper_bounds)
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0

    def observe(self, amount: float) -> None:
        self._counts[bisect_left(self._bounds, amount)] += 1  # the first bound >= amount
        self._sum += amount

    def flush(self) -> None:
        """Into the child's own per-bucket values: what observe() would have added,
        one call per bucket instead of one per observation."""
        counts = self._counts
        if not any(counts):
            return
        buckets = self._child._buckets
        for i, n in enumerate(counts):
            if n:
                buckets[i].inc(n)
                counts[i] = 0
        self._child._sum.inc(self._sum)
        self._sum = 0.0


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.child = Children()
        self._pending: dict[tuple[object, tuple[str, ...]], Any] = {}
        # Called before each scrape: counters kept elsewhere (a thread's) brought in.
        self.before_render: list[Callable[[], None]] = []
        r = self.registry = CollectorRegistry()
        # What the default registry would have shown (memory, CPU, descriptors, GC):
        # its collectors are bound to that registry, so this one gets its own.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.build_info = Gauge(
            "hlrd_build_info",
            "Always 1; the labels say which hlrd and Python answer",
            ["version", "python"],
            registry=r,
        )
        self.build_info.labels(hlrd_version(), platform.python_version()).set(1)
        self.lookups = Counter(
            "hlrd_lookups",
            "Lookups by the provider that gave the final result (none: no provider was "
            "bound or configured) and that result's outcome",
            ["provider", "outcome"],
            registry=r,
        )
        self.lookup_seconds = Histogram(
            "hlrd_lookup_duration_seconds",
            "Lookup latency, request to result, by final provider and outcome",
            ["provider", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_attempts = Counter(
            "hlrd_upstream_attempts",
            "Every provider a lookup tried, by how that try ended (ok, partial, failed, "
            "timeout, throttled, not_bound), also tries followed by a failover",
            ["provider", "outcome"],
            registry=r,
        )
        self.failovers = Counter(
            "hlrd_lookup_failovers",
            "Lookups that moved on from this provider to the next one",
            ["provider"],
            registry=r,
        )
        self.cache_lookups = Counter(
            "hlrd_cache_lookups",
            "Cache consultations by result: memory or store (hits), miss, stale (served "
            "because every provider failed), bypass (cache off)",
            ["result"],
            registry=r,
        )
        self.cost_spent = Counter(
            "hlrd_cost_spent",
            "What answered lookups cost at the providers' configured prices",
            ["provider", "currency"],
            registry=r,
        )
        self.cost_saved = Counter(
            "hlrd_cost_saved",
            "What cache hits would have cost as fresh lookups (the answer's own price)",
            ["provider", "currency"],
            registry=r,
        )
        self.binds = Gauge(
            "hlrd_upstream_binds", "Upstream binds by state", ["provider", "state"], registry=r
        )
        self.circuit_state = Gauge(
            "hlrd_upstream_circuit_state",
            "Each provider's circuit breaker: 0 closed, 1 half-open (probing), 2 open (skipped)",
            ["provider"],
            registry=r,
        )
        self.circuit_opened = Counter(
            "hlrd_upstream_circuit_opened",
            "Times a provider's circuit breaker opened (it was failing)",
            ["provider"],
            registry=r,
        )
        self.binds_configured = Gauge(
            "hlrd_upstream_binds_configured",
            "Upstream binds configured (upstream.providers.binds)",
            ["provider"],
            registry=r,
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
        self.queue_limit = Gauge(
            "hlrd_upstream_queue_limit",
            "Lookups that may wait for a rate slot before the provider refuses more "
            "(lookup.max_queue)",
            ["provider"],
            registry=r,
        )
        self.rate = Gauge(
            "hlrd_upstream_rate_tps", "Current send rate limit", ["provider"], registry=r
        )
        self.throttled = Counter(
            "hlrd_upstream_throttled",
            "ESME_RTHROTTLED or HTTP 429 answers",
            ["provider"],
            registry=r,
        )
        self.retries = Counter(
            "hlrd_upstream_retries", "Lookups resent after a link loss", ["provider"], registry=r
        )
        self.list_numbers = Gauge(
            "hlrd_list_numbers", "Numbers on each do-not-call list", ["list"], registry=r
        )
        self.list_age = Gauge(
            "hlrd_list_age_seconds",
            "Since each do-not-call list was imported in full",
            ["list"],
            registry=r,
        )
        self.list_stale = Gauge(
            "hlrd_list_stale", "1 while a list is past its freshness limit", ["list"], registry=r
        )
        self.list_hits = Counter(
            "hlrd_list_hits", "Checks a do-not-call list blocked", ["list"], registry=r
        )
        self.list_reload_failures = Counter(
            "hlrd_list_reload_failures",
            "List files that could not be loaded (the lists in memory were kept)",
            registry=r,
        )
        self.decisions = Counter(
            "hlrd_decisions",
            "Call decisions by verdict and reason",
            ["verdict", "reason"],
            registry=r,
        )
        for table in (KNOWN_REASONS, GATE_REASONS):
            for verdict, reasons in table.items():
                for reason in reasons:
                    self.touch(self.decisions, verdict.value, reason)
        self.erasures = Counter(
            "hlrd_erasures",
            "Erasure requests carried out (GDPR Art. 17), by what asked (api, cli)",
            ["source"],
            registry=r,
        )
        self.touch_each(self.erasures, (), ("api", "cli"))
        self.deferrals = Counter(
            "hlrd_deferrals",
            "Checks deferred for calling hours, by the country whose hours applied",
            ["country"],
            registry=r,
        )
        self.consent_records = Gauge(
            "hlrd_consent_records", "Consent records in force or withdrawn", registry=r
        )
        self.audit_records = Counter(
            "hlrd_audit_records", "Decisions written to the audit trail", registry=r
        )
        self.audit_pending = Gauge(
            "hlrd_audit_pending", "Decisions waiting to be written to the audit trail", registry=r
        )
        self.audit_failures = Counter(
            "hlrd_audit_write_failures",
            "Audit trail writes that failed (the decisions stay pending and are retried)",
            registry=r,
        )
        self.audit_refused = Counter(
            "hlrd_audit_refused",
            "Checks answered unknown (do not call) because the audit trail was full",
            registry=r,
        )
        self.rejected_numbers = Counter(
            "hlrd_rejected_numbers", "Numbers refused before lookup", ["problem"], registry=r
        )
        self.touch_each(self.rejected_numbers, (), [p.value for p in NumberProblem])
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
        self.http_requests = Counter(
            "hlrd_http_requests",
            "HTTP answers by route template (unmatched: no route, or refused before "
            "routing), method (OTHER: any but the usual ones, or unreadable) and status code",
            ["route", "method", "code"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "hlrd_http_request_duration_seconds",
            "HTTP request handling time by route template (requests refused by the "
            "parser or at accept are counted, not timed)",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def touch(self, metric: Counter | Histogram, *labels: str) -> None:
        """Create the series for `labels` now, at 0."""
        self.child(metric, *labels)

    def touch_each(
        self, metric: Counter | Histogram, prefix: tuple[str, ...], last: Iterable[str]
    ) -> None:
        """`touch(metric, *prefix, value)` for each value of the last label."""
        for value in last:
            self.child(metric, *prefix, value)

    def watch(self, gauge: Gauge, labels: tuple[str, ...], fn: Callable[[], float]) -> None:
        gauge.labels(*labels).set_function(fn)

    def pending(self, metric: Counter | Histogram, *values: str) -> Any:
        """A PendingCounter or PendingHistogram for `metric.labels(*values)`, for
        counting on the event loop's hot paths; its series exists from now on."""
        key = (metric, values)
        found = self._pending.get(key)
        if found is None:
            child = self.child(metric, *values)
            kind = PendingHistogram if isinstance(metric, Histogram) else PendingCounter
            found = self._pending[key] = kind(child)
        return found

    def flush(self) -> None:
        """What the pending counters hold, into the registry (before a scrape)."""
        for pending in self._pending.values():
            pending.flush()

    def render(self) -> bytes:
        for hook in self.before_render:
            hook()
        self.flush()
        return generate_latest(self.registry)
