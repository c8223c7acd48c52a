"""What the lookup service needs of any provider, whatever its transport."""

from __future__ import annotations

from typing import Protocol

from ..domain.result import HlrAnswer

# Why a provider failed a lookup without sending anything: none of its links is up.
NOT_BOUND = "no bind to the provider is up"


class ProviderError(Exception):
    """The provider could not answer this lookup; `outcome` says how it failed."""

    def __init__(self, message: str, outcome: str = "failed") -> None:
        super().__init__(message)
        self.outcome = outcome  # "failed" | "throttled" | "timeout"


class Provider(Protocol):
    name: str
    transport: str
    # The longest a lookup can take before the provider itself fails it (its own
    # result deadline, queueing included). The service needs no timer of its own
    # for a lookup whose overall deadline is later than this.
    max_lookup_s: float
    # What one answered lookup costs (config `price`, `currency`), for cost metrics.
    price: float
    currency: str

    @property
    def ready(self) -> bool:
        """At least one link is up and able to take lookups."""
        ...

    async def wait_ready(self) -> None:
        """Return once a link has been up (for start-up and tests, not for lookups)."""
        ...

    async def start(self) -> None: ...

    async def lookup(self, msisdn: str, lookup_id: str) -> HlrAnswer: ...

    async def stop(self) -> None: ...
