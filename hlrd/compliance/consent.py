"""Consent to marketing calls: recorded per number, provable, and tied to the
subscriber who gave it.

A do-not-call list says who must not be called; consent says who may be, and only on
the channels, for the time and under the wording the person agreed to. Three things
make a consent worthless, and each is a known source of fines: it was withdrawn, it
expired, or the number now belongs to someone else (operators reassign numbers). The
last is caught by the IMSI: a lookup at recording saw one SIM, and a lookup now that
sees another means another subscriber, whatever the records say.

Records are closed, never rewritten: a withdrawal marks the record, and a withdrawal of
some of its channels writes a continuation for the rest, so the export a regulator asks
for shows what was agreed, when, and what was taken back.

At rest (one SQLite file) the number is its NumberKeyer.key and the IMSI its
NumberKeyer.imsi_key; free text refusing digit runs keeps plaintext numbers out. In
memory: the records not erased, per number key, so the gate's check costs microseconds
and no I/O. Erasure deletes with secure_delete and empties the WAL; under a legal hold
the records stay, grant nothing, and go when the hold ends.
"""

from __future__ import annotations

import hmac
import math
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..domain.masking import mask_msisdn
from ..store.keys import NumberKeyer
from .own_list import number_in

CHANNELS = ("voice", "sms", "ivr", "messenger")
SOURCES = ("paper_form", "web_form", "sms_keyword", "recorded_call", "email", "other")
MAX_RECORDS = 10_000_000  # the file's bound; ConsentFull beyond it
MAX_PER_NUMBER = 100  # records (history) kept per number; ConsentFull beyond it
MAX_EVIDENCE = 200
MAX_TEXT_VERSION = 64
CLOCK_SKEW_S = 300.0  # a given_at (or withdrawal) this far ahead of our clock is accepted
_MAX_TIME = 253_402_300_799.0  # 9999-12-31T23:59:59Z: the last time ISO-8601 can show
_SCHEMA_VERSION = 1
_CANONICAL = {c: c for c in CHANNELS}  # one str object per channel: `in` compares by identity

_SCHEMA = f"""
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS consent (
    id TEXT PRIMARY KEY,            -- "c_" + 24 random hex: says nothing of the person
    key BLOB NOT NULL,              -- NumberKeyer.key(e164), 32 bytes
    channels TEXT NOT NULL,         -- sorted, comma separated
    source TEXT NOT NULL,
    text_version TEXT NOT NULL,
    given_at REAL NOT NULL,
    valid_until REAL,               -- NULL: no end
    withdrawn_at REAL,
    withdrawn_channels TEXT,        -- what the withdrawal named (the rest continued)
    ownership_verified INTEGER NOT NULL,
    imsi_key BLOB,                  -- NumberKeyer.imsi_key at recording, or NULL
    recorded_at REAL NOT NULL,
    evidence TEXT NOT NULL,
    replaces TEXT,                  -- the record a partial withdrawal continued
    erased_at REAL,                 -- erased under a legal hold: kept, grants nothing
    held_until REAL
);
CREATE INDEX IF NOT EXISTS consent_key ON consent (key);
CREATE INDEX IF NOT EXISTS consent_held ON consent (held_until) WHERE held_until IS NOT NULL;
-- count(*) of ten million rows reads the whole key index: the bound keeps a counter.
CREATE TABLE IF NOT EXISTS consent_count (one INTEGER PRIMARY KEY CHECK (one = 1), n INTEGER);
INSERT OR IGNORE INTO consent_count VALUES (1, (SELECT count(*) FROM consent));
CREATE TRIGGER IF NOT EXISTS consent_added AFTER INSERT ON consent
    BEGIN UPDATE consent_count SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS consent_removed AFTER DELETE ON consent
    BEGIN UPDATE consent_count SET n = n - 1; END;
PRAGMA user_version = {_SCHEMA_VERSION};
COMMIT;
"""

_COLUMNS = (
    "id, channels, source, text_version, given_at, valid_until, withdrawn_at, "
    "withdrawn_channels, ownership_verified, imsi_key, recorded_at, evidence, replaces, "
    "erased_at, held_until"
)


class ConsentFull(Exception):
    """The file, or one number's history, holds as many records as it may."""


class ErasureIncomplete(Exception):
    """The rows are deleted, but a reader kept the WAL from being emptied: older copies
    of the pages may still be in it. Erasing again (it is idempotent) finishes it."""


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Consent:
    id: str  # "c_" + 24 hex chars, random
    channels: tuple[str, ...]  # sorted, subset of CHANNELS, non-empty
    source: str
    text_version: str
    given_at: float
    valid_until: float | None
    withdrawn_at: float | None
    ownership_verified: bool
    imsi_known: bool  # an IMSI hash was recorded; the hash never leaves this module
    recorded_at: float
    evidence: str
    withdrawn_channels: tuple[str, ...] = ()  # what the withdrawal named
    replaces: str | None = None  # the record whose other channels this one continues
    erased_at: float | None = None  # erased under a legal hold
    held_until: float | None = None

    def state(self, now: float) -> str:
        if self.erased_at is not None:
            return "erased"
        if self.withdrawn_at is not None:
            return "withdrawn"
        if now < self.given_at:
            return "not_yet_valid"
        if self.valid_until is not None and self.valid_until <= now:
            return "expired"
        return "active"

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state(now),
            "channels": list(self.channels),
            "source": self.source,
            "text_version": self.text_version,
            "given_at": _iso(self.given_at),
            "valid_until": _iso(self.valid_until),
            "withdrawn_at": _iso(self.withdrawn_at),
            "withdrawn_channels": list(self.withdrawn_channels),
            "ownership_verified": self.ownership_verified,
            "imsi_known": self.imsi_known,
            "recorded_at": _iso(self.recorded_at),
            "evidence": self.evidence,
            "replaces": self.replaces,
            "erased_at": _iso(self.erased_at),
            "held_until": _iso(self.held_until),
        }


@dataclass(frozen=True, slots=True)
class ConsentCheck:
    ok: bool
    reason: str | None  # None when ok; else "<why>:<channel>"
    consent_id: str | None  # the record that grants it, or the most relevant that fails


@dataclass(frozen=True, slots=True)
class Erased:
    deleted: int  # gone from the file
    held: int  # kept under a legal hold (granting nothing) until held_until
    held_until: float | None  # the latest hold on the number's records


@dataclass(frozen=True, slots=True)
class _Row:
    """What check and subscriber_changed need of a record, and nothing more: the
    index may hold millions."""

    id: str
    channels: tuple[str, ...]
    given_at: float
    valid_until: float | None
    withdrawn_at: float | None
    withdrawn_channels: tuple[str, ...]
    ownership_verified: bool
    imsi_key: bytes | None


class ConsentBook:
    """Blocking SQLite for the writes and the exports (the daemon calls them through
    asyncio.to_thread); `check` and `subscriber_changed` read memory only."""

    def __init__(
        self,
        path: Path,
        keyer: NumberKeyer,
        clock: Callable[[], float] = time.time,
        max_records: int = MAX_RECORDS,
        max_per_number: int = MAX_PER_NUMBER,
    ) -> None:
        self.path = path
        self.keyer = keyer
        self.clock = clock
        self.max_records = max_records
        self.max_per_number = max_per_number
        self._index: dict[bytes, tuple[_Row, ...]] = {}
        self._ids: dict[str, _Row] = {}
        # Writers in this process one at a time: each refreshes its number's index
        # entry after its commit, and two interleaved refreshes could leave the older.
        self._lock = threading.Lock()

    # -- writes -------------------------------------------------------------------------

    def record(
        self,
        e164: str,
        channels: Sequence[str],
        source: str,
        text_version: str,
        given_at: float | None = None,
        valid_until: float | None = None,
        ownership_verified: bool = False,
        imsi: str | None = None,
        evidence: str = "",
        imsi_key: bytes | None = None,
    ) -> Consent:
        """`imsi` as the lookup told it, or `imsi_key` when the lookup keyed it
        already (LookupResult.imsi_key: the IMSI itself is masked in results)."""
        key = self.keyer.key(e164)
        if imsi is not None:
            imsi_key = self.keyer.imsi_key(imsi)
        now = self.clock()
        given = now if given_at is None else _time("given_at", given_at)
        if given > now + CLOCK_SKEW_S:
            raise ValueError("given_at: is in the future")
        until = None if valid_until is None else _time("valid_until", valid_until)
        if until is not None and until <= given:
            raise ValueError("valid_until: must be after given_at")
        if not isinstance(ownership_verified, bool):
            raise ValueError("ownership_verified: must be true or false")
        consent = Consent(
            id=_new_id(),
            channels=_channels(channels),
            source=_choice("source", source, SOURCES),
            text_version=_text("text_version", text_version, MAX_TEXT_VERSION, required=True),
            given_at=given,
            valid_until=until,
            withdrawn_at=None,
            ownership_verified=ownership_verified,
            imsi_known=imsi_key is not None,
            recorded_at=now,
            evidence=_text("evidence", evidence, MAX_EVIDENCE, required=False),
        )
        with self._lock, self._connect() as db:
            with _transaction(db):
                self._make_room(db, key)
                _insert(db, key, consent, imsi_key)
            self._refresh(db, key)
        return consent

    def withdraw(
        self, e164: str, channels: Sequence[str] | None = None, at: float | None = None
    ) -> list[Consent]:
        """Withdraws `channels` (None: all) from every record given by `at`; a record
        keeping other channels is closed and continued by a new record for those.
        Never refused for the bounds: each continuation has fewer channels than the
        record it continues, so a record has at most len(CHANNELS) - 1 of them."""
        key = self.keyer.key(e164)
        named = CHANNELS if channels is None else _channels(channels)
        now = self.clock()
        when = now if at is None else _time("at", at)
        if when > now + CLOCK_SKEW_S:
            raise ValueError("at: is in the future")
        changed: list[Consent] = []
        with self._lock, self._connect() as db:
            with _transaction(db):
                rows = db.execute(
                    f"SELECT {_COLUMNS}, key FROM consent WHERE key = ? AND erased_at IS NULL "
                    "AND withdrawn_at IS NULL AND given_at <= ? ORDER BY rowid",
                    (key, when),
                ).fetchall()
                for row in rows:
                    changed += _withdraw_one(db, key, row, named, when, now)
            self._refresh(db, key)
        return changed

    def erase(self, e164: str, hold_until: float | None = None) -> Erased:
        """Without a hold, every record of the number goes from the file, page by page
        overwritten, and the WAL is emptied so no older frame keeps it. With one, the
        records stay as evidence until `hold_until` (purge_expired_holds removes them)
        and grant nothing from now on. A hold already on some records is never cut
        short: a plain erase leaves them, a new hold only lengthens it."""
        key = self.keyer.key(e164)
        now = self.clock()
        hold = None if hold_until is None else _time("hold_until", hold_until)
        if hold is not None and hold <= now:
            raise ValueError("hold_until: must be in the future")
        if not self.path.exists():
            return Erased(0, 0, None)
        with self._lock, self._connect() as db:
            with _transaction(db):
                if hold is None:
                    deleted = db.execute(
                        "DELETE FROM consent WHERE key = ? AND erased_at IS NULL", (key,)
                    ).rowcount
                else:
                    deleted = 0
                    db.execute(
                        "UPDATE consent SET erased_at = coalesce(erased_at, ?), "
                        "held_until = max(coalesce(held_until, 0), ?) WHERE key = ?",
                        (now, hold, key),
                    )
                held, until = db.execute(
                    "SELECT count(*), max(held_until) FROM consent WHERE key = ?", (key,)
                ).fetchone()
            self._drop(key)
            _empty_wal(db)
        return Erased(deleted, held, until)

    def purge_expired_holds(self, now: float | None = None) -> int:
        when = self.clock() if now is None else now
        if not self.path.exists():
            return 0
        with self._lock, self._connect() as db:
            with _transaction(db):
                removed: int = db.execute(
                    "DELETE FROM consent WHERE held_until IS NOT NULL AND held_until <= ?",
                    (when,),
                ).rowcount
            if removed:
                _empty_wal(db)
        return removed

    # -- reads of the file -----------------------------------------------------------------

    def history(self, e164: str) -> list[Consent]:
        """Every record of the number still in the file (held ones too), in the order
        they were recorded."""
        key = self.keyer.key(e164)
        return [_consent(row) for row in self._rows(key)]

    def evidence(self, e164: str) -> dict[str, Any]:
        """What a regulator gets: the records and their history, the number masked,
        no IMSI or hash. `imsi_at_recording` says whether the SIM seen when a record was
        written was the one seen for the number's earlier records ("same"), another
        ("changed": the number may have changed hands), the first seen ("first"), or
        none was looked up ("not_recorded"). A continuation saw no SIM of its own: it
        says what the record it continues said."""
        key = self.keyer.key(e164)
        now = self.clock()
        records = []
        seen: dict[str, str] = {}
        previous: bytes | None = None
        for row in self._rows(key):
            c = _consent(row)
            if c.replaces in seen:  # a continuation: no new lookup, the original's SIM
                seen[c.id] = seen[c.replaces]
            else:
                seen[c.id] = _imsi_seen(row[9], previous)
                previous = row[9] if row[9] is not None else previous
            records.append({**c.to_json(now), "imsi_at_recording": seen[c.id]})
        return {"number": mask_msisdn(e164), "exported_at": _iso(now), "records": records}

    def load(self) -> None:
        """Rebuilds the index whole from the file: after a start, or when another
        process (the CLI) changed it. Bounded: the file holds at most max_records
        recorded and len(CHANNELS) - 1 continuations of each."""
        index: dict[bytes, list[_Row]] = {}
        if self.path.exists():
            with self._lock, self._connect() as db:
                rows = db.execute(
                    f"SELECT {_COLUMNS}, key FROM consent WHERE erased_at IS NULL "
                    "ORDER BY rowid LIMIT ?",
                    (self.max_records * len(CHANNELS),),
                ).fetchall()
            for row in rows:
                index.setdefault(bytes(row[-1]), []).append(_row(row))
        whole = {k: tuple(v) for k, v in index.items()}
        self._index = whole
        self._ids = {r.id: r for rows_ in whole.values() for r in rows_}

    def changed_at(self) -> int:
        """The database's (and its WAL's) change time: a write by anyone moves it."""
        times = [0]
        for p in (self.path, self.path.with_name(self.path.name + "-wal")):
            with suppress(FileNotFoundError):
                times.append(p.stat().st_mtime_ns)
        return max(times)

    # -- reads of memory (every call: no I/O) -------------------------------------------

    def check(
        self, number_key: bytes, channel: str, now: float, require_ownership: bool = False
    ) -> ConsentCheck:
        """Whether the number may be called on `channel` now. A record grants it only
        if it is in force, not withdrawn, and given after the channel's last withdrawal
        (a withdrawal is final: an older form found later does not undo it). Among
        several, the newest is the one that says who holds the number now."""
        rows = self._index.get(number_key, ())
        cut, cut_id = _last_withdrawal(rows, channel)
        best = verified = expired = pending = None
        for r in rows:
            if r.withdrawn_at is not None or channel not in r.channels or r.given_at <= cut:
                continue
            if now < r.given_at:
                pending = r
            elif r.valid_until is not None and r.valid_until <= now:
                if expired is None or r.valid_until >= (expired.valid_until or 0.0):
                    expired = r
            else:
                if best is None or r.given_at >= best.given_at:
                    best = r
                if r.ownership_verified and (verified is None or r.given_at >= verified.given_at):
                    verified = r
        if require_ownership:
            if verified is not None:
                return ConsentCheck(True, None, verified.id)
            if best is not None:
                return ConsentCheck(False, f"ownership_unverified:{channel}", best.id)
        elif best is not None:
            return ConsentCheck(True, None, best.id)
        if channel not in CHANNELS:
            raise ValueError("channel: must be one of " + ", ".join(CHANNELS))
        if expired is not None:
            return ConsentCheck(False, f"consent_expired:{channel}", expired.id)
        if cut_id is not None:
            return ConsentCheck(False, f"consent_withdrawn:{channel}", cut_id)
        pending_id = None if pending is None else pending.id
        return ConsentCheck(False, f"consent_missing:{channel}", pending_id)

    def __len__(self) -> int:
        """Records in memory (in force, expired or withdrawn; not erased)."""
        return len(self._ids)

    def imsi_recorded(self, consent_id: str) -> bool:
        """Whether the record holds the IMSI seen when it was given: a lookup that
        cannot tell the IMSI now leaves the subscriber unverified."""
        row = self._ids.get(consent_id)
        return row is not None and row.imsi_key is not None

    def subscriber_changed_key(self, consent_id: str, imsi_key: bytes | None) -> bool | None:
        """subscriber_changed, for an IMSI a lookup keyed already."""
        row = self._ids.get(consent_id)
        if row is None or row.imsi_key is None or imsi_key is None:
            return None
        return not hmac.compare_digest(imsi_key, row.imsi_key)

    def subscriber_changed(self, consent_id: str, imsi: str | None) -> bool | None:
        """True: the SIM behind the number is not the one seen when consent was
        recorded. None: cannot tell (no IMSI then, none now, or an IMSI that is no
        IMSI); the gate's policy decides what that means."""
        row = self._ids.get(consent_id)
        if row is None or row.imsi_key is None or not imsi:
            return None
        try:
            seen = self.keyer.imsi_key(imsi)
        except ValueError:
            return None
        return not hmac.compare_digest(seen, row.imsi_key)

    # -- helpers ------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit, closed after: nothing is held between calls.
        secure_delete on every connection, not only erasure's: an UPDATE frees the
        row's old cell too, and a copy left there would outlive the erasure."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Created 0600 before SQLite sees it: its -wal and -shm copy these bits.
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA secure_delete=ON")
            if db.execute("PRAGMA user_version").fetchone()[0] < _SCHEMA_VERSION:
                db.executescript(_SCHEMA)
            yield db
        finally:
            db.close()

    def _make_room(self, db: sqlite3.Connection, key: bytes) -> None:
        (total,) = db.execute("SELECT n FROM consent_count").fetchone()
        if total >= self.max_records:
            raise ConsentFull(f"the consent file holds {total} records already")
        (mine,) = db.execute(
            "SELECT count(*) FROM consent WHERE key = ? AND erased_at IS NULL", (key,)
        ).fetchone()
        if mine >= self.max_per_number:
            raise ConsentFull(f"this number has {mine} consent records already")

    def _rows(self, key: bytes) -> list[Any]:
        if not self.path.exists():
            return []
        with self._connect() as db:
            rows: list[Any] = db.execute(
                f"SELECT {_COLUMNS} FROM consent WHERE key = ? ORDER BY rowid", (key,)
            ).fetchall()
        return rows

    def _refresh(self, db: sqlite3.Connection, key: bytes) -> None:
        """The number's index entry as the file has it now (another process's writes
        to the same number included)."""
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM consent WHERE key = ? AND erased_at IS NULL ORDER BY rowid",
            (key,),
        ).fetchall()
        fresh = tuple(_row(r) for r in rows)
        stale = {r.id for r in self._index.get(key, ())} - {r.id for r in fresh}
        # New before old goes: a check running meanwhile never misses a record that stays.
        self._ids.update((r.id, r) for r in fresh)
        if fresh:
            self._index[key] = fresh
        else:
            self._index.pop(key, None)
        for gone in stale:
            self._ids.pop(gone, None)

    def _drop(self, key: bytes) -> None:
        for old in self._index.pop(key, ()):
            self._ids.pop(old.id, None)


# -- module helpers ---------------------------------------------------------------------


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """The checks and the writes as one: two processes cannot both pass a bound."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _empty_wal(db: sqlite3.Connection) -> None:
    """The WAL still holds the pages as they were before the delete: copy the zeroed
    ones back and truncate it, so no older frame keeps the erased rows."""
    busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    if busy:
        raise ErasureIncomplete("a reader kept the consent WAL busy: erase again")


def _insert(db: sqlite3.Connection, key: bytes, c: Consent, imsi_key: bytes | None) -> None:
    db.execute(
        f"INSERT INTO consent ({_COLUMNS}, key) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            c.id,
            ",".join(c.channels),
            c.source,
            c.text_version,
            c.given_at,
            c.valid_until,
            c.withdrawn_at,
            ",".join(c.withdrawn_channels) or None,
            int(c.ownership_verified),
            imsi_key,
            c.recorded_at,
            c.evidence,
            c.replaces,
            c.erased_at,
            c.held_until,
            key,
        ),
    )


def _withdraw_one(
    db: sqlite3.Connection,
    key: bytes,
    row: Any,
    named: tuple[str, ...],
    when: float,
    now: float,
) -> list[Consent]:
    """Closes one record for the channels named; the rest go on in a continuation
    with the same source, wording, dates, ownership, IMSI and evidence."""
    old = _consent(row)
    hit = tuple(c for c in old.channels if c in named)
    if not hit:
        return []
    db.execute(
        "UPDATE consent SET withdrawn_at = ?, withdrawn_channels = ? WHERE id = ?",
        (when, ",".join(hit), old.id),
    )
    closed = replace(old, withdrawn_at=when, withdrawn_channels=hit)
    rest = tuple(c for c in old.channels if c not in named)
    if not rest:
        return [closed]
    kept = replace(old, id=_new_id(), channels=rest, recorded_at=now, replaces=old.id)
    _insert(db, key, kept, row[9])
    return [closed, kept]


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(_CANONICAL.get(c, c) for c in text.split(",")) if text else ()


def _consent(row: Any) -> Consent:
    return Consent(
        id=row[0],
        channels=_split(row[1]),
        source=row[2],
        text_version=row[3],
        given_at=row[4],
        valid_until=row[5],
        withdrawn_at=row[6],
        withdrawn_channels=_split(row[7]),
        ownership_verified=bool(row[8]),
        imsi_known=row[9] is not None,
        recorded_at=row[10],
        evidence=row[11],
        replaces=row[12],
        erased_at=row[13],
        held_until=row[14],
    )


def _row(row: Any) -> _Row:
    return _Row(
        id=row[0],
        channels=_split(row[1]),
        given_at=row[4],
        valid_until=row[5],
        withdrawn_at=row[6],
        withdrawn_channels=_split(row[7]),
        ownership_verified=bool(row[8]),
        imsi_key=None if row[9] is None else bytes(row[9]),
    )


def _last_withdrawal(rows: tuple[_Row, ...], channel: str) -> tuple[float, str | None]:
    """The latest withdrawal that named `channel`: no record given before it grants it."""
    cut, cut_id = -math.inf, None
    for r in rows:
        if r.withdrawn_at is not None and r.withdrawn_at > cut and channel in r.withdrawn_channels:
            cut, cut_id = r.withdrawn_at, r.id
    return cut, cut_id


def _imsi_seen(imsi_key: bytes | None, previous: bytes | None) -> str:
    if imsi_key is None:
        return "not_recorded"
    if previous is None:
        return "first"
    return "same" if hmac.compare_digest(imsi_key, previous) else "changed"


def _new_id() -> str:
    return "c_" + secrets.token_hex(12)


def _channels(channels: Sequence[str]) -> tuple[str, ...]:
    if isinstance(channels, str) or not channels:
        raise ValueError("channels: a non-empty list of " + ", ".join(CHANNELS))
    for c in channels:
        if c not in _CANONICAL:
            raise ValueError("channels: each must be one of " + ", ".join(CHANNELS))
    return tuple(sorted({_CANONICAL[c] for c in channels}))


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name}: must be one of " + ", ".join(allowed))
    return value


def _text(name: str, value: str, limit: int, *, required: bool) -> str:
    """Free text goes into the file as written: it must not be (or hold) a number."""
    if not isinstance(value, str):
        raise ValueError(f"{name}: must be text")
    if required and not value.strip():
        raise ValueError(f"{name}: must not be empty")
    if len(value) > limit:
        raise ValueError(f"{name}: at most {limit} characters")
    if not value.isprintable():
        raise ValueError(f"{name}: must be printable text (no line breaks)")
    if number_in(value):
        raise ValueError(f"{name}: must not hold a number (7 or more digits in a row)")
    return value


def _time(name: str, value: float) -> float:
    """Unix seconds that an ISO-8601 export can show (no NaN, no year 10000)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: must be unix seconds")
    if not (math.isfinite(value) and 0 <= value <= _MAX_TIME):
        raise ValueError(f"{name}: must be unix seconds between 1970 and 9999")
    return float(value)
