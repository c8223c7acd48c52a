"""Reads for the event loop, run on a few threads that each own a read-only connection.

Not `loop.run_in_executor`: its hand-off (concurrent future, wrapped into an asyncio
future, two callbacks) measured ~200 µs per get on a loaded 2-core machine against ~100 µs
for this: a plain queue in, one call_soon_threadsafe out. A connection is opened and
closed by the thread that uses it, so SQLite's thread checks stay on.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_Job = tuple["asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class ReaderPool:
    def __init__(
        self, connect: Callable[[], sqlite3.Connection], threads: int, max_waiting: int
    ) -> None:
        self._connect = connect
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._slots = asyncio.Semaphore(max_waiting)  # the queue's bound
        self._count = threads
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exited: list[asyncio.Future[Any]] = []

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for i in range(self._count):
            exited: asyncio.Future[Any] = loop.create_future()
            self._exited.append(exited)
            threading.Thread(
                target=self._work, args=(exited,), name=f"hlrd-store-read-{i}", daemon=True
            ).start()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(connection, *args)` on a reader thread; its result or its exception."""
        assert self._loop is not None, "ReaderPool.start() first"
        async with self._slots:
            future: asyncio.Future[T] = self._loop.create_future()
            self._jobs.put((future, fn, args))
            return await future

    async def close(self) -> None:
        """Reads already asked for are answered first; then the connections close."""
        for _ in self._exited:
            self._jobs.put(None)
        await asyncio.gather(*self._exited)

    def _work(self, exited: asyncio.Future[Any]) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while (job := self._jobs.get()) is not None:
                future, fn, args = job
                try:
                    if conn is None:
                        conn = self._connect()
                    result = fn(conn, *args)
                except BaseException as exc:
                    self._post(future, None, exc)
                else:
                    self._post(future, result, None)
        finally:
            if conn is not None:
                conn.close()
            self._post(exited, None, None)

    def _post(self, future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            self._loop.call_soon_threadsafe(resolve, future, result, error)


def resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """On the loop: settle a future unless its waiter gave up."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
