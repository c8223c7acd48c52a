"""Washing a calling list: every row through the same gate as a dialer's check.

A job is previewed first (nothing is spent: how many rows, valid, duplicates,
blocked by the lists, cached, to be looked up, and what that costs), then run in
chunks of rows: each chunk's numbers are checked (lists first, the cache next, paid
lookups last at the providers' rates: the service decides), its output lines
written and made durable, and only then the job's state moved past it
(`job_state.py`). Killed at any instant, a job resumes at the first row its state
does not count: its outputs are cut back to where the state says, so no row is
lost or written twice; the rows checked but not yet recorded are checked again,
and their lookups are answered by the cache, whose writes are made durable before
a row counts (`GroupFlush`): a killed job pays again only for the lookups in flight
at that instant — sent and not yet answered, or answered within the store's last
commit; at most the providers' windows.

File I/O runs in threads; the event loop only checks numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import structlog

from ..call_check import Answer, CallCheck
from ..compliance.policy import CallPolicy
from ..domain.decision import Verdict
from ..domain.numbers import InvalidNumber, Msisdn
from ..service import new_lookup_id
from .csv_input import Layout, Row, read_rows
from .job_state import OUTPUTS, JobState

log = structlog.get_logger("hlrd.jobs")

CHUNK_ROWS = 500  # rows checked, written and recorded together
IN_FLIGHT = 256  # checks of one job at once: other work keeps its share
ANNOTATIONS = (
    "hlrd_decision",
    "hlrd_call",
    "hlrd_reasons",
    "hlrd_reachability",
    "hlrd_roaming",
    "hlrd_visited_country",
    "hlrd_zone",
    "hlrd_ported",
    "hlrd_network",
    "hlrd_checked_at",
    "hlrd_answer_age_s",
)
INVALID = "invalid_number"
# A row's answer (None: not checked), the problem that stopped it, its E.164 number.
Checked = tuple[Answer | None, str, str]


def _lines(rows: list[list[str]], delimiter: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _annotations(answer: Answer | None, problem: str, checked_at: float) -> list[str]:
    """The columns added to a row: the decision, why, and what the lookup told."""
    if answer is None:
        return ["block", "0", problem, "", "", "", "", "", "", "", ""]
    lookup = answer.lookup
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(checked_at))
    if lookup is None:
        head = [answer.verdict.value, "1" if answer.call else "0", ";".join(answer.reasons)]
        return [*head, "", "", "", "", "", "", stamp, ""]
    age = f"{lookup.cache.age_s:.0f}" if lookup.cache.hit else "0"
    ported = "" if lookup.ported is None else ("1" if lookup.ported else "0")
    return [
        answer.verdict.value,
        "1" if answer.call else "0",
        ";".join(answer.reasons),
        lookup.reachability.value,
        lookup.roaming.value,
        lookup.visited_country or "",
        lookup.zone.value,
        ported,
        lookup.subscription_network.mccmnc or "",
        stamp,
        age,
    ]


class GroupFlush:
    """Many waiters, one store flush per round: each waiter's answers are durable when
    a flush that began after them ends. A row is recorded only after its lookup's
    answer is in the store, so a killed job pays again only for the lookups in flight
    at that instant (sent and unanswered, or answered within one commit)."""

    def __init__(self, flush: Callable[[], Awaitable[None]]) -> None:
        self._flush = flush
        self._next: asyncio.Future[None] | None = None
        self._runner: asyncio.Task[None] | None = None

    async def __call__(self) -> None:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        waiting = self._next
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        await asyncio.shield(waiting)

    async def _run(self) -> None:
        while self._next is not None:
            round_, self._next = self._next, None
            try:
                await self._flush()
            except Exception as exc:  # the waiters fail; the job fails and resumes later
                round_.set_exception(exc)
            else:
                round_.set_result(None)


class Washer:
    """Runs one job. `pause()`/`cancel()` take effect after the chunk in hand."""

    def __init__(
        self,
        checker: CallCheck,
        directory: Path,
        state: JobState,
        policy: CallPolicy,
        flush_store: Callable[[], Awaitable[None]] | None = None,
        on_progress: Callable[[JobState], None] | None = None,
    ) -> None:
        self.checker = checker
        self.directory = directory
        self.state = state
        self.policy = policy
        self.durable = GroupFlush(flush_store) if flush_store is not None else None
        self.on_progress = on_progress
        self._stop: str | None = None  # "paused" | "cancelled"

    def pause(self) -> None:
        self._stop = "paused"

    def cancel(self) -> None:
        self._stop = "cancelled"

    @property
    def layout(self) -> Layout:
        return Layout(**{**self.state.layout, "header": _tuple(self.state.layout["header"])})

    async def run(self) -> None:
        state = self.state
        state.state = "running"
        state.started_at = state.started_at or time.time()
        await asyncio.to_thread(self._cut_back)
        began = time.monotonic()
        rows: Iterator[Row] = await asyncio.to_thread(self._open_rows)
        try:
            while self._stop is None:
                chunk = await asyncio.to_thread(_take, rows, CHUNK_ROWS)
                if not chunk:
                    state.state = "done"
                    state.finished_at = time.time()
                    break
                checked = await self._check(chunk)
                await self._record(chunk, checked, began)
                began = time.monotonic()
            else:
                state.state = self._stop
        except Exception as exc:
            state.state, state.error = "failed", type(exc).__name__
            log.error("job.failed", job=state.id, error=type(exc).__name__)
        finally:
            with contextlib.suppress(Exception):
                close = getattr(rows, "close", None)
                if close is not None:
                    close()
            await asyncio.to_thread(state.save, self.directory)
            if self.on_progress is not None:
                self.on_progress(state)

    def _open_rows(self) -> Iterator[Row]:
        stream = (self.directory / "input.csv").open("rb")
        skip = self.state.rows_done
        rows = read_rows(stream, self.layout)
        for row in rows:
            if row.number > skip:
                yield row
        stream.close()

    def _cut_back(self) -> None:
        """Outputs as long as the state says: what a killed run wrote past it goes."""
        for name in OUTPUTS:
            path = self.directory / name
            with path.open("ab") as f:
                f.truncate(self.state.offsets.get(name, 0))

    async def _check(self, chunk: list[Row]) -> list[Checked]:
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one(row: Row) -> Checked:
            if row.problem is not None:
                return None, row.problem, ""
            try:
                msisdn = self._number(row)
            except InvalidNumber as exc:
                return None, f"{INVALID}:{exc.problem.value}", ""
            async with gate:
                answer = await self.checker.check(msisdn, self.policy, new_lookup_id(), "job")
            if self.durable is not None and answer.lookup is not None:
                await self.durable()  # the answer in the store before the row counts
            return answer, "", msisdn.e164

        return list(await asyncio.gather(*(one(r) for r in chunk)))

    def _number(self, row: Row) -> Msisdn:
        return number_of_row(self.checker.service.normalize, row)

    async def _record(self, chunk: list[Row], checked: list[Checked], began: float) -> None:
        state = self.state
        now = time.time()
        layout = self.layout
        annotated: list[list[str]] = []
        clean: list[list[str]] = []
        dnc: list[str] = []
        if state.rows_done == 0 and state.offsets["annotated.csv"] == 0 and layout.header:
            annotated.append([*layout.header, *ANNOTATIONS])
            clean.append(list(layout.header))
        for row, (answer, problem, e164) in zip(chunk, checked, strict=True):
            annotated.append([*row.fields, *_annotations(answer, problem, now)])
            self._tally(answer, problem)
            if answer is not None and answer.call:
                clean.append(list(row.fields))
            elif answer is not None and answer.verdict is Verdict.BLOCK:
                dnc.append(e164)  # deferred and unknown ones are not "never call"
        written = await asyncio.to_thread(
            self._append,
            {
                "annotated.csv": _lines(annotated, layout.delimiter),
                "clean.csv": _lines(clean, layout.delimiter),
                "dnc.txt": "".join(f"{n}\n" for n in dnc).encode(),
            },
        )
        state.offsets = written
        state.rows_done = chunk[-1].number
        state.run_seconds += time.monotonic() - began
        await asyncio.to_thread(state.save, self.directory)
        if self.on_progress is not None:
            self.on_progress(state)

    def _append(self, data: dict[str, bytes]) -> dict[str, int]:
        sizes = {}
        for name, payload in data.items():
            with (self.directory / name).open("ab") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
                sizes[name] = f.tell()
        return sizes

    def _tally(self, answer: Answer | None, problem: str) -> None:
        state = self.state
        if answer is None:
            state.count("decision", "invalid")
            state.count("reason", problem.split(":")[0])
            return
        state.count("decision", answer.verdict.value)
        for reason in answer.reasons or ("none",):
            state.count("reason", reason.split(":")[0])
        lookup = answer.lookup
        if lookup is None:
            state.count("provider", "none (no lookup)")
            return
        state.count("country", lookup.home_network.country or "unknown")
        state.count("provider", lookup.provider)
        state.count("cache", "hit" if lookup.cache.hit else "lookup")
        if not lookup.cache.hit:
            state.count("paid", lookup.provider)


def number_of_row(normalize: Callable[[str], Msisdn], row: Row) -> Msisdn:
    """The row's number; with VICIdial's phone_code, in that country (a number written
    internationally already keeps its own)."""
    raw = row.phone
    if row.phone_code and not raw.lstrip().startswith(("+", "00")):
        raw = f"+{row.phone_code.strip().lstrip('+')}{raw.strip()}"
    return normalize(raw)


def _take(rows: Iterator[Row], n: int) -> list[Row]:
    out = []
    for row in rows:
        out.append(row)
        if len(out) >= n:
            break
    return out


def _tuple(value: Any) -> tuple[str, ...] | None:
    return tuple(value) if value is not None else None


def summary(state: JobState, price: Callable[[str], tuple[float, str]]) -> dict[str, Any]:
    """What a compliance officer reads at the end: counts by decision, reason, country
    and provider; cache hits; the cost of the lookups; the duration."""
    providers = state.counts.get("provider", {})
    cost: dict[str, float] = {}
    for name, n in state.counts.get("paid", {}).items():
        amount, currency = price(name)
        if amount and currency:
            cost[currency] = round(cost.get(currency, 0.0) + amount * n, 6)
    return {
        "job": state.id,
        "name": state.name,
        "policy": state.policy,
        "state": state.state,
        "rows": state.rows_done,
        "by_decision": state.counts.get("decision", {}),
        "by_reason": state.counts.get("reason", {}),
        "by_country": state.counts.get("country", {}),
        "by_provider": providers,
        "cache": state.counts.get("cache", {}),
        "cost": cost,
        "seconds": round(state.run_seconds, 3),
    }
