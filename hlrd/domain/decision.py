"""May we call this number? The policy a compliance officer configures.

Default: roaming outside the EEA blocks (an incoming call can cost the subscriber
money, and some countries forbid such marketing calls); roaming inside the EEA is
allowed (roam-like-at-home); absent and invalid numbers block (no point dialing);
and when we cannot tell, fail closed.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from enum import StrEnum

from .result import LookupResult, Outcome, Reachability, RoamingStatus, Zone


class Verdict(StrEnum):
    ALLOW = "allow"
    BLOCK = "block"
    UNKNOWN = "unknown"
    DEFER = "defer"  # not now: outside the calling hours; `retry_after` says when


# Every reason decide() can give, by verdict, as counted (the part before ":"; allow
# gives none): metrics create these series at start. tests/test_decision.py checks
# that decide() never gives one outside this table.
KNOWN_REASONS: dict[Verdict, tuple[str, ...]] = {
    Verdict.ALLOW: ("none",),
    Verdict.BLOCK: (
        "absent",
        "invalid_subscriber",
        "restricted",
        "roaming_country_blocked",
        *(f"roaming_{z.value.lower()}" for z in Zone),
    ),
    Verdict.UNKNOWN: (
        "lookup_failed",
        "lookup_timeout",
        "lookup_throttled",
        "reachability_unknown",
        "roaming_unknown",
    ),
}
# Reasons the compliance gate gives before or beside decide() (hlrd.call_check).
GATE_REASONS: dict[Verdict, tuple[str, ...]] = {
    Verdict.BLOCK: (
        "listed",
        "list_stale",
        "erased",
        "consent_missing",
        "consent_expired",
        "consent_withdrawn",
        "ownership_unverified",
        "subscriber_changed",
    ),
    Verdict.DEFER: ("calling_hours", "public_holiday", "calling_hours_none"),
    Verdict.UNKNOWN: ("audit_backlog",),
}


@dataclass(frozen=True, slots=True)
class Policy:
    block_zones: frozenset[Zone] = frozenset({Zone.NON_EEA})
    block_countries: frozenset[str] = frozenset()  # visited countries that always block
    allow_countries: frozenset[str] = frozenset()  # visited countries that never block
    block_absent: bool = True
    block_invalid: bool = True
    block_restricted: bool = False
    fail_closed: bool = True  # "unknown" means do not call
    # The oldest cached answer this policy accepts, in seconds (None: the cache's own
    # time to live per kind of answer decides).
    max_age_s: float | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...] = field(default=())
    call: bool = False  # what a dialer should do: verdict, with fail_closed applied

    @property
    def digit(self) -> str:
        """VICIdial / Asterisk CURL() convention: "1" do not call, "0" call."""
        return "0" if self.call else "1"


# Every field of a LookupResult that decide() reads (a test holds it to that): equal
# inputs, equal decision, so the service may remember decisions by them.
DECISION_INPUTS = ("outcome", "reachability", "roaming", "visited_country", "zone")
decision_inputs = operator.attrgetter(*DECISION_INPUTS)


def decide(result: LookupResult, policy: Policy) -> Decision:
    reasons: list[str] = []
    unknown: list[str] = []
    if result.outcome in (Outcome.FAILED, Outcome.TIMEOUT, Outcome.THROTTLED):
        unknown.append(f"lookup_{result.outcome.value}")
    reach = result.reachability
    if reach is Reachability.ABSENT and policy.block_absent:
        reasons.append("absent")
    elif reach is Reachability.INVALID and policy.block_invalid:
        reasons.append("invalid_subscriber")
    elif reach is Reachability.RESTRICTED and policy.block_restricted:
        reasons.append("restricted")
    elif reach is Reachability.UNKNOWN and not unknown:
        unknown.append("reachability_unknown")
    if result.roaming is RoamingStatus.ROAMING:
        visited = result.visited_country or ""
        if visited in policy.allow_countries:
            pass
        elif visited in policy.block_countries:
            reasons.append(f"roaming_country_blocked:{visited}")
        elif result.zone in policy.block_zones:
            reasons.append(f"roaming_{result.zone.value.lower()}")
    elif result.roaming is RoamingStatus.UNKNOWN and reach is Reachability.CONNECTED:
        unknown.append("roaming_unknown")
    if reasons:
        return Decision(Verdict.BLOCK, tuple(reasons), call=False)
    if unknown:
        return Decision(Verdict.UNKNOWN, tuple(unknown), call=not policy.fail_closed)
    return Decision(Verdict.ALLOW, (), call=True)
