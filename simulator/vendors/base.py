"""What every vendor imitation shares: the faults a test queues, what it counts, and
requests kept hanging until the simulator stops."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import NoReturn

from aiohttp import web

from ..scenario import Answer, Scenario


class Releasable:
    """Answers from the scenario, and requests kept hanging until the simulator stops."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._released = asyncio.Event()  # set at stop: hanging requests end

    def release(self) -> None:
        """End the requests kept hanging (the simulator stops)."""
        self._released.set()

    async def hang(self) -> NoReturn:
        """Answer nothing until the simulator stops (then a 503 nobody reads)."""
        await self._released.wait()
        raise web.HTTPServiceUnavailable

    async def answer(self, digits: str) -> Answer:
        """The scenario's answer, after its latency; its never-answering numbers hang."""
        answer = self.scenario.answer(digits)
        if answer.fault == "never_answer":
            await self.hang()
        if answer.latency_s:
            await asyncio.sleep(answer.latency_s)
        return answer


class Imitation(Releasable):
    """One API with one queue of faults and a count of requests."""

    def __init__(self, scenario: Scenario) -> None:
        super().__init__(scenario)
        # "throttle", "server_error", "malformed", "partial", "hang", and each
        # vendor's own; one is taken per authentic request.
        self.faults: deque[str] = deque(maxlen=1000)
        self.retry_after = "1"  # what a "throttle" answer asks for, seconds
        self.requests = 0
        self.refused = 0  # by the credentials check

    def next_fault(self) -> str | None:
        return self.faults.popleft() if self.faults else None
