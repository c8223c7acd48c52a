"""A result as the store keeps it: no number, no lookup id, the IMSI masked, and no
serving MSC (a switch's address locates the subscriber to a region; the country and
network the decisions need are kept, the MSC stays in memory only).

JSON, because it is what the HTTP API answers anyway (the same field names), an old
row stays readable after fields are added, and a row can be read by eye when needed.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..domain.masking import mask_imsi
from ..domain.result import (
    CacheInfo,
    LookupResult,
    Network,
    Outcome,
    Reachability,
    RoamingStatus,
    Timings,
    Zone,
)

_DROPPED = ("lookup_id", "msisdn", "timings", "cache")


def encode(result: LookupResult) -> bytes:
    d = result.to_dict()
    for name in _DROPPED:
        del d[name]
    d["imsi"] = mask_imsi(result.imsi)
    if result.imsi_key is not None:
        d["imsi_key"] = result.imsi_key.hex()  # keyed: whose SIM, for consent, not which
    d["serving_msc"] = None
    return orjson.dumps(d)  # compact, as json.dumps(separators=(",", ":")), ~10x faster


def decode(payload: bytes, msisdn: str) -> LookupResult:
    """The stored result for `msisdn`; its lookup id and cache info are the caller's."""
    d: dict[str, Any] = orjson.loads(payload)
    return LookupResult(
        lookup_id="",
        msisdn=msisdn,
        provider=d["provider"],
        transport=d["transport"],
        outcome=Outcome(d["outcome"]),
        reachability=Reachability(d["reachability"]),
        map_error=d.get("map_error"),
        map_error_name=d.get("map_error_name"),
        home_network=_network(d.get("home_network")),
        subscription_network=_network(d.get("subscription_network")),
        ported=d.get("ported"),
        serving_msc=d.get("serving_msc"),
        serving_network=_network(d.get("serving_network")),
        serving_country=d.get("serving_country"),
        roaming=RoamingStatus(d.get("roaming", "UNKNOWN")),
        visited_country=d.get("visited_country"),
        zone=Zone(d.get("zone", "UNKNOWN")),
        imsi=d.get("imsi"),
        imsi_key=_imsi_key(d.get("imsi_key")),
        error=d.get("error"),
        timings=Timings(),
        cache=CacheInfo(),
    )


def _imsi_key(text: Any) -> bytes | None:
    try:
        return bytes.fromhex(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _network(d: dict[str, Any] | None) -> Network:
    if not d:
        return Network()
    return Network(mccmnc=d.get("mccmnc"), country=d.get("country"))
