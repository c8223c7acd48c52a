"""Which kind of answer a result is: the kind sets how long it may be reused."""

from __future__ import annotations

from ..domain.result import LookupResult, Outcome, Reachability, RoamingStatus

_BY_REACHABILITY = {
    Reachability.ABSENT: "absent",
    Reachability.INVALID: "invalid",
    Reachability.RESTRICTED: "restricted",
    Reachability.UNKNOWN: "unknown",
}
_BY_OUTCOME = {
    Outcome.FAILED: "failed",
    Outcome.TIMEOUT: "timeout",
    Outcome.THROTTLED: "throttled",
}


def kind_of(result: LookupResult) -> str | None:
    """The cache kind, or None for a result no provider gave (nothing bound, shutting
    down): remembering it would only delay the first real answer."""
    if result.provider == "none":
        return None
    failed = _BY_OUTCOME.get(result.outcome)
    if failed is not None:
        return failed
    if result.reachability is Reachability.CONNECTED:
        return "roaming" if result.roaming is RoamingStatus.ROAMING else "connected"
    return _BY_REACHABILITY[result.reachability]


def answered(kind: str) -> bool:
    """A provider's answer about the subscriber (not a failure to get one)."""
    return kind not in _BY_OUTCOME.values()
