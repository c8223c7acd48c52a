"""SQLite, the embedded store: one file in the data directory, never touched by the loop.

One writer thread owns the only writing connection. put() only appends to a bounded
deque and wakes it (a few µs on the caller's side); the writer turns whatever is
queued when it wakes into one transaction of up to `write_batch` rows, so a burst
costs one commit and a lone answer is written at once: no timer adds latency to
flush(). Deletes, purges and flushes travel through the same deque, so they apply in
the order they were asked for: an erasure cannot be undone by an answer queued
before it. Reads run on read-only connections in a small pool of their own; in WAL
mode they never wait for the writer, and the writer never waits for them.

Logging happens on the event loop only (log lines are batched per loop turn and that
batcher is not thread-safe): the threads hand their events to the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import operator
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import structlog

from . import schema
from .base import KEY_BYTES, StoredAnswer, StoreError, StoreStats
from .readers import ReaderPool, resolve

log = structlog.get_logger("hlrd")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")

FILE_NAME = "hlrd.sqlite3"
# Each answer lands on a random page of the key index, so a batch dirties about a page
# per row; checkpointing every 10,000 pages (~40 MB of WAL) rather than SQLite's 1,000
# copies a page rewritten many times once, and a larger page cache re-reads less:
# together -30% of the writer's CPU per answer at 300,000 answers (bench/store.py).
CHECKPOINT_PAGES = 10_000
# How long the writer gathers answers before a commit (controls and full batches do
# not wait). Answers arrive one by one and a commit costs more than many rows: at
# ~1,900 live lookups/s the writer's CPU per answer was 27-39 µs committing at once,
# 15-22 µs gathering 100 ms (bench: http_check; a bulk batch costs ~13). The answers
# are in memory meanwhile; a crash loses at most this much of the store's copy.
WRITE_LINGER_S = 0.1
WRITER_CACHE_KIB = 32 * 1024
WAL_LIMIT_BYTES = 64 * 1024 * 1024  # the WAL is cut back to this after a checkpoint
MAX_WAITING_CONTROLS = 64  # deletes, purges and flushes queued for the writer
MAX_WAITING_READS = 256  # reads handed to the reader threads at once

_COLUMNS = "key, checked_at, expires_at, provider, kind, payload, cost, currency"
_ON_CONFLICT = (
    "ON CONFLICT (key) DO UPDATE SET checked_at = excluded.checked_at, "
    "expires_at = excluded.expires_at, provider = excluded.provider, kind = excluded.kind, "
    "payload = excluded.payload, cost = excluded.cost, currency = excluded.currency"
)  # an update in place: INSERT OR REPLACE deletes and re-inserts, ~1.7x the CPU
# Rows per INSERT. executemany() steps once per row, and each step lets go of the GIL
# and takes it back: with the event loop busy on the other thread, two contended
# hand-overs per row slowed everything the loop did by half again (a daemon writing
# 100k answers spent ~1.5x the CPU per lookup of one that did not). One statement of
# many rows is one step.
ROWS_PER_INSERT = 64  # x 8 values: 512 of SQLite's 32,766 parameters
_UPSERTS = {
    n: f"INSERT INTO answers ({_COLUMNS}) VALUES "
    + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * n)
    + " "
    + _ON_CONFLICT
    for n in range(1, ROWS_PER_INSERT + 1)
}
_UPSERT = _UPSERTS[1]
_GET = f"SELECT {_COLUMNS} FROM answers WHERE key = ?"
_DELETE = "DELETE FROM answers WHERE key = ?"
_PURGE_BEFORE = (
    "DELETE FROM answers WHERE id IN "
    "(SELECT id FROM answers WHERE checked_at < ? ORDER BY checked_at LIMIT ?)"
)
_PURGE_ALL = "DELETE FROM answers WHERE id IN (SELECT id FROM answers LIMIT ?)"
_STATS = (
    "SELECT provider, kind, count(*), sum(expires_at > ?), min(checked_at), max(checked_at) "
    "FROM answers GROUP BY provider, kind"
)
_row = operator.attrgetter(
    "key", "checked_at", "expires_at", "provider", "kind", "payload", "cost", "currency"
)


def _upsert_all(conn: sqlite3.Connection, batch: list[StoredAnswer]) -> sqlite3.Cursor:
    cur: sqlite3.Cursor | None = None
    for i in range(0, len(batch), ROWS_PER_INSERT):
        rows = batch[i : i + ROWS_PER_INSERT]
        cur = conn.execute(_UPSERTS[len(rows)], [value for row in rows for value in _row(row)])
    assert cur is not None  # a batch is never empty
    return cur


@dataclass(slots=True, eq=False)
class _Control:
    action: str  # "flush" | "delete" | "purge" | "stop"
    future: asyncio.Future[int]
    key: bytes = b""
    before: float | None = None


class SqliteStore:
    """An AnswerStore in <data_dir>/hlrd.sqlite3: construct it, then `await start()`,
    which opens (creates, migrates) the file on the writer thread or raises StoreError.

    `retention_interval_s`: how often rows older than `retention_s` are purged (None:
    never, e.g. for a CLI that opens the store for one command). `key_check`: the hash
    key's fingerprint (NumberKeyer.check); a file written under another key is
    refused. None: not checked (a test of the store alone).
    """

    def __init__(
        self,
        path: Path,
        *,
        write_batch: int = 500,
        write_queue: int = 100_000,
        retention_s: float = 30 * 86400.0,
        retention_interval_s: float | None = 3600.0,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        purge_chunk: int = 5_000,
        readers: int = 2,
        busy_timeout_s: float = 5.0,
        key_check: bytes | None = None,
    ) -> None:
        self.path = path
        self._batch = write_batch
        self._queue_limit = write_queue
        self._retention_s = retention_s
        self._retention_interval_s = retention_interval_s
        self._clock = clock
        self._sleep = sleep
        self._purge_chunk = purge_chunk
        self._busy_timeout_s = busy_timeout_s
        self._ops: deque[StoredAnswer | _Control] = deque()
        self._wake = threading.Event()
        self._key_check = key_check
        # Set with a control (flush, delete, purge, stop) or a full batch: the writer
        # stops lingering for more answers and writes now.
        self._urgent = threading.Event()
        # Each counter has one writing thread: the loop the first three, the writer
        # the last two; queued = enqueued - taken.
        self._enqueued = 0
        self._dropped = 0
        self._closed = False
        self._taken = 0
        self._failed = 0
        self._dead = False  # the writer thread stopped on an unexpected error
        self._in_hand: _Control | None = None  # taken from the queue, not yet carried out
        self._readers = ReaderPool(self._connect_reader, readers, MAX_WAITING_READS)
        self._control_slots = asyncio.Semaphore(MAX_WAITING_CONTROLS)
        self._retention: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the AnswerStore interface ----------------------------------------------------

    async def get(self, key: bytes) -> StoredAnswer | None:
        _check_key(key)
        row = await self._read(self._get_sync, key)
        return None if row is None else StoredAnswer(*row)

    async def keys_after(self, after: bytes, limit: int) -> list[bytes]:
        """Stored keys in order, the first `limit` above `after` (b"" from the start):
        pages, so reading a million keys never holds one read transaction for long."""
        return await self._read(self._keys_sync, after, limit)

    def put(self, answer: StoredAnswer) -> None:
        _check_key(answer.key)
        if self._closed or self._enqueued - self._taken >= self._queue_limit:
            self._dropped += 1
            return
        self._ops.append(answer)
        self._enqueued += 1
        if not self._wake.is_set():
            self._wake.set()
        if len(self._ops) >= self._batch and not self._urgent.is_set():
            self._urgent.set()

    async def delete(self, key: bytes) -> int:
        _check_key(key)
        return await self._control("delete", key=key)

    async def purge(self, checked_before: float | None) -> int:
        return await self._control("purge", before=checked_before)

    async def flush(self) -> None:
        await self._control("flush")

    async def stats(self) -> StoreStats:
        rows, size = await self._read(self._stats_sync, self._clock())
        by_provider: dict[str, int] = {}
        by_kind: dict[str, int] = {}
        answers = fresh = 0
        oldest: float | None = None
        newest: float | None = None
        for provider, kind, count, fresh_count, lo, hi in rows:
            answers += count
            fresh += fresh_count
            by_provider[provider] = by_provider.get(provider, 0) + count
            by_kind[kind] = by_kind.get(kind, 0) + count
            oldest = lo if oldest is None else min(oldest, lo)
            newest = hi if newest is None else max(newest, hi)
        return StoreStats(
            answers=answers,
            fresh=fresh,
            oldest_checked_at=oldest,
            newest_checked_at=newest,
            bytes_on_disk=size,
            by_provider=by_provider,
            by_kind=by_kind,
            writes_dropped=self._dropped,
            writes_queued=self._enqueued - self._taken,
            writes_failed=self._failed,
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True  # puts are dropped and reads refused from here on
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
        # Readers go first: the writer, closing last, checkpoints and removes the WAL.
        await self._readers.close()
        thread = self._thread
        if thread is not None and thread.is_alive():
            stop = self._loop_().create_future()
            self._ops.append(_Control("stop", stop))
            self._urgent.set()
            self._wake.set()
            await stop
            await asyncio.to_thread(thread.join)
        log.info("store.closed", path=str(self.path))

    # -- start-up -----------------------------------------------------------------------

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[int] = loop.create_future()
        self._thread = threading.Thread(
            target=self._writer_main, args=(ready,), name="hlrd-store-writer", daemon=True
        )
        self._thread.start()
        try:
            found = await ready
        except asyncio.CancelledError:  # opening was given up: let the thread go
            self._ops.append(_Control("stop", loop.create_future()))
            self._urgent.set()
            self._wake.set()
            raise
        self._readers.start(loop)
        if found == 0:
            log.info("store.created", path=str(self.path), schema=schema.VERSION)
        elif found != schema.VERSION:
            log.info(
                "store.migrated",
                path=str(self.path),
                from_version=found,
                to_version=schema.VERSION,
            )
        if self._retention_interval_s is not None:
            self._retention = loop.create_task(self._retain(), name="store-retention")

    def _connect_writer(self) -> tuple[sqlite3.Connection, int]:
        path = self.path
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{path.parent}: cannot create the data directory ({exc.strerror}): "
                "point store.data_dir (or HLRD_DATA_DIR) elsewhere"
            ) from exc
        try:
            schema.check_header(path)
            # Created 0600 before SQLite sees it: its -wal and -shm copy these bits.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError as exc:
            raise StoreError(f"{path}: {exc.strerror}") from exc
        conn = sqlite3.connect(
            path,
            timeout=self._busy_timeout_s,
            isolation_level=None,
            check_same_thread=True,
            cached_statements=2 * ROWS_PER_INSERT,  # every INSERT size stays prepared
        )
        try:
            schema.check_version(conn, path)  # before anything is written to the file
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"{path}: SQLite cannot use WAL there (journal mode {mode})")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints
            # Deleted rows are overwritten, not left in free space: an erased number's
            # answer must not stay readable in the file (DESIGN: erasure leaves nothing).
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")
            conn.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
            conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
            found = schema.migrate(conn, path)
            if self._key_check is not None:
                schema.check_key(conn, path, self._key_check)
        except sqlite3.DatabaseError as exc:
            conn.close()
            if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
                raise schema.not_a_database(path) from exc
            raise StoreError(f"{path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return conn, found

    # -- the writer thread ------------------------------------------------------------

    def _writer_main(self, ready: asyncio.Future[int]) -> None:
        try:
            conn, found = self._connect_writer()
        except BaseException as exc:
            self._settle(ready, error=exc)
            return
        self._settle(ready, found)
        try:
            self._write_loop(conn)
        except BaseException as exc:  # a bug: say so, fail who waits, leave the loop alive
            self._dead = True  # first: a control queued after the drain below sees it
            self._log("error", "store.writer_failed", error=repr(exc))
            conn.close()
            failed = StoreError(f"{self.path}: the store's writer failed")
            if self._in_hand is not None:
                self._settle(self._in_hand.future, error=failed)
            while self._ops:
                op = self._ops.popleft()
                if isinstance(op, _Control):
                    self._settle(op.future, error=failed)

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        ops = self._ops
        limit = self._batch
        while True:
            self._wake.wait()
            # Answers come one by one; each commit costs more than several rows, and
            # the answers are in memory meanwhile. Gather for up to WRITE_LINGER_S.
            self._urgent.wait(WRITE_LINGER_S)
            self._urgent.clear()
            self._wake.clear()  # before draining: a put after this wakes the next round
            while ops:
                batch: list[StoredAnswer] = []
                control: _Control | None = None
                while ops and len(batch) < limit:
                    op = ops.popleft()
                    if isinstance(op, _Control):
                        control = self._in_hand = op
                        break
                    batch.append(op)
                if batch:
                    self._taken += len(batch)
                    self._write(conn, batch)
                if control is not None:
                    self._in_hand = None
                    if self._run(conn, control):
                        return

    def _write(self, conn: sqlite3.Connection, batch: list[StoredAnswer]) -> None:
        try:
            self._transaction(conn, lambda: _upsert_all(conn, batch))
        except sqlite3.OperationalError as exc:  # the database's trouble: disk, lock, I/O
            self._failed += len(batch)
            self._log("warning", "store.write_failed", rows=len(batch), error=str(exc))
        except Exception:  # a row's trouble (a NaN time, a type SQLite cannot bind)
            self._write_rows(conn, batch)

    def _write_rows(self, conn: sqlite3.Connection, batch: list[StoredAnswer]) -> None:
        """One bad row (a NaN time, a wrong type) costs that row, not its batch."""
        failed = 0
        for answer in batch:
            try:
                self._transaction(conn, functools.partial(conn.execute, _UPSERT, _row(answer)))
            except Exception:
                failed += 1
        if failed:
            self._failed += failed
            self._log("warning", "store.write_failed", rows=failed, error="rows refused")

    def _run(self, conn: sqlite3.Connection, op: _Control) -> bool:
        """Carry out a control; True when the writer must stop."""
        if op.action == "stop":
            conn.close()
            self._settle(op.future, 0)
            return True
        try:
            if op.action == "delete":
                result = self._transaction(conn, lambda: conn.execute(_DELETE, (op.key,))).rowcount
                # The WAL still holds the pages as they were: copy the zeroed ones back
                # and empty it, so no older frame keeps the erased row.
                busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                if busy:  # a reader outlasted the busy timeout: the next delete retries
                    self._log("warning", "store.erase_checkpoint_busy")
            elif op.action == "purge":
                result = self._purge(conn, op.before)
            else:
                result = 0  # flush: everything queued before it is committed
        except Exception as exc:
            self._settle(op.future, error=StoreError(f"{self.path}: {exc}"))
        else:
            self._settle(op.future, result)
        return False

    def _purge(self, conn: sqlite3.Connection, before: float | None) -> int:
        """Chunk by chunk, a transaction each: the write lock is never held long, so
        another process (the CLI) gets its turn. Our own puts wait in the queue: a put
        queued after a purge must survive it."""
        chunk = self._purge_chunk
        removed = 0
        while True:
            if before is None:
                cur = self._transaction(conn, lambda: conn.execute(_PURGE_ALL, (chunk,)))
            else:
                cur = self._transaction(conn, lambda: conn.execute(_PURGE_BEFORE, (before, chunk)))
            removed += cur.rowcount
            if cur.rowcount < chunk:
                return removed

    @staticmethod
    def _transaction(
        conn: sqlite3.Connection, work: Callable[[], sqlite3.Cursor]
    ) -> sqlite3.Cursor:
        conn.execute("BEGIN IMMEDIATE")
        try:
            cur = work()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return cur

    # -- reads --------------------------------------------------------------------------

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreError(f"{self.path}: the store is closed")
        try:
            return await self._readers.run(fn, *args)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    def _connect_reader(self) -> sqlite3.Connection:
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        return sqlite3.connect(uri, uri=True, timeout=self._busy_timeout_s, isolation_level=None)

    @staticmethod
    def _get_sync(conn: sqlite3.Connection, key: bytes) -> tuple[Any, ...] | None:
        # fetchall: a statement left unfinished keeps its read transaction open, and
        # an open reader stops checkpoints from recycling the WAL.
        rows = conn.execute(_GET, (key,)).fetchall()
        return tuple(rows[0]) if rows else None

    @staticmethod
    def _keys_sync(conn: sqlite3.Connection, after: bytes, limit: int) -> list[bytes]:
        rows = conn.execute(
            "SELECT key FROM answers WHERE key > ? ORDER BY key LIMIT ?", (after, limit)
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def _stats_sync(self, conn: sqlite3.Connection, now: float) -> tuple[list[Any], int]:
        rows = conn.execute(_STATS, (now,)).fetchall()
        size = 0
        for suffix in ("", "-wal", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                size += os.stat(f"{self.path}{suffix}").st_size
        return rows, size

    # -- retention ----------------------------------------------------------------------

    async def _retain(self) -> None:
        """Purge what is past retention now (a daemon that was down for weeks starts
        clean), then every interval."""
        assert self._retention_interval_s is not None
        while True:
            try:
                removed = await self.purge(self._clock() - self._retention_s)
            except Exception as exc:  # the next round may succeed: keep the task alive
                log.warning("store.retention_failed", error=str(exc))
            else:
                if removed:
                    log.info("store.retention_purged", rows=removed)
            await self._sleep(self._retention_interval_s)

    # -- plumbing -----------------------------------------------------------------------

    async def _control(self, action: str, key: bytes = b"", before: float | None = None) -> int:
        if self._closed:
            raise StoreError(f"{self.path}: the store is closed")
        async with self._control_slots:
            future: asyncio.Future[int] = self._loop_().create_future()
            self._ops.append(_Control(action, future, key, before))
            self._urgent.set()
            self._wake.set()
            if self._dead:  # checked after queuing: see _writer_main
                raise StoreError(f"{self.path}: the store's writer failed")
            return await future

    def _loop_(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise StoreError("the store was not opened (`await store.start()` first)")
        return self._loop

    def _settle(
        self, future: asyncio.Future[int], result: int = 0, error: BaseException | None = None
    ) -> None:
        """From a thread: resolve a future on the loop (unless its waiter gave up)."""
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            self._loop_().call_soon_threadsafe(resolve, future, result, error)

    def _log(self, level: str, event: str, **kw: Any) -> None:
        with contextlib.suppress(RuntimeError):
            self._loop_().call_soon_threadsafe(
                functools.partial(getattr(log, level), event, path=str(self.path), **kw)
            )


def _check_key(key: bytes) -> None:
    # Refusing anything but a 32-byte hash keeps a plaintext number out of the file
    # even when a caller forgets the keyer.
    if len(key) != KEY_BYTES:
        raise ValueError(f"store keys are {KEY_BYTES}-byte keyed hashes (NumberKeyer.key)")
