"""What the store tests share: a config in a temporary directory, answers, a ticker."""

from __future__ import annotations

import asyncio
import dataclasses
import stat
from pathlib import Path
from typing import Any

from hlrd.config import StoreConfig
from hlrd.store import NumberKeyer, StoredAnswer

T0 = 1_790_000_000.0  # a fixed "now": tests move time by hand
DAY = 86400.0
KEYER = NumberKeyer(bytes(range(32)))


def store_config(tmp_path: Path, **overrides: Any) -> StoreConfig:
    return dataclasses.replace(StoreConfig(data_dir=str(tmp_path / "data")), **overrides)


def answer(
    number: str = "48601000001",
    *,
    checked_at: float = T0,
    ttl: float = 3600.0,
    provider: str = "sim",
    kind: str = "live",
    payload: bytes = b'{"status":"live","zone":"DOMESTIC"}',
    cost: float = 0.01,
    currency: str = "EUR",
) -> StoredAnswer:
    return StoredAnswer(
        KEYER.key(number), checked_at, checked_at + ttl, provider, kind, payload, cost, currency
    )


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Ticker:
    """The retention task's sleep: each interval ends when the test says so."""

    def __init__(self) -> None:
        self.asleep: asyncio.Queue[float] = asyncio.Queue()
        self._go: asyncio.Queue[None] = asyncio.Queue()

    async def sleep(self, seconds: float) -> None:
        self.asleep.put_nowait(seconds)
        await self._go.get()

    async def first_pass(self) -> float:
        """Wait until the pass made at open is over; the interval it sleeps."""
        return await asyncio.wait_for(self.asleep.get(), 10)

    async def tick(self) -> None:
        """End the interval and wait until the next pass is over."""
        self._go.put_nowait(None)
        await asyncio.wait_for(self.asleep.get(), 10)


def file_mode(path: Path) -> int:
    """Permission bits (a helper: async tests do their file reading through these)."""
    return stat.S_IMODE(path.stat().st_mode)


def file_names(directory: Path) -> set[str]:
    """What the directory holds; empty when it does not exist."""
    return {p.name for p in directory.iterdir()} if directory.exists() else set()
