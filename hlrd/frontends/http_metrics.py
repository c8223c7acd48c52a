"""HTTP answers counted by route template, method and status, never by path.

The path carries a phone number, so a label holds the route's template
(`/v1/lookup/{number}`) or `unmatched`; methods outside a fixed set are `OTHER`, so
a client inventing methods cannot invent series either. Requests aiohttp's parser
refuses and connections refused at accept (503) have no route and no method: they
count as `unmatched`/`OTHER`, and are not timed (nothing tells when they began).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from ..metrics import Metrics

UNMATCHED = "unmatched"
OTHER = "OTHER"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_CODES = {status: str(status) for status in range(100, 600)}
# What the listener itself answers, before any route: a refused request line or
# header (400, 414, 431) and a connection beyond the caps (503).
REFUSAL_CODES = (400, 414, 431, 503)


def route_of(request: web.Request) -> str:
    """The matched route's template, or `unmatched` (404, 405)."""
    resource = request.match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical


class HttpMetrics:
    """Counts and times one front end's answers; cheap enough for every request."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._child = metrics.child
        # (route, method, status) -> (counter, histogram) children: one dict lookup per
        # answer instead of two label lookups (~1 µs each). Bounded like the labels.
        self._answers: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def answered(self, route: str, method: str, status: int, seconds: float) -> None:
        if method not in METHODS:
            method = OTHER
        key = (route, method, status)
        found = self._answers.get(key)
        if found is None:
            m = self._metrics
            found = self._answers[key] = (
                m.pending(m.http_requests, route, method, _CODES.get(status) or str(status)),
                m.pending(m.http_seconds, route),
            )
        counter, histogram = found
        counter.inc()
        histogram.observe(seconds)

    def refused(self, status: int) -> None:
        """An answer given outside the app: the parser refused the request, the
        connection was over the caps, or aiohttp answered for a failed handler."""
        self._child(
            self._metrics.http_requests, UNMATCHED, OTHER, _CODES.get(status, "other")
        ).inc()

    def create_route_series(self, route: str, codes: Iterable[int], method: str = "GET") -> None:
        """The series `route` can count, at 0 from the start."""
        m = self._metrics
        m.touch_each(m.http_requests, (route, method), [str(c) for c in sorted(codes)])
        m.touch(m.http_seconds, route)

    def create_refusal_series(self) -> None:
        m = self._metrics
        m.touch_each(m.http_requests, (UNMATCHED, OTHER), [str(c) for c in REFUSAL_CODES])
