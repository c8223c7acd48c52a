"""Which providers a number is asked of, in which order (`[[upstream.routes]]`).

A route sends a country's numbers, or a prefix's, to the providers that serve it
best or cheapest: an operator's CAMARA API for its own subscribers, an aggregator
for the rest. The longest matching prefix wins, then the number's country, then the
default: every provider in configured order. The lists are built once; a lookup
costs a few dict probes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar


class Named(Protocol):
    @property
    def name(self) -> str: ...


P = TypeVar("P", bound=Named)


class RouteSpec(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def providers(self) -> tuple[str, ...]: ...
    @property
    def countries(self) -> tuple[str, ...]: ...
    @property
    def prefixes(self) -> tuple[str, ...]: ...


class Router(Generic[P]):
    def __init__(self, providers: Sequence[P], routes: Sequence[RouteSpec] = ()) -> None:
        by_name = {p.name: p for p in providers}
        self.default: tuple[str, list[P]] = ("default", list(providers))
        self._by_country: dict[str, tuple[str, list[P]]] = {}
        self._by_prefix: dict[str, tuple[str, list[P]]] = {}
        for r in routes:
            entry = (r.name, [by_name[n] for n in r.providers])
            for c in r.countries:
                self._by_country[c] = entry
            for prefix in r.prefixes:
                self._by_prefix[prefix] = entry
        self._lengths = sorted({len(p) for p in self._by_prefix}, reverse=True)

    def route(self, e164: str, region: str) -> tuple[str, list[P]]:
        """The route's name and its providers for a number (digits, its region)."""
        for n in self._lengths:
            hit = self._by_prefix.get(e164[:n])
            if hit is not None:
                return hit
        return self._by_country.get(region, self.default)
