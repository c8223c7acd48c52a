"""A log budget: at most `burst` lines per `interval_s`, the rest counted, not written.

A peer that sends 600,000 bad PDUs must not cost 600,000 log lines (135 MB were
written once). Whoever logs on a peer's behalf keeps one budget per peer (or one
for the process, for events like descriptor exhaustion) and asks it before each
line; the next line it allows carries how many were suppressed in between.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class LogBudget:
    __slots__ = ("_clock", "_count", "_window_start", "burst", "interval_s", "suppressed")

    def __init__(
        self,
        burst: int = 5,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.interval_s = interval_s
        self._clock = clock
        self._window_start = -1e18
        self._count = 0
        self.suppressed = 0  # lines refused since the last one allowed

    def take(self) -> int | None:
        """None: do not log. Otherwise log, reporting the returned count of lines
        suppressed since the last allowed one (0 when none were)."""
        now = self._clock()
        if now - self._window_start >= self.interval_s:
            self._window_start = now
            self._count = 0
        if self._count >= self.burst:
            self.suppressed += 1
            return None
        self._count += 1
        suppressed, self.suppressed = self.suppressed, 0
        return suppressed
