"""One HTTP provider's connection pool, send rate and retries.

Every vendor adapter talks to its provider through one `ProviderClient`: a kept-alive
aiohttp session whose pool is bounded (`pool_size` connections, never more), connect
and per-request timeouts, the same adaptive per-provider rate as the SMPP provider
(halved when the provider answers 429), and the retry policy of `retry.py`. It
returns the provider's final answer whatever its status — a 401 or a vendor's
"invalid number" is the adapter's to read — and raises `HttpCallFailed` only when no
usable answer came: retries exhausted on 429/5xx, connections lost, the lookup's
deadline reached, or an answer too large to be one.

`headers` is called for every attempt, so a signed request (hlr-lookups.com) is
signed anew with a fresh timestamp. Nothing here logs a header or a body: both can
hold secrets and numbers.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import aiohttp

from ..rate import AdaptiveRate
from .retry import RetryPolicy

MAX_ANSWER_BYTES = 1 << 20  # an HLR answer is a few hundred bytes; a batch of 1,000 < 1 MB


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]
    body: bytes
    attempts: int


class HttpCallFailed(Exception):
    """No usable answer; `outcome` is the lookup's ("failed", "timeout", "throttled")
    and `status` the last HTTP status seen (None: no answer at all)."""

    def __init__(self, message: str, outcome: str, status: int | None, attempts: int) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.status = status
        self.attempts = attempts


class ProviderClient:
    def __init__(
        self,
        base_url: str,
        *,
        pool_size: int = 16,
        connect_timeout_s: float = 3.0,
        request_timeout_s: float = 10.0,
        tps: int = 100,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._pool_size = pool_size
        self._timeout = aiohttp.ClientTimeout(
            total=request_timeout_s, sock_connect=connect_timeout_s
        )
        self.rate = AdaptiveRate(tps)
        self.policy = policy or RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        self._session: aiohttp.ClientSession | None = None
        # For the provider's gauges: requests waiting for a rate slot, and sent.
        self.waiting_for_rate = 0
        self.in_flight = 0
        self.requests_sent = 0  # attempts, in all (requests per lookup when batching)
        self.on_throttled: Callable[[], None] = lambda: None  # each 429 (a counter)

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._pool_size,
            limit_per_host=self._pool_size,
            keepalive_timeout=30.0,
            enable_cleanup_closed=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            auto_decompress=True,
            trust_env=False,  # a proxy from the environment would see every number
        )

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self,
        method: str,
        path: str,
        body: bytes | Callable[[], bytes] | None,
        headers: Callable[[], dict[str, str]],
        deadline: float,
        final: Callable[[int, bytes], bool] | None = None,
    ) -> HttpAnswer:
        """`path` below base_url (or an absolute URL); `deadline` in loop time: no
        attempt starts, and no backoff is slept, past it. A callable `body` is called
        once, when the first attempt has its rate slot. `final` says which answers
        with a retried status are nonetheless final."""
        session = self._session
        if session is None:
            raise HttpCallFailed("the provider's client is not started", "failed", None, 0)
        loop = asyncio.get_running_loop()
        url = path if path.startswith(("https://", "http://")) else self.base_url + path
        attempt = 0
        status: int | None = None
        outcome = "failed"
        while True:
            attempt += 1
            self.waiting_for_rate += 1
            try:
                await self.rate.acquire()
            finally:
                self.waiting_for_rate -= 1
            left = deadline - loop.time()
            if left <= 0:
                raise HttpCallFailed("the lookup's time ran out", "timeout", status, attempt - 1)
            if callable(body):  # written once its rate slot came (a batch filled till then)
                body = body()
            retry_after: str | None = None
            self.in_flight += 1
            self.requests_sent += 1
            try:
                async with session.request(
                    method,
                    url,
                    data=body,
                    headers=headers(),
                    timeout=aiohttp.ClientTimeout(
                        total=min(left, self._timeout.total or left),
                        sock_connect=self._timeout.sock_connect,
                    ),
                    allow_redirects=False,
                ) as resp:
                    status = resp.status
                    retry_after = resp.headers.get("Retry-After")
                    data = await _bounded_body(resp, status, attempt)
                    if not self.policy.retryable(status) or (final and final(status, data)):
                        return HttpAnswer(status, resp.headers, data, attempt)
                    outcome = "throttled" if status == 429 else "failed"
                    if status == 429:
                        self.rate.throttled()
                        self.on_throttled()
            except TimeoutError:
                status, outcome = None, "timeout"
            except (aiohttp.ClientError, OSError):
                status, outcome = None, "failed"
            finally:
                self.in_flight -= 1
            wait = self.policy.delay(attempt, retry_after, self._clock(), self._rand)
            if wait is None or loop.time() + wait >= deadline:
                what = f"HTTP {status}" if status is not None else "no answer"
                raise HttpCallFailed(f"{what} after {attempt} attempt(s)", outcome, status, attempt)
            await self._sleep(wait)


async def _bounded_body(resp: aiohttp.ClientResponse, status: int, attempt: int) -> bytes:
    """The whole body, or HttpCallFailed once it passes MAX_ANSWER_BYTES (read no
    further: a provider gone wrong must not fill our memory)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise HttpCallFailed(
                f"the answer is larger than {MAX_ANSWER_BYTES} bytes", "failed", status, attempt
            )
        chunks.append(chunk)
    return b"".join(chunks)
