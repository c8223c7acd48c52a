"""The SQLite store with real files: what a restart, an erasure or a full disk queue
does to the answers a dialer gets back."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from hlrd.config import StoreConfig
from hlrd.store import AnswerStore, StoreError, open_store
from hlrd.store.sqlite import FILE_NAME, SqliteStore

from .store_tools import DAY, KEYER, T0, Clock, Ticker, answer, file_mode, file_names, store_config


@pytest.fixture
def cfg(tmp_path: Path) -> StoreConfig:
    return store_config(tmp_path)


@pytest.fixture
async def store(cfg: StoreConfig) -> AsyncIterator[AnswerStore]:
    s = await open_store(cfg, clock=Clock(), retention_interval_s=None)
    yield s
    await s.close()


def db_path(cfg: StoreConfig) -> Path:
    return Path(cfg.data_dir) / FILE_NAME


@contextlib.contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """Another process's write transaction: our writer must wait for it."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


async def test_an_answer_put_is_read_back_as_it_was(store: AnswerStore) -> None:
    a = answer(cost=0.012, currency="EUR")
    store.put(a)
    await store.flush()
    assert await store.get(a.key) == a
    assert await store.get(KEYER.key("48601999999")) is None


async def test_a_newer_answer_replaces_the_old_one(store: AnswerStore) -> None:
    store.put(answer(kind="absent", payload=b"old"))
    store.put(answer(checked_at=T0 + 60, kind="live", payload=b"new"))
    await store.flush()
    got = await store.get(KEYER.key("48601000001"))
    assert got is not None
    assert (got.checked_at, got.kind, got.payload) == (T0 + 60, "live", b"new")
    assert (await store.stats()).answers == 1


async def test_a_batch_of_many_inserts_keeps_every_answer_and_the_last_of_each(
    store: AnswerStore,
) -> None:
    """Rows go in many to a statement: none may be lost at a statement's edge, and a
    number answered twice in one batch keeps its later answer."""
    numbers = [f"4860100{i:04d}" for i in range(150)]
    for n in numbers:
        store.put(answer(n, payload=b"first"))
    store.put(answer(numbers[100], checked_at=T0 + 5, payload=b"second"))
    await store.flush()
    assert (await store.stats()).answers == 150
    for n in numbers:
        got = await store.get(KEYER.key(n))
        assert got is not None and got.payload == (b"second" if n == numbers[100] else b"first")


async def test_delete_removes_one_number_and_nothing_else(store: AnswerStore) -> None:
    a, b = answer("48601000001"), answer("48601000002")
    store.put(a)
    store.put(b)
    await store.flush()
    assert await store.delete(a.key) == 1
    assert await store.get(a.key) is None
    assert await store.get(b.key) == b
    assert await store.delete(a.key) == 0


async def test_an_erasure_wins_over_an_answer_queued_before_it(cfg: StoreConfig) -> None:
    store = await open_store(cfg, retention_interval_s=None)
    a = answer()
    store.put(a)  # still queued: no flush
    assert await store.delete(a.key) == 1
    await store.close()
    store = await open_store(cfg, retention_interval_s=None)
    assert await store.get(a.key) is None
    await store.close()


async def test_purge_older_than_keeps_newer_answers(store: AnswerStore) -> None:
    old = [answer(f"4860100000{i}", checked_at=T0 - DAY) for i in range(3)]
    new = [answer(f"4860200000{i}", checked_at=T0) for i in range(2)]
    for a in old + new:
        store.put(a)
    assert await store.purge(T0 - 1) == 3
    assert [await store.get(a.key) for a in old] == [None] * 3
    assert [await store.get(a.key) for a in new] == new
    assert await store.purge(None) == 2
    assert (await store.stats()).answers == 0


async def test_purge_in_small_chunks_removes_every_row(cfg: StoreConfig) -> None:
    store = SqliteStore(db_path(cfg), clock=Clock(), retention_interval_s=None, purge_chunk=7)
    await store.start()
    for i in range(50):
        store.put(answer(f"486010{i:05d}", checked_at=T0 - 100 + i))
    assert await store.purge(T0 - 60) == 40  # checked_at T0-100 .. T0-61
    assert (await store.stats()).answers == 10
    assert await store.purge(None) == 10
    assert (await store.stats()).answers == 0
    await store.close()


async def test_a_put_after_a_purge_survives_it(store: AnswerStore) -> None:
    store.put(answer("48601000001"))
    purge = asyncio.ensure_future(store.purge(None))
    await asyncio.sleep(0)  # the purge is queued
    later = answer("48601000002")
    store.put(later)
    assert await purge == 1
    await store.flush()
    assert await store.get(later.key) == later


async def test_retention_purges_answers_as_they_pass_it(cfg: StoreConfig) -> None:
    clock, ticker = Clock(), Ticker()
    store = await open_store(
        dataclasses.replace(cfg, retention_days=30),
        clock=clock,
        retention_interval_s=600,
        sleep=ticker.sleep,
    )
    assert await ticker.first_pass() == 600
    older, newer = answer("48601000001", checked_at=T0 - 10 * DAY), answer("48601000002")
    store.put(older)
    store.put(newer)
    await store.flush()

    clock.now = T0 + 19 * DAY  # older is 29 days old: kept
    await ticker.tick()
    assert await store.get(older.key) == older

    clock.now = T0 + 25 * DAY  # older is 35 days old, newer 25
    with capture_logs() as logs:
        await ticker.tick()
    assert await store.get(older.key) is None
    assert await store.get(newer.key) == newer
    assert {"event": "store.retention_purged", "rows": 1, "log_level": "info"} in logs
    await store.close()


async def test_retention_at_start_purges_what_aged_while_stopped(cfg: StoreConfig) -> None:
    store = await open_store(cfg, clock=Clock(), retention_interval_s=None)
    a = answer()
    store.put(a)
    await store.close()

    ticker = Ticker()
    store = await open_store(
        cfg, clock=Clock(T0 + 31 * DAY), retention_interval_s=600, sleep=ticker.sleep
    )
    await ticker.first_pass()
    assert await store.get(a.key) is None
    await store.close()


async def test_answers_survive_a_restart(cfg: StoreConfig) -> None:
    answers = [answer(f"4860100{i:04d}", kind="live" if i % 2 else "absent") for i in range(300)]
    store = await open_store(cfg, retention_interval_s=None)
    for a in answers:
        store.put(a)
    await store.close()  # no flush: close writes what is queued

    store = await open_store(cfg, clock=Clock(), retention_interval_s=None)
    assert [await store.get(a.key) for a in answers] == answers
    stats = await store.stats()
    assert (stats.answers, stats.by_kind) == (300, {"live": 150, "absent": 150})
    await store.close()


async def test_a_full_write_queue_drops_the_newest_and_counts_them(cfg: StoreConfig) -> None:
    store = await open_store(
        dataclasses.replace(cfg, write_queue=10, write_batch=1), retention_interval_s=None
    )
    answers = [answer(f"4860100{i:04d}") for i in range(20)]
    with write_lock(db_path(cfg)):  # the writer takes one row and then waits
        for a in answers:
            store.put(a)  # never waits
        stats = await store.stats()
        assert stats.writes_queued <= 10
    dropped = stats.writes_dropped
    assert dropped in (9, 10)  # 10 queued, plus the one the writer may have taken
    await store.flush()
    kept = 20 - dropped
    assert [await store.get(a.key) for a in answers[:kept]] == answers[:kept]
    assert [await store.get(a.key) for a in answers[kept:]] == [None] * dropped
    assert (await store.stats()).answers == kept
    await store.close()


async def test_reads_are_answered_while_writes_wait(cfg: StoreConfig) -> None:
    store = await open_store(cfg, retention_interval_s=None)
    kept = answer("48601000001")
    store.put(kept)
    await store.flush()
    queued = answer("48601000002")
    with write_lock(db_path(cfg)):
        store.put(queued)
        assert await store.get(kept.key) == kept
        assert await store.get(queued.key) is None  # not written yet, and nobody waited
    await store.flush()
    assert await store.get(queued.key) == queued
    await store.close()


async def test_concurrent_reads_during_writes_see_whole_answers(store: AnswerStore) -> None:
    first = [answer(f"4860100{i:04d}", payload=b"A" * 300) for i in range(200)]
    second = [dataclasses.replace(a, checked_at=T0 + 1, payload=b"B" * 300) for a in first]
    fresh = [answer(f"4860200{i:04d}") for i in range(2000)]
    for a in first:
        store.put(a)
    await store.flush()

    async def write() -> None:
        for i in range(0, 2000, 100):
            for a in fresh[i : i + 100]:
                store.put(a)
            store.put(second[i // 10])
            await asyncio.sleep(0)  # let the readers in between bursts

    async def read(offset: int) -> None:
        for i in range(400):
            j = (i + offset) % 200
            assert await store.get(first[j].key) in (first[j], second[j])

    await asyncio.gather(write(), read(0), read(100), read(50))
    await store.flush()
    assert [await store.get(a.key) for a in fresh[::97]] == fresh[::97]
    assert (await store.stats()).answers == 2200


async def test_a_bad_row_costs_only_itself(store: AnswerStore) -> None:
    good = [answer(f"4860100000{i}") for i in range(4)]
    nan = answer("48601000008", checked_at=math.nan)  # stored as NULL: refused by SQLite
    surrogate = answer("48601000009", provider="sim\ud800")  # cannot even be bound
    for a in (*good[:2], surrogate, nan, *good[2:]):
        store.put(a)
    with capture_logs() as logs:
        await store.flush()  # the writer hands its log line to the loop before this
    assert [await store.get(a.key) for a in good] == good
    assert [await store.get(nan.key), await store.get(surrogate.key)] == [None, None]
    stats = await store.stats()
    assert (stats.answers, stats.writes_failed) == (4, 2)
    assert [(e["event"], e["rows"]) for e in logs] == [("store.write_failed", 2)]
    store.put(answer("48601000010"))  # the writer is still there
    await store.flush()
    assert (await store.stats()).answers == 5


async def test_a_database_locked_too_long_fails_the_batch_not_the_caller(
    cfg: StoreConfig,
) -> None:
    store = SqliteStore(db_path(cfg), clock=Clock(), retention_interval_s=None, busy_timeout_s=0.05)
    await store.start()
    a = answer()
    with write_lock(db_path(cfg)), capture_logs() as logs:
        store.put(a)
        await store.flush()  # returns once the writer gave up on the lock
    stats = await store.stats()
    assert (stats.writes_failed, stats.answers) == (1, 0)
    assert [(e["event"], e["error"]) for e in logs] == [
        ("store.write_failed", "database is locked")
    ]
    store.put(a)
    await store.flush()
    assert await store.get(a.key) == a
    await store.close()


async def test_stats_count_rows_fresh_providers_and_kinds(store: AnswerStore) -> None:
    store.put(answer("48601000001", checked_at=T0 - 7200, ttl=3600, provider="a", kind="live"))
    store.put(answer("48601000002", checked_at=T0 - 60, ttl=3600, provider="a", kind="absent"))
    store.put(answer("48601000003", checked_at=T0 - 30, ttl=3600, provider="b", kind="live"))
    await store.flush()
    stats = await store.stats()  # the store's clock says T0
    assert (stats.answers, stats.fresh) == (3, 2)
    assert (stats.oldest_checked_at, stats.newest_checked_at) == (T0 - 7200, T0 - 30)
    assert stats.by_provider == {"a": 2, "b": 1}
    assert stats.by_kind == {"live": 2, "absent": 1}
    assert stats.bytes_on_disk > 0
    assert (stats.writes_dropped, stats.writes_queued, stats.writes_failed) == (0, 0, 0)


async def test_a_key_that_is_not_a_hash_is_refused(store: AnswerStore, cfg: StoreConfig) -> None:
    """A caller that forgets the keyer must not put a plaintext number in the file."""
    plain = dataclasses.replace(answer(), key=b"48601000001")
    with pytest.raises(ValueError, match="32-byte keyed hashes"):
        store.put(plain)
    with pytest.raises(ValueError):
        await store.get(b"48601000001")
    with pytest.raises(ValueError):
        await store.delete(b"48601000001")
    await store.flush()
    assert (await store.stats()).answers == 0


async def test_the_store_files_are_private(store: AnswerStore, cfg: StoreConfig) -> None:
    store.put(answer())
    await store.flush()
    data = Path(cfg.data_dir)
    assert file_mode(data) == 0o700
    for name in (FILE_NAME, FILE_NAME + "-wal", FILE_NAME + "-shm"):
        assert file_mode(data / name) == 0o600, name


async def test_a_closed_store_refuses_reads_and_drops_writes(cfg: StoreConfig) -> None:
    store = await open_store(cfg, retention_interval_s=None)
    await store.close()
    store.put(answer())  # dropped, never raises: a lookup finishing late is not an error
    with pytest.raises(StoreError, match="closed"):
        await store.stats()
    with pytest.raises(StoreError, match="closed"):
        await store.get(answer().key)
    with pytest.raises(StoreError, match="closed"):
        await store.flush()
    await store.close()  # twice is harmless


async def test_close_leaves_no_wal_behind(cfg: StoreConfig) -> None:
    store = await open_store(cfg, retention_interval_s=None)
    store.put(answer())
    await store.flush()
    await store.get(answer().key)  # a reader connection is open too
    assert FILE_NAME + "-wal" in file_names(Path(cfg.data_dir))
    await store.close()
    assert FILE_NAME + "-wal" not in file_names(Path(cfg.data_dir))


async def test_an_unknown_backend_is_refused(cfg: StoreConfig) -> None:
    with pytest.raises(StoreError, match=r"store\.backend: unknown backend 'redis'"):
        await open_store(dataclasses.replace(cfg, backend="redis"))
