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
import functools
import io
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import structlog

from ..call_check import Answer, CallCheck, Cleared
from ..compliance.policy import CallPolicy
from ..domain.decision import Verdict
from ..domain.numbers import InvalidNumber, Msisdn
from ..domain.result import LookupResult
from ..service import new_lookup_id
from .csv_input import Layout, Row, read_rows
from .job_state import OUTPUTS, JobState

log = structlog.get_logger("hlrd.jobs")
T = TypeVar("T")

CHUNK_ROWS = 500  # rows checked, written and recorded together
IN_FLIGHT = 256  # lookups of one job at once: other work keeps its share
AHEAD = 3  # chunks being checked while the oldest is recorded
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
MEMO_NUMBERS = 50_000  # numbers whose decision a job remembers (~0.5 KB each)
MEMO_S = 60.0  # ... for at most this long


def _lines(rows: list[list[str]], delimiter: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


@dataclass(frozen=True, slots=True)
class Line:
    """What a row's number was decided, ready to write: made once per number, shared
    by its duplicates."""

    annotations: tuple[str, ...]
    tally: tuple[tuple[str, str], ...]  # (table, key) counted once per row
    call: bool
    never_call: bool  # blocked: for the dialer's do-not-call import
    e164: str
    repeat: Line | None = None  # the same for a duplicate row: counted, never paid


_SHARED: dict[Any, Any] = {}
_SHARED_MAX = 4096


def _shared(value: T) -> T:
    """One object for equal values (the few reasons, tallies, times a job writes):
    a job remembers many numbers' lines, most of them alike. Bounded."""
    found = _SHARED.get(value)
    if found is None:
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        _SHARED[value] = found = value
    return cast(T, found)


def _line(answer: Answer | None, problem: str, e164: str) -> Line:
    annotations = tuple(_shared(a) for a in _annotations(answer, problem, time.time()))
    tally = _tally(answer, problem)
    call = answer is not None and answer.call
    never = answer is not None and answer.verdict is Verdict.BLOCK
    again = tuple(t for t in tally if t[0] not in ("cache", "paid"))
    if answer is not None and answer.lookup is not None:
        again = (*again, ("cache", "duplicate"))
    tally, again = _shared(tally), _shared(again)
    return Line(annotations, tally, call, never, e164, Line(annotations, again, call, never, e164))


def _tally(answer: Answer | None, problem: str) -> tuple[tuple[str, str], ...]:
    """The summary's counts a row adds."""
    if answer is None:
        return (("decision", "invalid"), ("reason", problem.split(":")[0]))
    keys = [("decision", answer.verdict.value)]
    keys += [("reason", reason.split(":")[0]) for reason in answer.reasons or ("none",)]
    lookup = answer.lookup
    if lookup is None:
        keys.append(("provider", "none (no lookup)"))
        return tuple(keys)
    keys.append(("country", lookup.home_network.country or "unknown"))
    keys.append(("provider", lookup.provider))
    keys.append(("cache", "hit" if lookup.cache.hit else "lookup"))
    if not lookup.cache.hit:
        keys.append(("paid", lookup.provider))
    return tuple(keys)


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
        self._memo: dict[str, Line] = {}
        self._memo_version: tuple[object, ...] = ()
        self._memo_since = -1e18
        self._deciding: dict[str, asyncio.Future[Line]] = {}  # numbers being looked up
        self._in_flight = 0
        self._room = asyncio.Event()

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
        # Chunks are checked up to AHEAD at once and recorded in order: the provider
        # is kept busy while a chunk's last answers come and its lines are written.
        ahead: deque[tuple[list[Row], asyncio.Task[list[Line]]]] = deque()
        exhausted = False
        try:
            while True:
                while self._stop is None and not exhausted and len(ahead) < AHEAD:
                    chunk = await asyncio.to_thread(_take, rows, CHUNK_ROWS)
                    if chunk:
                        ahead.append((chunk, asyncio.create_task(self._check(chunk))))
                    else:
                        exhausted = True
                if not ahead:
                    break
                if self._stop == "cancelled":
                    break  # nothing to download: the chunks ahead are dropped, not paid for
                chunk, checking = ahead.popleft()
                await self._record(chunk, await checking, began)
                began = time.monotonic()
            if self._stop is None:
                state.state = "done"
                state.finished_at = time.time()
            else:
                state.state = self._stop
        except Exception as exc:
            state.state, state.error = "failed", type(exc).__name__
            log.error("job.failed", job=state.id, error=type(exc).__name__)
        finally:
            for _, checking in ahead:
                checking.cancel()
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

    async def _check(self, chunk: list[Row]) -> list[Line]:
        """The chunk's rows through the gate. Most rows need no lookup (listed,
        cached, or a number the job has just decided): those are decided here, in a
        loop, without a task each. A number being looked up is decided once, when
        its answer comes, for every row that has it; at most IN_FLIGHT lookups of the
        job wait at once."""
        checker, service, policy = self.checker, self.checker.service, self.policy
        loop = asyncio.get_running_loop()
        lines: list[Line | None] = [None] * len(chunk)
        waits: list[tuple[int, asyncio.Future[Line]]] = []
        repeats: list[tuple[int, asyncio.Future[Line]]] = []
        looked_up = False
        for i, row in enumerate(chunk):
            if row.problem is not None:
                lines[i] = _line(None, row.problem, "")
                continue
            try:
                msisdn = self._number(row)
            except InvalidNumber as exc:
                lines[i] = _line(None, f"{INVALID}:{exc.problem.value}", "")
                continue
            e164 = msisdn.e164
            self._renew_memo()  # per row: a chunk can wait long for its lookups
            known = self._memo.get(e164)
            if known is not None:
                lines[i] = known.repeat  # a duplicate: the decision this job made for it
                continue
            deciding = self._deciding.get(e164)
            if deciding is not None:
                repeats.append((i, deciding))  # a duplicate of a number being looked up
                continue
            decision_id = new_lookup_id()
            cleared = checker.before(msisdn, policy, decision_id, "job")
            if isinstance(cleared, Answer):
                lines[i] = self._remember(cleared, e164)
                continue
            looked_up = True
            future = service.begin(msisdn, decision_id, policy=policy.roaming)
            if future.done():  # answered from the cache
                answer = checker.after(msisdn, policy, cleared, future.result(), decision_id, "job")
                lines[i] = self._remember(answer, e164)
                continue
            decided: asyncio.Future[Line] = loop.create_future()
            self._deciding[e164] = decided
            self._in_flight += 1
            future.add_done_callback(
                functools.partial(self._answered, msisdn, cleared, decision_id, decided, self._memo)
            )
            waits.append((i, decided))
            while self._in_flight >= IN_FLIGHT:
                self._room.clear()
                await self._room.wait()
        for i, decided in waits:
            lines[i] = await decided  # a lookup that failed fails the job: it resumes later
        for i, decided in repeats:
            lines[i] = (await decided).repeat
        if self.durable is not None and looked_up:
            await self.durable()  # the chunk's answers in the store before its rows count
        return [line for line in lines if line is not None]

    def _answered(
        self,
        msisdn: Msisdn,
        cleared: Cleared,
        decision_id: str,
        decided: asyncio.Future[Line],
        memo: dict[str, Line],
        lookup: asyncio.Future[LookupResult],
    ) -> None:
        """A lookup's answer, decided (on the event loop, as it comes); remembered
        only if nothing changed since it was asked (`memo` is still the job's)."""
        if self._deciding.get(msisdn.e164) is decided:
            del self._deciding[msisdn.e164]
        self._in_flight -= 1
        self._room.set()
        if decided.done():
            return
        try:
            answer = self.checker.after(
                msisdn, self.policy, cleared, lookup.result(), decision_id, "job"
            )
            line = self._remember(answer, msisdn.e164) if memo is self._memo else None
            decided.set_result(line or _line(answer, "", msisdn.e164))
        except BaseException as exc:  # the lookup's error (or cancellation) to its rows
            decided.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            decided.exception()  # retrieved: a job that stopped may never await it

    def _remember(self, answer: Answer, e164: str) -> Line:
        line = _line(answer, "", e164)
        memo = self._memo
        if len(memo) < MEMO_NUMBERS:
            memo[e164] = line
        return line

    def _renew_memo(self) -> None:
        """A duplicate row takes the decision this job made for its number, as long
        as nothing it depends on changed (a list, the own list, an erasure) and for
        at most MEMO_S: then every number is decided again."""
        gate = self.checker.gate
        version = gate.version() if gate is not None else ()
        now = time.monotonic()
        same = len(version) == len(self._memo_version) and all(
            a is b for a, b in zip(version, self._memo_version, strict=True)
        )
        if not same or now - self._memo_since > MEMO_S:
            self._memo = {}
            self._deciding = {}  # lookups asked before: their rows only, not duplicates
            self._memo_version, self._memo_since = version, now

    def _number(self, row: Row) -> Msisdn:
        return number_of_row(self.checker.service.normalize, row)

    async def _record(self, chunk: list[Row], lines: list[Line], began: float) -> None:
        state = self.state
        layout = self.layout
        annotated: list[list[str]] = []
        clean: list[list[str]] = []
        dnc: list[str] = []
        if state.rows_done == 0 and state.offsets["annotated.csv"] == 0 and layout.header:
            annotated.append([*layout.header, *ANNOTATIONS])
            clean.append(list(layout.header))
        tally: dict[tuple[str, str], int] = {}
        for row, line in zip(chunk, lines, strict=True):
            annotated.append([*row.fields, *line.annotations])
            for counted in line.tally:
                tally[counted] = tally.get(counted, 0) + 1
            if line.call:
                clean.append(list(row.fields))
            elif line.never_call:
                dnc.append(line.e164)  # deferred and unknown ones are not "never call"
        for (table, key), n in tally.items():
            state.count(table, key, n)
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
