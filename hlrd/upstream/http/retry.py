"""Which failed HTTP calls to a provider are worth another try, and when.

A retry is only for what may go differently a moment later: the provider said slow
down (429, honouring its Retry-After), it broke (5xx), or the connection did. An
answer about the request itself — bad credentials (401/403), no credit (402), a
number the vendor refuses (400/404/422) — comes back the same every time, and paying
for it twice, or hammering a vendor with a bad key, is worse than failing at once.
Backoff is exponential with full jitter (so a provider recovering from an outage is
not met by every retry at the same instant), capped, and a Retry-After longer than
the lookup can wait ends the retries instead of sleeping past the deadline.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 60.0  # a longer wait than this is not a retry, it is an outage


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3  # in all, the first one included
    base_delay_s: float = 0.2
    max_delay_s: float = 2.0

    def retryable(self, status: int | None) -> bool:
        """`status`: the HTTP status, or None when no answer came (connection failed,
        reset, timed out before the head)."""
        return status is None or status in RETRYABLE_STATUSES

    def delay(
        self,
        attempt: int,
        retry_after: str | None = None,
        now: float = 0.0,
        rand: Callable[[], float] = random.random,
    ) -> float | None:
        """Seconds to wait before attempt `attempt + 1` (attempts count from 1), or None
        when there is no next attempt. `retry_after`: the answer's Retry-After header
        (seconds or an HTTP date, read against `now`, a Unix time), which replaces the
        backoff when it is readable and at most MAX_RETRY_AFTER_S."""
        if attempt >= self.attempts:
            return None
        if retry_after is not None:
            wait = parse_retry_after(retry_after, now)
            if wait is not None:
                return wait if wait <= MAX_RETRY_AFTER_S else None
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return float(ceiling * rand())


def parse_retry_after(value: str, now: float) -> float | None:
    """RFC 9110 10.2.3: delay-seconds or an HTTP-date; None when it is neither."""
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT; a zone-less one is malformed
        return None
    return max(0.0, when.timestamp() - now)
