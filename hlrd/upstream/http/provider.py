"""A provider reached over HTTP: the vendor-neutral half of every HTTP adapter.

The vendor's module says how a lookup is asked and what the answers mean
(`Vendor.look_up`, given an `exchange` that sends one `Request`); this class does
the rest the same way for all of them: the client's pool, rate, retries and the
lookup's deadline, and the Provider interface the lookup service and the router
use. Most vendors ask one request per lookup (`OneRequestVendor`); CAMARA asks two
in parallel and a token now and then, Infobip gathers many lookups into one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from ...config import HttpProviderConfig
from ...domain.result import HlrAnswer
from ...metrics import Metrics
from ..base import ProviderError
from .client import HttpAnswer, HttpCallFailed, ProviderClient
from .retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # below the provider's base_url, or an absolute http(s) URL (a token endpoint)
    # Bytes, or a callable called once when the request may go (its rate slot came):
    # a batch takes numbers until then.
    body: bytes | Callable[[], bytes] | None
    headers: Callable[[], dict[str, str]]  # called per attempt (a signature is per time)
    # An answer that is final although its status is one retried (CAMARA's 429
    # QUOTA_EXCEEDED: a quota does not come back in seconds, a rate limit does).
    final: Callable[[int, bytes], bool] | None = None


# Sends one request within the lookup's deadline, retried by the policy; the final
# answer whatever its status, or ProviderError with the outcome when none came.
Exchange = Callable[[Request], Awaitable[HttpAnswer]]


class Vendor(Protocol):
    async def look_up(self, exchange: Exchange, msisdn: str, lookup_id: str) -> HlrAnswer:
        """The answer, or ProviderError (outcome "failed", "throttled", "timeout") for
        none: the vendor's error shapes, malformed or partial bodies, never another
        exception."""
        ...

    async def close(self) -> None:
        """Ends what the vendor keeps between lookups (a batch timer, a token)."""
        ...


class OneRequestVendor:
    """A vendor asked one request per lookup: `request` says what, `read` what the
    answer means (HlrAnswer, or ProviderError for an answer that is not one)."""

    def request(self, msisdn: str, lookup_id: str) -> Request:
        raise NotImplementedError

    def read(self, status: int, body: bytes, msisdn: str) -> HlrAnswer:
        raise NotImplementedError

    async def look_up(self, exchange: Exchange, msisdn: str, lookup_id: str) -> HlrAnswer:
        answer = await exchange(self.request(msisdn, lookup_id))
        return self.read(answer.status, answer.body, msisdn)

    async def close(self) -> None:
        return None


class HttpProvider:
    transport = "http"

    def __init__(
        self,
        cfg: HttpProviderConfig,
        vendor: Vendor,
        max_queue: int = 10_000,
        metrics: Metrics | None = None,
    ) -> None:
        self.cfg = cfg
        # Lookups waiting for a rate slot or an answer, at most: beyond it a lookup is
        # refused at once ("throttled", as the SMPP provider's full queue), so a slow
        # vendor cannot gather every caller's coroutine and number.
        self.max_queue = max_queue
        self.waiting = 0
        self.name = cfg.name
        self.price = cfg.price
        self.currency = cfg.currency
        self.vendor = vendor
        policy = RetryPolicy(attempts=cfg.max_attempts)
        # Each attempt may take its whole timeout, and a backoff lies between two.
        self.max_lookup_s = cfg.max_attempts * cfg.request_timeout_s + (cfg.max_attempts - 1) * max(
            policy.max_delay_s, 0.0
        )
        self.client = ProviderClient(
            cfg.base_url,
            pool_size=cfg.pool_size,
            connect_timeout_s=cfg.connect_timeout_s,
            request_timeout_s=cfg.request_timeout_s,
            tps=cfg.tps,
            policy=policy,
        )
        self._started = asyncio.Event()
        # The SMPP provider's gauges, read the HTTP way (binds are SMPP's alone: the
        # pool opens connections as needed, and the breaker says whether it works).
        if metrics is not None:
            n, client = cfg.name, self.client
            metrics.watch(metrics.in_flight, (n,), lambda: client.in_flight)
            metrics.watch(metrics.queued, (n,), lambda: client.waiting_for_rate)
            metrics.watch(metrics.rate, (n,), lambda: client.rate.current)
            metrics.queue_limit.labels(n).set(max_queue)
            throttled = metrics.child(metrics.throttled, n)
            client.on_throttled = throttled.inc
            metrics.touch(metrics.retries, n)

    @property
    def where(self) -> str:
        """For the start-up log: the provider and what it talks to (no credentials)."""
        return f"{self.name}@{self.cfg.base_url}"

    @property
    def ready(self) -> bool:
        """No link to keep up: ready once started (the circuit breaker will say more)."""
        return self._started.is_set()

    async def wait_ready(self) -> None:
        await self._started.wait()

    async def start(self) -> None:
        await self.client.start()
        self._started.set()

    async def stop(self) -> None:
        self._started.clear()
        await self.vendor.close()
        await self.client.stop()

    async def lookup(self, msisdn: str, lookup_id: str) -> HlrAnswer:
        if self.waiting >= self.max_queue:
            raise ProviderError("provider queue full", "throttled")
        deadline = asyncio.get_running_loop().time() + self.max_lookup_s
        client = self.client
        name = self.name

        async def exchange(req: Request) -> HttpAnswer:
            try:
                return await client.call(
                    req.method, req.path, req.body, req.headers, deadline, req.final
                )
            except HttpCallFailed as exc:
                raise ProviderError(f"{name}: {exc}", exc.outcome) from None

        self.waiting += 1
        try:
            return await self.vendor.look_up(exchange, msisdn, lookup_id)
        finally:
            self.waiting -= 1
