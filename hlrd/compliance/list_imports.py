"""Registry files imported while the daemon runs (the web page's list import).

`hlrd lists import` does the same on the files; here the file arrives over HTTP, is
spooled beside the lists (it is a registry's plaintext numbers: the directory is the
daemon's own, 0700, and the spool is deleted when the import ends either way), read
in a thread that reports how far it got, and the lists are reloaded so the new one is
in force when the import says `done`.

Bounded: one import at a time (a national registry takes a core and a few hundred MB
while it is sorted), an upload of at most `MAX_UPLOAD` bytes, the last `KEEP`
imports remembered for their progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from ..domain.times import iso_utc
from .gate import ListGate
from .list_formats import FORMATS, ReadOptions
from .lists import ListError, check_name, info_json
from .own_list import NAME as OWN

log = structlog.get_logger("hlrd.lists")

MAX_UPLOAD = 4 << 30  # 4 GiB: the US registry's full file is about 2.5 GiB
KEEP = 20
IDLE_S = 60.0  # an upload that sends nothing for this long is dropped


class ImportRefused(Exception):
    """An import that cannot start; `status`, `code` and `field` are the HTTP answer's."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.field = status, code, field


@dataclass(slots=True)
class ListImport:
    id: str
    list: str
    bytes_total: int = 0
    bytes_read: int = 0
    state: str = "receiving"  # receiving -> importing -> done | failed
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    error: str | None = None
    info: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "list": self.list,
            "state": self.state,
            "bytes_total": self.bytes_total,
            "bytes_read": self.bytes_read,
            "started_at": iso_utc(self.started_at),
            "finished_at": iso_utc(self.finished_at),
            "error": self.error,
            "info": self.info,
        }


@dataclass(frozen=True, slots=True)
class ImportRequest:
    name: str
    options: ReadOptions
    version: str = ""
    max_age_days: float | None = None
    change: str = ""


class ListImports:
    def __init__(
        self, gate: ListGate, default_region: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._gate = gate
        self._region = default_region
        self._clock = clock
        self._imports: OrderedDict[str, ListImport] = OrderedDict()
        self._running: asyncio.Task[None] | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}  # the latest import's
        # A spool left by a killed daemon is a registry's plaintext: gone at start.
        for left in (gate.files.directory / "incoming").glob("*.upload"):
            left.unlink(missing_ok=True)

    def get(self, import_id: str) -> ListImport:
        found = self._imports.get(import_id)
        if found is None:
            raise ImportRefused(404, "not_found", "no such import (the last 20 are kept)")
        return found

    async def start(self, request: ImportRequest, body: AsyncIterator[bytes]) -> ListImport:
        """Spools the body, then imports it in the background; answers once spooled."""
        _check(request)
        if any(j.state in ("receiving", "importing") for j in self._imports.values()):
            raise ImportRefused(409, "import_running", "another list is being imported; retry")
        job = ListImport(id="imp-" + secrets.token_hex(8), list=request.name)
        job.started_at = self._clock()
        self._remember(job)
        spool = self._gate.files.directory / "incoming" / f"{job.id}.upload"
        try:
            await self._receive(body, spool, job)
        except BaseException as exc:
            await asyncio.to_thread(spool.unlink, True)
            self._fail(job, str(exc) if isinstance(exc, ImportRefused) else "upload broken off")
            raise
        job.state = "importing"
        self._running = asyncio.create_task(self._import(job, request, spool))
        self._tasks = {job.id: self._running}
        return job

    async def finished(self, import_id: str) -> ListImport:
        """The import once it has ended (done or failed), for a caller that must know."""
        job = self.get(import_id)
        task = self._tasks.get(import_id)
        if task is not None:
            await asyncio.shield(task)
        return job

    async def stop(self) -> None:
        """At shutdown: the import in its thread runs to its end (a rename is atomic);
        waiting for it keeps the spool from being left behind."""
        if self._running is not None:
            with contextlib.suppress(Exception):
                await self._running

    async def _receive(self, body: AsyncIterator[bytes], spool: Path, job: ListImport) -> None:
        spool.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(spool, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            while True:
                try:  # a client that stops sending must not hold the only import slot
                    chunk = await asyncio.wait_for(anext(body), IDLE_S)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise ImportRefused(
                        400, "bad_request", f"the upload stalled for {IDLE_S:.0f} s"
                    ) from None
                job.bytes_total += len(chunk)
                if job.bytes_total > MAX_UPLOAD:
                    raise ImportRefused(413, "bad_request", f"a list is at most {MAX_UPLOAD} bytes")
                out.write(chunk)  # 64 KiB at a time into the page cache, as a job's upload
        if job.bytes_total == 0:
            raise ImportRefused(400, "invalid_parameter", "the file is empty", "body")

    async def _import(self, job: ListImport, request: ImportRequest, spool: Path) -> None:
        def told(position: int) -> None:
            job.bytes_read = position

        files = self._gate.files
        try:
            info = await asyncio.to_thread(
                files.import_file,
                request.name,
                spool,
                request.options,
                version=request.version,
                max_age_days=request.max_age_days,
                change=request.change,
                default_region=self._region,
                progress=told,
            )
            await self._gate.reload_if_changed()
        except Exception as exc:  # any: an import left "importing" would block every other
            why = str(exc) if isinstance(exc, ListError | OSError) else f"unreadable: {exc}"
            self._fail(job, why.replace(str(spool), "the file"))
            return
        finally:
            await asyncio.to_thread(spool.unlink, True)
        job.bytes_read = job.bytes_total
        job.info = info_json(info, self._clock())
        job.state = "done"
        job.finished_at = self._clock()
        log.info("lists.imported", list=request.name, numbers=info.numbers, rows=info.rows)

    def _fail(self, job: ListImport, why: str) -> None:
        job.state, job.error, job.finished_at = "failed", why, self._clock()
        log.warning("lists.import_failed", list=job.list, error=why)

    def _remember(self, job: ListImport) -> None:
        self._imports[job.id] = job
        while len(self._imports) > KEEP:
            self._imports.popitem(last=False)


def _check(request: ImportRequest) -> None:
    try:
        check_name(request.name)
    except ListError as exc:
        raise ImportRefused(400, "invalid_parameter", str(exc), "name") from None
    if request.name == OWN:
        raise ImportRefused(
            400, "invalid_parameter", f"{OWN!r} is the own list: PUT /v1/dnc/{{number}}", "name"
        )
    if request.options.format not in FORMATS:
        raise ImportRefused(
            400, "invalid_parameter", f"format: one of {', '.join(FORMATS)}", "format"
        )
    if len(request.options.delimiter) > 1:
        raise ImportRefused(
            400, "invalid_parameter", "delimiter: one character (, ; or a tab)", "delimiter"
        )
    if request.change not in ("", "add", "delete"):
        raise ImportRefused(400, "invalid_parameter", "change: add or delete, or none", "change")
