"""A circuit breaker per provider, whatever its transport.

A provider that has started failing costs every lookup its timeout and retries
before failover reaches the next one. The breaker opens after `failures` failed
lookups in a row, or when at least `error_ratio` of the last `window` lookups failed
(once `min_calls` have been seen); while open the provider is skipped. After
`cooldown_s` one lookup is let through as a probe (half-open): its success closes
the circuit, its failure opens it again for another cool-down. Lookups that were
already on their way when it opened say nothing once they end. Only a failed lookup
counts against the provider: throttling is not (it is alive and said so), nor a
timeout (one number's HLR may never answer), and an answer about the number is a
success.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import IntEnum


class State(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(
        self,
        failures: int = 5,
        error_ratio: float = 0.5,
        window: int = 20,
        min_calls: int = 10,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._failures_to_open = failures
        self._error_ratio = error_ratio
        self._min_calls = min_calls
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._recent: deque[bool] = deque(maxlen=window)  # True: a failure
        self._in_a_row = 0
        self._opened_at = 0.0
        self._probing = False
        self.state = State.CLOSED
        self.opened = 0  # times it opened, for metrics and tests

    def allow(self) -> bool:
        """May a lookup go to this provider now? In half-open, only one (the probe)."""
        if self.state is State.CLOSED:
            return True
        if self.state is State.OPEN:
            if self._clock() - self._opened_at < self._cooldown_s:
                return False
            self.state = State.HALF_OPEN
        if self._probing:
            return False
        self._probing = True
        return True

    def success(self) -> None:
        if self.state is State.OPEN:
            return  # a lookup sent before it opened: only the probe may close it
        self._probing = False
        if self.state is not State.CLOSED:
            self.state = State.CLOSED
            self._recent.clear()
        self._in_a_row = 0
        self._recent.append(False)

    def failure(self) -> None:
        if self.state is State.OPEN:
            # Lookups sent before it opened end now: open already, and the cool-down
            # must not start over for each (or the provider is never probed).
            return
        self._probing = False
        if self.state is State.HALF_OPEN:
            self._open()
            return
        self._in_a_row += 1
        self._recent.append(True)
        failed = sum(self._recent)
        if self._in_a_row >= self._failures_to_open or (
            len(self._recent) >= self._min_calls and failed >= self._error_ratio * len(self._recent)
        ):
            self._open()

    def release(self) -> None:
        """The allowed lookup ended with neither verdict (cancelled, throttled): a
        half-open circuit may probe again."""
        self._probing = False

    def _open(self) -> None:
        self.state = State.OPEN
        self._opened_at = self._clock()
        self._in_a_row = 0
        self._recent.clear()
        self.opened += 1
