"""Flow control for the SMSC role: a per-account token bucket."""

from __future__ import annotations

import time


class TokenBucket:
    """`rate` per second with a burst of at most one second's worth; 0 means no cap.

    An SMSC answers a submit beyond its rate with ESME_RTHROTTLED at once rather than
    queueing it: the client's window is the queue.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._tokens = float(rate)
        self._stamp = time.monotonic()

    def take(self) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic()
        self._tokens = min(float(self.rate), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
