"""What the HTTP vendor tests share: the demo scenario's numbers, an imitation served
on 127.0.0.1, and what a user of hlrd sees of an adapter's answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from aiohttp import web

from hlrd.domain.derive import derive
from hlrd.domain.numbers import normalize
from hlrd.domain.result import HlrAnswer, LookupResult, Timings
from hlrd.upstream.http.provider import HttpProvider
from simulator.http_api import make_app
from simulator.scenario import Scenario

# config/scenarios/demo.toml
AT_HOME = "48600000001"
GERMANY = "48600000002"
EGYPT = "48600000003"
PORTED = "48600000004"
ABSENT = "48600000005"
UNKNOWN_SUBSCRIBER = "48600000006"
BARRED = "48600000007"
NOT_PROVISIONED = "48600000008"
SYSTEM_FAILURE = "48600000009"
NEVER_ANSWERS = "48600000090"


class Served(Protocol):
    @property
    def scenario(self) -> Scenario: ...

    def add_routes(self, app: web.Application) -> None: ...

    def release(self) -> None: ...


@asynccontextmanager
async def serving(imitation: Served) -> AsyncIterator[int]:
    """The imitation on the simulator's HTTP app, on a free port (yielded)."""
    runner = web.AppRunner(make_app(imitation.scenario, [imitation.add_routes]), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        imitation.release()
        await runner.cleanup()


@asynccontextmanager
async def started(provider: HttpProvider) -> AsyncIterator[HttpProvider]:
    """The provider started, and stopped after (its pool closed, lookups failed)."""
    await provider.start()
    try:
        yield provider
    finally:
        await provider.stop()


def seen(number: str, answer: HlrAnswer, provider: str, return_imsi: bool = False) -> LookupResult:
    """What a user of hlrd sees of an adapter's answer for this number."""
    return derive(
        normalize("+" + number.removeprefix("+")),
        answer,
        return_imsi,
        lookup_id="l1",
        provider=provider,
        transport="http",
        timings=Timings(),
    )
