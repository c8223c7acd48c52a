"""Which engine keeps answers: chosen by `store.backend`, so a shared engine (Redis,
PostgreSQL) for several instances is one more entry here, not a change to the cache."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from ..config import StoreConfig
from .base import AnswerStore, StoreError
from .sqlite import FILE_NAME, Clock, Sleep, SqliteStore

DAY_S = 86400.0
Opener = Callable[[StoreConfig, Clock, float | None, Sleep, bytes | None], Awaitable[AnswerStore]]


async def _sqlite(
    cfg: StoreConfig,
    clock: Clock,
    retention_interval_s: float | None,
    sleep: Sleep,
    key_check: bytes | None,
) -> AnswerStore:
    store = SqliteStore(
        Path(cfg.data_dir) / FILE_NAME,
        write_batch=cfg.write_batch,
        write_queue=cfg.write_queue,
        retention_s=cfg.retention_days * DAY_S,
        retention_interval_s=retention_interval_s,
        clock=clock,
        sleep=sleep,
        key_check=key_check,
    )
    await store.start()
    return store


BACKENDS: dict[str, Opener] = {"sqlite": _sqlite}


async def open_store(
    cfg: StoreConfig,
    *,
    clock: Clock = time.time,
    retention_interval_s: float | None = 3600.0,
    sleep: Sleep = asyncio.sleep,
    key_check: bytes | None = None,
) -> AnswerStore:
    """Open the configured store; its file work happens off the event loop.

    `retention_interval_s`: how often answers older than `retention_days` are purged
    (the first pass runs at once); None turns retention off (a one-shot CLI command).
    `clock` and `sleep` are injectable so a test can move time instead of waiting.
    `key_check` (NumberKeyer.check): a store written under another hash key is
    refused; hlrd's daemon and CLI always pass it.
    Raises StoreError with a message for the operator.
    """
    opener = BACKENDS.get(cfg.backend)
    if opener is None:
        raise StoreError(f"store.backend: unknown backend {cfg.backend!r}")
    return await opener(cfg, clock, retention_interval_s, sleep, key_check)
