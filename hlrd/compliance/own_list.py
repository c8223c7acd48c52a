"""The call center's own do-not-call list: numbers added one at a time, with why.

A registry is imported whole; this list changes a number at a time — an agent's
"do not call" disposition, a complaint, a CRM sync — and each entry says why
(`reason`), who said so (`source`), when, and until when (`expires_at`, or never).
It is the layer that never forgets: a CRM that drops its flag does not take the
number off here.

Entries live in `<data_dir>/lists/own.sqlite3` under the same 64-bit keyed hash as
the registries (no number is written), and in memory as key -> expiry for the gate.
Writes are small and rare; they run off the event loop. The daemon notices a change
made by `hlrd dnc` (the file's change time) and reloads the entries whole.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from .list_key import ListKeyer

NAME = "dnc"  # the list's name in reasons: listed:dnc
MAX_TEXT = 200  # reason and source, at most
MAX_ENTRIES = 5_000_000  # in memory ~100 bytes each: the daemon's share is bounded

_SCHEMA = """
CREATE TABLE IF NOT EXISTS own_dnc (
    key BLOB PRIMARY KEY,   -- 8 bytes, ListKeyer
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    added_at REAL NOT NULL,
    expires_at REAL         -- NULL: never
) WITHOUT ROWID;
"""


_DIGIT_RUN = re.compile(r"\d{7,}")


def number_in(text: str) -> bool:
    """Whether free text holds what could be a phone number or an IMSI (7+ digits in
    a row): a reason such as "customer 48601234567 complained" would put in the file
    the very number the list keeps only as a hash."""
    return _DIGIT_RUN.search(text) is not None


class OwnListFull(Exception):
    """The list holds MAX_ENTRIES already."""


@dataclass(frozen=True, slots=True)
class Entry:
    reason: str
    source: str
    added_at: float
    expires_at: float | None

    def active(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at


class OwnList:
    """Blocking SQLite: the daemon calls it through asyncio.to_thread."""

    def __init__(
        self,
        path: Path,
        keyer: ListKeyer,
        clock: Callable[[], float] = time.time,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.path = path
        self.keyer = keyer
        self.clock = clock
        self.max_entries = max_entries

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit, closed after (each call is one statement or
        a short read; nothing is held between calls)."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fresh = not self.path.exists()
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            if fresh:
                os.chmod(self.path, 0o600)
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            yield db
        finally:
            db.close()

    def add(self, e164: str, reason: str, source: str, expires_at: float | None = None) -> Entry:
        for name, text in (("reason", reason), ("source", source)):
            if number_in(text):
                raise ValueError(f"{name}: must not hold a number (7 or more digits in a row)")
        entry = Entry(reason[:MAX_TEXT], source[:MAX_TEXT], self.clock(), expires_at)
        key = self.keyer.key(e164).to_bytes(8, "big")
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # the count and the insert as one
            exists = db.execute("SELECT 1 FROM own_dnc WHERE key = ?", (key,)).fetchone()
            if exists is None:
                (count,) = db.execute("SELECT count(*) FROM own_dnc").fetchone()
                if count >= self.max_entries:
                    db.execute("ROLLBACK")
                    raise OwnListFull(f"the own do-not-call list holds {count} numbers already")
            db.execute(
                "INSERT INTO own_dnc VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "reason = excluded.reason, source = excluded.source, "
                "added_at = excluded.added_at, expires_at = excluded.expires_at",
                (key, entry.reason, entry.source, entry.added_at, entry.expires_at),
            )
            db.execute("COMMIT")
        return entry

    def remove(self, e164: str) -> bool:
        key = self.keyer.key(e164).to_bytes(8, "big")
        with self._connect() as db:
            return db.execute("DELETE FROM own_dnc WHERE key = ?", (key,)).rowcount > 0

    def get(self, e164: str) -> Entry | None:
        if not self.path.exists():
            return None
        key = self.keyer.key(e164).to_bytes(8, "big")
        with self._connect() as db:
            row = db.execute(
                "SELECT reason, source, added_at, expires_at FROM own_dnc WHERE key = ?", (key,)
            ).fetchone()
        return Entry(*row) if row is not None else None

    def load(self) -> dict[int, float | None]:
        """Every entry still in force: key -> expiry (what the gate checks)."""
        if not self.path.exists():
            return {}
        now = self.clock()
        with self._connect() as db:
            rows = db.execute(
                "SELECT key, expires_at FROM own_dnc WHERE expires_at IS NULL OR expires_at > ?",
                (now,),
            ).fetchmany(self.max_entries)
        return {int.from_bytes(k, "big"): exp for k, exp in rows}

    def changed_at(self) -> int:
        """The database's (and its WAL's) change time: a write by anyone moves it."""
        times = [0]
        for p in (self.path, self.path.with_name(self.path.name + "-wal")):
            with suppress(FileNotFoundError):
                times.append(p.stat().st_mtime_ns)
        return max(times)
