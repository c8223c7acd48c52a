"""Per-provider send rate: asyncio-throttle, spread over the second, adaptive.

asyncio-throttle holds a per-period rate exactly, but given a one-second period it
releases the whole second's quota in one ~10 ms burst, and it burns CPU when many
coroutines poll it. So one dispatcher per provider is its only client, and the
period is cut to about 100 ms (`k` sends per `k/tps` seconds): an upstream that
throttles per 100 ms sees no bursts. When the provider answers ESME_RTHROTTLED the
rate halves (once a second at most), then climbs back by a tenth of the configured
rate per clean second.
"""

from __future__ import annotations

import math
import time

from asyncio_throttle.throttler import Throttler

MIN_PERIOD_S = 0.1


def _shape(tps: float) -> tuple[int, float]:
    """(sends per period, period) giving `tps` with a period of at least 100 ms."""
    k = max(1, math.ceil(tps * MIN_PERIOD_S))
    return k, k / tps


class AdaptiveRate:
    def __init__(self, tps: int) -> None:
        self.configured = float(tps)
        self.current = float(tps)
        self._floor = max(1.0, tps / 64)
        k, period = _shape(self.current)
        self._throttler = Throttler(rate_limit=k, period=period, retry_interval=0.002)
        self._last_change = time.monotonic()
        self._last_cut = -1e9

    async def acquire(self) -> None:
        self._recover()
        await self._throttler.acquire()

    def throttled(self) -> None:
        """The provider said ESME_RTHROTTLED: halve the rate (not below a floor).

        At most once a second: a whole window of requests sent at the old rate comes
        back throttled together, and that is one signal, not fifty.
        """
        if time.monotonic() - self._last_cut < 1.0:
            return
        self._last_cut = time.monotonic()
        self._set(max(self._floor, self.current / 2))

    def _recover(self) -> None:
        if self.current >= self.configured:
            return
        now = time.monotonic()
        if now - self._last_change >= 1.0:
            self._set(min(self.configured, self.current + self.configured / 10))

    def _set(self, tps: float) -> None:
        self.current = tps
        self._last_change = time.monotonic()
        k, period = _shape(tps)
        self._throttler.rate_limit = k
        self._throttler.period = period
