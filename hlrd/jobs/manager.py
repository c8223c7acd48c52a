"""The daemon's washing jobs: created from an upload, previewed, run, paused,
resumed, cancelled, deleted — and resumed after a restart where they stopped.

Bounded: an upload is at most `MAX_UPLOAD` bytes (written to disk as it arrives,
never held whole), at most `MAX_JOBS` jobs exist, and `MAX_RUNNING` run at once
(the rest wait their turn, in order). Job directories go after `retention_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import structlog

from ..call_check import CallCheck
from ..domain.numbers import InvalidNumber
from ..memory import release_memory
from .csv_input import SNIFF_BYTES, CsvError, Layout, Row, read_rows, sniff
from .job_state import JobState, new_job_id, valid_id
from .washer import CHUNK_ROWS, Washer, _take, number_of_row, summary
from .webhook import ATTEMPTS_BACKOFF_S, check_url, deliver

log = structlog.get_logger("hlrd.jobs")

MAX_UPLOAD = 2 << 30  # 2 GiB: tens of millions of rows
MAX_JOBS = 1_000
MAX_RUNNING = 2
# Distinct numbers the preview remembers to count duplicates (~70 bytes each): an
# upload of tens of millions must not cost gigabytes; past it, duplicates of numbers
# not remembered are counted as numbers to look up (the preview says so).
PREVIEW_DISTINCT = 2_000_000


class JobError(Exception):
    """`status` and `code` for the HTTP answer; the message names the problem."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.field = status, code, field


class Jobs:
    def __init__(
        self,
        directory: Path,
        checker: CallCheck,
        flush_store: Callable[[], Awaitable[None]] | None = None,
        retention_s: float = 7 * 86400,
        webhook_secret: str = "",
        webhook_backoff_s: Sequence[float] = ATTEMPTS_BACKOFF_S,
    ) -> None:
        self.webhook_secret = webhook_secret
        self.webhook_backoff_s = webhook_backoff_s
        self.directory = directory
        self.checker = checker
        self.flush_store = flush_store
        self.retention_s = retention_s
        self.states: dict[str, JobState] = {}
        self._washers: dict[str, Washer] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(MAX_RUNNING)
        self._listeners: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Every job on disk; those that were running or previewing go on."""
        found = await asyncio.to_thread(self._scan)
        for state in found:
            self.states[state.id] = state
            if state.state == "previewing":
                self._spawn(state.id, self._preview(state))
            elif state.state == "running":
                log.info("job.resumed", job=state.id, rows_done=state.rows_done)
                self._spawn(state.id, self._run(state))
            elif state.webhook is not None and state.webhook_delivered is None and state.ended:
                self._spawn(state.id, self._deliver(state))  # stopped while retrying

    async def stop(self) -> None:
        for washer in self._washers.values():
            washer.pause()  # stops after the chunk in hand: recorded, resumable
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _scan(self) -> list[JobState]:
        if not self.directory.is_dir():
            return []
        out = []
        for path in sorted(self.directory.iterdir()):
            if valid_id(path.name) and (path / "state.json").is_file():
                with contextlib.suppress(ValueError, TypeError, OSError):
                    out.append(JobState.load(path))
        return out

    def _spawn(self, job_id: str, coro: Any) -> None:
        task = asyncio.create_task(coro, name=f"job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda t: self._tasks.pop(job_id, None))

    def dir_of(self, job_id: str) -> Path:
        return self.directory / job_id

    # -- creating -------------------------------------------------------------------

    async def create(
        self,
        body: AsyncIterator[bytes],
        name: str,
        policy: str,
        column: str | None,
        idempotency_key: str | None = None,
        webhook: str | None = None,
    ) -> tuple[JobState, bool]:
        """A job from an upload streamed to disk; (state, created). The same
        Idempotency-Key gives the job it created before."""
        if idempotency_key is not None:
            for state in self.states.values():
                if state.idempotency_key == idempotency_key:
                    return state, False
        if policy not in self.checker.policies:
            known = ", ".join(sorted(self.checker.policies))
            raise JobError(400, "invalid_parameter", f"policy must be one of: {known}", "policy")
        if webhook is not None:
            if not self.webhook_secret:
                raise JobError(
                    400,
                    "invalid_parameter",
                    "webhook: configure [jobs] webhook_secret to sign webhooks first",
                    "webhook",
                )
            problem = check_url(webhook)
            if problem is not None:
                raise JobError(400, "invalid_parameter", problem, "webhook")
        if len(self.states) >= MAX_JOBS:
            raise JobError(507, "jobs_full", f"hlrd keeps at most {MAX_JOBS} jobs: delete some")
        job_id = new_job_id()
        directory = self.dir_of(job_id)
        await asyncio.to_thread(directory.mkdir, mode=0o700, parents=True)
        try:
            head = await self._receive(body, directory / "input.csv")
            layout = sniff(head, column)
        except (CsvError, JobError) as exc:
            await asyncio.to_thread(shutil.rmtree, directory, True)
            if isinstance(exc, JobError):
                raise
            raise JobError(400, "invalid_csv", str(exc), "column" if column else "body") from exc
        state = JobState(
            id=job_id,
            name=name[:200] or job_id,
            policy=policy,
            created_at=time.time(),
            layout={**asdict(layout), "header": list(layout.header) if layout.header else None},
            idempotency_key=idempotency_key,
            webhook=webhook,
        )
        await asyncio.to_thread(state.save, directory)
        self.states[job_id] = state
        self._spawn(job_id, self._preview(state))
        log.info("job.created", job=job_id, policy=policy, column=layout.phone_column_name)
        return state, True

    async def _receive(self, body: AsyncIterator[bytes], path: Path) -> bytes:
        """The upload to disk as it comes; its first SNIFF_BYTES for the sniffer."""
        head = bytearray()
        size = 0
        fd = await asyncio.to_thread(os.open, path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            async for chunk in body:
                size += len(chunk)
                if size > MAX_UPLOAD:
                    raise JobError(413, "bad_request", f"an upload is at most {MAX_UPLOAD} bytes")
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                await asyncio.to_thread(os.write, fd, chunk)
        finally:
            await asyncio.to_thread(os.close, fd)
        if size == 0:
            raise JobError(400, "invalid_csv", "the upload is empty", "body")
        return bytes(head)

    # -- preview --------------------------------------------------------------------

    async def _preview(self, state: JobState) -> None:
        """What the wash will do, before anything is spent: every row read, nothing
        looked up."""
        directory = self.dir_of(state.id)
        policy = self.checker.policies[state.policy]
        service = self.checker.service
        gate, cache = self.checker.gate, service.cache
        counts: dict[str, Any] = {
            "rows": 0,
            "valid": 0,
            "invalid": {},
            "duplicates": 0,
            "blocked_by_lists": 0,
            "cached": 0,
            "to_look_up": 0,
        }
        cost: dict[str, float] = {}
        seen: set[int] = set()
        layout = _layout(state)
        try:
            stream = await asyncio.to_thread((directory / "input.csv").open, "rb")
            rows = read_rows(stream, layout)
            while chunk := await asyncio.to_thread(_take, rows, CHUNK_ROWS * 4):
                for row in chunk:
                    counts["rows"] += 1
                    if row.problem is not None:
                        _bump(counts["invalid"], row.problem)
                        continue
                    try:
                        msisdn = number_of_row(service.normalize, row)
                    except InvalidNumber as exc:
                        _bump(counts["invalid"], exc.problem.value)
                        continue
                    counts["valid"] += 1
                    key = hash(msisdn.e164)
                    if key in seen:
                        counts["duplicates"] += 1
                        continue
                    if len(seen) < PREVIEW_DISTINCT:
                        seen.add(key)
                    else:
                        counts["duplicates_uncounted_after"] = PREVIEW_DISTINCT
                    if gate is not None and gate.screen(msisdn.e164, policy, count=False).blocked:
                        counts["blocked_by_lists"] += 1
                    elif cache is not None and await cache.holds(msisdn.e164):
                        counts["cached"] += 1
                    else:
                        counts["to_look_up"] += 1
                        price = _price(self.checker, msisdn.e164, msisdn.region)
                        if price is not None:
                            cost[price[1]] = cost.get(price[1], 0.0) + price[0]
            await asyncio.to_thread(stream.close)
        except (OSError, CsvError) as exc:
            state.state, state.error = "failed", type(exc).__name__
        else:
            counts["estimated_cost"] = {c: round(v, 4) for c, v in cost.items()}
            state.preview = counts
            state.rows_total = counts["rows"]
            state.state = "ready"
        await asyncio.to_thread(state.save, directory)
        self._notify(state)

    # -- running --------------------------------------------------------------------

    def start_job(self, job_id: str) -> JobState:
        state = self.get(job_id)
        if state.state not in ("ready", "paused"):
            raise JobError(409, "job_state", f"a {state.state} job cannot be started")
        state.state = "running"
        self._spawn(job_id, self._run(state))
        return state

    async def _run(self, state: JobState) -> None:
        async with self._slots:
            washer = Washer(
                self.checker,
                self.dir_of(state.id),
                state,
                self.checker.policies[state.policy],
                self.flush_store,
                self._notify,
            )
            self._washers[state.id] = washer
            try:
                await washer.run()
            finally:
                self._washers.pop(state.id, None)
                del washer
                await asyncio.to_thread(release_memory)  # what the job used, back
        if state.state == "done":
            await asyncio.to_thread(self._write_summary, state)
            self._notify(state)
        if state.webhook is not None and state.ended:
            await self._deliver(state)

    async def _deliver(self, state: JobState) -> None:
        """The completion webhook, retried; its outcome kept with the job (a daemon
        stopped while retrying starts over at its next start)."""
        assert state.webhook is not None
        delivered = await deliver(
            state.webhook,
            self.summary(state),
            self.webhook_secret.encode(),
            self.webhook_backoff_s,
        )
        state.webhook_delivered = delivered
        await asyncio.to_thread(state.save, self.dir_of(state.id))

    def _write_summary(self, state: JobState) -> None:
        path = self.dir_of(state.id) / "summary.json"
        path.write_text(json.dumps(self.summary(state), indent=2))

    def summary(self, state: JobState) -> dict[str, Any]:
        providers = {p.name: (p.price, p.currency) for p in self.checker.service.providers}
        return summary(state, lambda name: providers.get(name, (0.0, "")))

    def pause(self, job_id: str) -> JobState:
        state = self.get(job_id)
        washer = self._washers.get(job_id)
        if state.state != "running" or washer is None:
            raise JobError(409, "job_state", f"a {state.state} job cannot be paused")
        washer.pause()
        return state

    def cancel(self, job_id: str) -> JobState:
        state = self.get(job_id)
        if state.state in ("done", "cancelled", "failed"):
            raise JobError(409, "job_state", f"a {state.state} job cannot be cancelled")
        washer = self._washers.get(job_id)
        if washer is not None:
            washer.cancel()
        else:
            state.state = "cancelled"
            state.save(self.dir_of(job_id))
        return state

    async def delete(self, job_id: str) -> None:
        state = self.get(job_id)
        washer = self._washers.get(job_id)
        if washer is not None:
            washer.cancel()
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.states.pop(state.id, None)
        await asyncio.to_thread(shutil.rmtree, self.dir_of(job_id), True)

    async def expire(self, now: float | None = None) -> int:
        """Jobs older than the retention time, with their files (the numbers in them)."""
        now = time.time() if now is None else now
        old = [
            s.id
            for s in self.states.values()
            if s.created_at < now - self.retention_s and s.id not in self._washers
        ]
        for job_id in old:
            await self.delete(job_id)
        return len(old)

    async def erase(self, e164: str) -> int:
        """GDPR Art. 17: the person's rows out of every job's files (the uploaded
        list and the outputs). A running job is paused for it and goes on after.
        The rows removed, counted."""
        removed = 0
        for state in list(self.states.values()):
            was_running = state.id in self._washers
            task = self._tasks.get(state.id)
            if was_running:
                self._washers[state.id].pause()
                if task is not None:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            elif task is not None and state.state == "previewing":
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            normalize = self.checker.service.normalize
            gone = await asyncio.to_thread(
                erase_rows, self.dir_of(state.id), state, e164, normalize
            )
            removed += gone
            if state.state == "previewing" or (gone and state.state == "ready"):
                state.state = "previewing"
                self._spawn(state.id, self._preview(state))
            elif was_running:
                self.start_job(state.id)
        return removed

    def get(self, job_id: str) -> JobState:
        state = self.states.get(job_id) if valid_id(job_id) else None
        if state is None:
            raise JobError(404, "not_found", "no such job")
        return state

    # -- progress -------------------------------------------------------------------

    def listen(self, job_id: str) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=16)
        self._listeners.setdefault(job_id, set()).add(queue)
        return queue

    def unlisten(self, job_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._listeners.get(job_id, set()).discard(queue)

    def _notify(self, state: JobState) -> None:
        event = progress(state)
        for queue in list(self._listeners.get(state.id, ())):
            if queue.full():  # a slow reader gets the latest, not a backlog
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)


def progress(state: JobState) -> dict[str, Any]:
    total = state.rows_total
    percent = (
        round(100.0 * state.rows_done / total, 1)
        if total
        else (100.0 if state.state == "done" else 0.0)
    )
    return {
        "state": state.state,
        "rows_done": state.rows_done,
        "rows_total": total,
        "percent": percent,
    }


def erase_rows(directory: Path, state: JobState, e164: str, normalize: Callable[[str], Any]) -> int:
    """Rewrites the job's input without the rows of `e164`, and its outputs without the
    lines made from them; the state is moved to match (rows done, file lengths)."""
    layout = _layout(state)
    kept_rows: list[list[str]] = []
    gone_numbers: set[int] = set()
    if not (directory / "input.csv").is_file():  # deleted meanwhile
        return 0
    with (directory / "input.csv").open("rb") as f:
        for row in read_rows(f, layout):
            try:
                mine = number_of_row(normalize, row).e164 == e164
            except InvalidNumber:
                mine = False
            if mine:
                gone_numbers.add(row.number)
            else:
                kept_rows.append(list(row.fields))
    if not gone_numbers:
        return 0
    header = [list(layout.header)] if layout.header else []
    _rewrite(directory / "input.csv", header + kept_rows, layout.delimiter)
    done_before = state.rows_done
    state.rows_done = done_before - sum(1 for n in gone_numbers if n <= done_before)
    if state.rows_total is not None:
        state.rows_total -= len(gone_numbers)
    _drop_lines(directory, layout, gone_numbers, e164, normalize)
    state.offsets = {name: _size(directory / name) for name in state.offsets}
    state.save(directory)
    return len(gone_numbers)


def _rewrite(path: Path, rows: list[list[str]], delimiter: str) -> None:
    """A new file in place of the old (renamed over it): the old one's blocks are
    freed, not overwritten — on a journaling filesystem no file rewrite can promise
    more; the retention time bounds how long anything of it can remain."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _drop_lines(
    directory: Path,
    layout: Layout,
    gone: set[int],
    e164: str,
    normalize: Callable[[str], Any],
) -> None:
    """The outputs without the erased rows: annotated.csv has one line per input row
    done (after its header); clean.csv and dnc.txt are filtered by the number."""
    annotated = directory / "annotated.csv"
    if _size(annotated):
        with annotated.open(newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f, delimiter=layout.delimiter))
        head, body = (lines[:1], lines[1:]) if layout.header else ([], lines)
        kept = [line for i, line in enumerate(body, start=1) if i not in gone]
        _rewrite(annotated, head + kept, layout.delimiter)
    clean = directory / "clean.csv"
    if _size(clean):
        with clean.open(newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f, delimiter=layout.delimiter))
        head, body = (lines[:1], lines[1:]) if layout.header else ([], lines)
        keep = [line for line in body if _number_of(line, layout, normalize) != e164]
        _rewrite(clean, head + keep, layout.delimiter)
    dnc = directory / "dnc.txt"
    if _size(dnc):
        numbers = [n for n in dnc.read_text().split() if n != e164]
        tmp = dnc.with_suffix(".tmp")
        tmp.write_text("".join(f"{n}\n" for n in numbers))
        os.replace(tmp, dnc)


def _size(path: Path) -> int:
    """0 for an output not written yet (a job that never ran)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _number_of(line: list[str], layout: Layout, normalize: Callable[[str], Any]) -> str | None:
    column, region = layout.phone_column, layout.region_column
    phone = line[column] if len(line) > column else ""
    code = line[region] if region is not None and len(line) > region else ""
    row = Row(0, tuple(line), phone, code)
    try:
        e164: str = number_of_row(normalize, row).e164
    except InvalidNumber:
        return None
    return e164


def _layout(state: JobState) -> Layout:
    header = state.layout.get("header")
    return Layout(**{**state.layout, "header": tuple(header) if header is not None else None})


def _price(checker: CallCheck, e164: str, region: str) -> tuple[float, str] | None:
    providers = checker.service.router.route(e164, region)[1]
    if not providers:
        return None
    return providers[0].price, providers[0].currency


def _bump(table: dict[str, int], key: str) -> None:
    table[key] = table.get(key, 0) + 1
