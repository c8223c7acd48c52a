"""A provider reached over HTTP: the vendor-neutral half of every HTTP adapter.

The vendor's module says how a lookup is asked (method, path, body, headers: a
`Request`) and what its answer means (`read` -> HlrAnswer, or ProviderError with the
lookup's outcome); this class does the rest the same way for all of them: the
client's pool, rate, retries and deadline, and the Provider interface the lookup
service and the router use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ...config import HttpProviderConfig
from ...domain.result import HlrAnswer
from ..base import ProviderError
from .client import HttpCallFailed, ProviderClient
from .retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # below the provider's base_url
    body: bytes | None
    headers: Callable[[], dict[str, str]]  # called per attempt (a signature is per time)


class Vendor(Protocol):
    def request(self, msisdn: str, lookup_id: str) -> Request: ...

    def read(self, status: int, body: bytes, msisdn: str) -> HlrAnswer:
        """The answer, or ProviderError (outcome "failed" or "throttled") for an answer
        that is not one: the vendor's error shapes, malformed or partial bodies."""
        ...


class HttpProvider:
    transport = "http"

    def __init__(self, cfg: HttpProviderConfig, vendor: Vendor, max_queue: int = 10_000) -> None:
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
        await self.client.stop()

    async def lookup(self, msisdn: str, lookup_id: str) -> HlrAnswer:
        if self.waiting >= self.max_queue:
            raise ProviderError("provider queue full", "throttled")
        req = self.vendor.request(msisdn, lookup_id)
        deadline = asyncio.get_running_loop().time() + self.max_lookup_s
        self.waiting += 1
        try:
            answer = await self.client.call(req.method, req.path, req.body, req.headers, deadline)
        except HttpCallFailed as exc:
            raise ProviderError(f"{self.name}: {exc}", exc.outcome) from None
        finally:
            self.waiting -= 1
        return self.vendor.read(answer.status, answer.body, msisdn)
