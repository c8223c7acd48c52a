"""The one normalized answer every provider's lookup becomes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    OK = "ok"  # the HLR answered and reachability is known
    PARTIAL = "partial"  # the HLR answered, but not everything (e.g. system failure)
    FAILED = "failed"  # no usable answer (provider error, shutdown)
    THROTTLED = "throttled"  # refused for rate; try later
    TIMEOUT = "timeout"  # no answer within the result timeout


class Reachability(StrEnum):
    CONNECTED = "CONNECTED"
    ABSENT = "ABSENT"
    INVALID = "INVALID"
    RESTRICTED = "RESTRICTED"
    UNKNOWN = "UNKNOWN"


class RoamingStatus(StrEnum):
    ROAMING = "ROAMING"
    NOT_ROAMING = "NOT_ROAMING"
    UNKNOWN = "UNKNOWN"


class Zone(StrEnum):
    DOMESTIC = "DOMESTIC"
    EEA = "EEA"
    NON_EEA = "NON_EEA"
    UNKNOWN = "UNKNOWN"


# Not frozen: one is built per receipt, and a frozen dataclass's __init__ costs twice
# as much (a setattr call per field). Treated as a value: nothing changes it later.
@dataclass(slots=True)
class HlrAnswer:
    """What a provider said, before interpretation. Every adapter produces this."""

    delivered: bool | None = None  # receipt stat DELIVRD (or the vendor's "live")
    map_error: int | None = None
    imsi: str | None = None
    mccmnc: str | None = None  # subscription network (the IMSI's)
    serving_mccmnc: str | None = None
    msc: str | None = None  # serving MSC global title
    home_mccmnc: str | None = None  # range holder, when the provider knows it
    ported: bool | None = None  # the provider's own verdict, used when we cannot tell
    message_id: str | None = None
    # ISO alpha-2 of where the subscriber is served, when a provider says so without
    # an MSC or network we could read it from (an HTTP vendor's roaming country).
    serving_country: str | None = None


@dataclass(frozen=True, slots=True)
class Network:
    mccmnc: str | None = None
    country: str | None = None  # ISO 3166 alpha-2


@dataclass(frozen=True, slots=True)
class Timings:
    upstream_ms: float | None = None  # None: nothing was sent to a provider
    total_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class CacheInfo:
    """Where an answer came from: a dialer must know it is not a fresh lookup."""

    hit: bool = False
    age_s: float = 0.0  # since the provider answered
    stale: bool = False  # past its time to live, served because every provider failed


NOT_CACHED = CacheInfo()


@dataclass(frozen=True, slots=True)
class LookupResult:
    lookup_id: str
    msisdn: str
    provider: str
    transport: str
    outcome: Outcome
    reachability: Reachability = Reachability.UNKNOWN
    map_error: int | None = None
    map_error_name: str | None = None
    home_network: Network = field(default_factory=Network)
    subscription_network: Network = field(default_factory=Network)
    ported: bool | None = None
    serving_msc: str | None = None
    serving_network: Network = field(default_factory=Network)
    serving_country: str | None = None
    roaming: RoamingStatus = RoamingStatus.UNKNOWN
    visited_country: str | None = None
    zone: Zone = Zone.UNKNOWN
    imsi: str | None = None
    error: str | None = None
    timings: Timings = field(default_factory=Timings)
    cache: CacheInfo = NOT_CACHED
    # A keyed hash of the IMSI the provider told (never shown: to_dict leaves it out),
    # so consent can tell whether the number changed hands even when `imsi` is masked.
    imsi_key: bytes | None = None

    def served_as(self, lookup_id: str, cache: CacheInfo, timings: Timings) -> LookupResult:
        """This answer again, under another lookup id, cache info and timings.

        What a cache hit returns. dataclasses.replace() re-runs __init__ through
        keyword arguments for all 21 fields (~18 µs, more than the rest of a hit);
        `_copy_served` sets the slots straight through their descriptors (~2 µs).
        """
        return _copy_served(self, lookup_id, cache, timings)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; written out because dataclasses.asdict() deep-copies (~50 µs)."""
        return {
            "lookup_id": self.lookup_id,
            "msisdn": self.msisdn,
            "provider": self.provider,
            "transport": self.transport,
            "outcome": self.outcome.value,
            "reachability": self.reachability.value,
            "map_error": self.map_error,
            "map_error_name": self.map_error_name,
            "home_network": _network(self.home_network),
            "subscription_network": _network(self.subscription_network),
            "ported": self.ported,
            "serving_msc": self.serving_msc,
            "serving_network": _network(self.serving_network),
            "serving_country": self.serving_country,
            "roaming": self.roaming.value,
            "visited_country": self.visited_country,
            "zone": self.zone.value,
            "imsi": self.imsi,
            "error": self.error,
            "timings": {"upstream_ms": self.timings.upstream_ms, "total_ms": self.timings.total_ms},
            "cache": {"hit": self.cache.hit, "age_s": self.cache.age_s, "stale": self.cache.stale},
        }


def _network(n: Network) -> dict[str, str | None]:
    return {"mccmnc": n.mccmnc, "country": n.country}


def _slot_copier() -> Callable[[LookupResult, str, CacheInfo, Timings], LookupResult]:
    """A function that copies every slot of a LookupResult but the three a cache hit
    replaces, one line per slot: a loop of getattr/object.__setattr__ by name cost
    ~5 µs. Generated from __slots__, so a new field cannot be forgotten."""
    replaced = ("lookup_id", "cache", "timings")
    names: dict[str, Any] = {"_new": object.__new__, "_cls": LookupResult}
    lines = ["def copy(src, lookup_id, cache, timings):", "    new = _new(_cls)"]
    for slot in LookupResult.__slots__:
        names[f"_set_{slot}"] = getattr(LookupResult, slot).__set__
        value = slot if slot in replaced else f"src.{slot}"
        lines.append(f"    _set_{slot}(new, {value})")
    lines.append("    return new")
    exec("\n".join(lines), names)  # our own slot names only, nothing from outside
    copier: Callable[[LookupResult, str, CacheInfo, Timings], LookupResult] = names["copy"]
    return copier


_copy_served = _slot_copier()
