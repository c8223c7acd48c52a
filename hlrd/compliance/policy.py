"""A campaign's rules: which lists, whether consent, which calling hours, which roaming.

One call center runs several campaigns under different rules: a customer-service
callback needs no marketing consent and may ignore the TPS; a telemarketing campaign
needs voice consent, the registries and the legal calling hours. Each set of rules is
a named, versioned policy (`[policy]` is "default", `[policies.<name>]` the others),
chosen per request (`?policy=`), per SMPP account and per job, and named with its
version in every answer and audit record, so a decision can be traced to the rules
that made it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..domain.decision import Policy
from .calling_hours import HoursRules

DEFAULT = "default"
CHANNELS = ("voice", "sms", "ivr", "messenger")


@dataclass(frozen=True, slots=True)
class CallPolicy:
    name: str = DEFAULT
    version: str = "1"
    # Roaming and reachability: what the lookup's answer must show (domain.decide).
    roaming: Policy = field(default_factory=Policy)
    # The lists that block (names; the own list is "dnc"); None: every list loaded.
    lists: frozenset[str] | None = None
    # A consulted list past its freshness limit: block every number, or only warn.
    stale_block: bool = True
    # The channel consent must cover for a call (None: no consent needed).
    consent: str | None = None
    consent_ownership: bool = False  # only consent whose holder proved the number counts
    # Consent recorded with an IMSI, and a lookup that shows another one: the number
    # changed hands, block (`subscriber_changed`).
    subscriber_check: bool = True
    # Calling hours (None: at any time).
    hours: HoursRules | None = None

    def uses(self, list_name: str) -> bool:
        return self.lists is None or list_name in self.lists

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}
