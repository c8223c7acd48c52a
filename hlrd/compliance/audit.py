"""The decision audit trail: why a number was, or was not, called — provably.

Every decision (allow / block / defer / unknown) is appended here, so a call center
can show a regulator, years later, what hlrd decided and on what grounds: the policy
and its version, the lists and their versions, the lookup it relied on, the consent.

Tamper evidence. Each record's MAC is a keyed BLAKE2b-256, under a chain key the file
does not hold, of the previous record's MAC, its seq, its time, its number digest and
its body. Someone who can write the file but does not have the key cannot alter, insert,
reorder or remove a record without `verify` naming it. Two things the chain alone
cannot show, and what covers them:

- the last records cut off: nothing follows them to break. `flush` returns the head
  (seq, MAC) and `run` logs it (`head_text`: the MAC in groups of four, so the
  log's masking of digit runs cannot touch it); `verify(expected_head)` checks the
  file against a head kept elsewhere;
- the oldest records cut off: retention (`prune`) leaves an anchor, signed with the
  chain key, saying where the log now starts; a log that starts later with no such
  anchor is reported.

Personal data. A record holds no number. It holds the number's key (the trail's own
keyed hash: AES under a key of its own, `number_keyer`), a random salt and
SHA-256(salt || key): the chain covers the digest, not
the key, so erasure (`unlink`) can clear key and salt — nothing then links the
decisions to the person — and the chain still verifies.

Cost. `append` runs on the event loop and only puts the decision in a bounded list;
`flush` (in a thread) does the hashing and writes a batch in one transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import os
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple, Protocol

import orjson
import structlog

from ..domain.times import iso_utc
from ..store.base import KEY_BYTES
from .list_key import ListKeyer

log = structlog.get_logger("hlrd.audit")

VERSION = 1  # PRAGMA user_version: the file's format
MAX_PENDING = 100_000  # decisions waiting in memory (~0.5 KiB each); beyond: fail closed
MAX_LIMIT = 10_000  # records one query returns at most: page with after_seq
FETCH_ROWS = 1_000  # rows read at a time by verify and export
PRUNE_CHUNK = 5_000  # records pruned per transaction: a flush never waits long
SALT_BYTES = 16
MAC_BYTES = 32
BUSY_TIMEOUT_S = 10.0
HEAD_LOG_S = 60.0  # how often `run` logs a head that moved
_GENESIS_MAC = bytes(MAC_BYTES)
_NO_NUMBER = bytes(32)  # the digest of a record whose number could not be keyed
_ANCHOR_TAG = b"hlrd-audit-anchor\x00"
_CHAIN_KEY_TAG = b"hlrd:audit-chain"
_NUMBER_KEY_TAG = b"hlrd:audit-numbers"
_SEQ_AT = struct.Struct(">Qd")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,      -- 1, 2, 3, ...: a gap is a removed record
    at REAL NOT NULL,             -- the decision's time; never before the previous record's
    number_key BLOB,              -- NumberKeyer; NULL once unlinked (erasure)
    salt BLOB,                    -- 16 random bytes; NULL once unlinked
    number_digest BLOB NOT NULL,  -- SHA-256(salt || number_key): what the chain covers
    body BLOB NOT NULL,           -- canonical JSON of the decision: no number
    mac BLOB NOT NULL             -- HMAC(chain key, previous mac || seq || at || digest || body)
);
CREATE INDEX IF NOT EXISTS audit_number ON audit(number_key) WHERE number_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
-- After retention: the last pruned record (seq, at, mac), signed with the chain key.
CREATE TABLE IF NOT EXISTS anchor (
    seq INTEGER NOT NULL,
    at REAL NOT NULL,
    mac BLOB NOT NULL,
    sig BLOB NOT NULL
);
PRAGMA user_version = {VERSION};
"""

_INSERT = "INSERT INTO audit (seq, at, number_key, salt, number_digest, body, mac) VALUES "
INSERT_ROWS = 500  # rows per INSERT statement (7 parameters each: SQLite allows 32,766)


def _insert(db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Many rows per statement. executemany steps SQLite once per row, and each step
    lets go of the interpreter lock and takes it back: a writer thread doing that a
    thousand times a flush forces the event loop to hand it over a thousand times."""
    for start in range(0, len(rows), INSERT_ROWS):
        chunk = rows[start : start + INSERT_ROWS]
        values = ",".join(["(?,?,?,?,?,?,?)"] * len(chunk))
        db.execute(_INSERT + values, [v for row in chunk for v in row])


Keyer = Callable[[str], bytes]
Head = tuple[int, str]  # (seq, MAC in hex) of the last record


class AuditError(Exception):
    """The audit file cannot be used; the message names it and why."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One decision as the caller made it. No number: it is passed beside the entry
    and kept only as its key."""

    decision_id: str
    at: float
    policy: str
    policy_version: str
    verdict: str
    reasons: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    lists: tuple[tuple[str, str], ...] = ()  # (name, version) of each list consulted
    provider: str | None = None
    lookup_age_s: float | None = None
    outcome: str | None = None
    consent_id: str | None = None
    source: str = "http"  # "http", "smpp", "job", ...


class EntrySource(Protocol):
    """What makes an AuditEntry when the writer needs it: the event loop appends the
    decision as it is and the writer's thread builds the record's fields."""

    def audit_entry(self) -> AuditEntry: ...


@dataclass(frozen=True, slots=True)
class Verification:
    """What `verify` found: the first problem only — after it, nothing can be
    trusted to follow from what came before."""

    ok: bool
    records: int  # records that verified (all of them when ok)
    first_bad_seq: int | None = None
    problem: str | None = None
    head: Head | None = None  # the last record that verified: compare with a logged head


class _Tail(NamedTuple):
    seq: int
    mac: bytes
    at: float


_GENESIS = _Tail(0, _GENESIS_MAC, -math.inf)

# What flush computes before it knows where the chain stands: key, salt, digest,
# body, and the time to stamp.
_Encoded = tuple[bytes | None, bytes | None, bytes, bytes, float]


def head_text(head: Head) -> str:
    """`SEQ:MAC`, the seq with `_` between thousands and the MAC in groups of four hex
    digits: the log masks runs of 7+ digits (they could be phone numbers), and a head
    written whole would lose some.
    `parse_head` reads it back, and the plain form too."""
    seq, mac = head
    return f"{seq:_}:" + ":".join(mac[i : i + 4] for i in range(0, len(mac), 4))


def parse_head(text: str) -> Head:
    """ValueError unless `SEQ:MAC` (the MAC as hex, grouped or not)."""
    seq, _, mac = text.strip().partition(":")
    seq, mac = seq.replace("_", ""), mac.replace(":", "").lower()
    if (
        not seq.isdigit()
        or len(mac) != 2 * MAC_BYTES
        or any(c not in "0123456789abcdef" for c in mac)
    ):
        raise ValueError("head: SEQ:MAC as `hlrd audit verify` or the audit.head log line gives it")
    return int(seq), mac


def number_keyer(secret: bytes) -> Keyer:
    """How the trail keys numbers: AES over the number (one block, ~0.7 µs; an HMAC
    is ~2.5 µs and the writer keys every decision) under a key of its own."""
    return ListKeyer(secret, _NUMBER_KEY_TAG).block


def derive_chain_key(secret: bytes) -> bytes:
    """The chain key from the daemon's hash key: one secret to keep, two uses that
    never meet (a number key is never a chain MAC)."""
    return hmac.digest(secret, _CHAIN_KEY_TAG, "sha256")


class AuditTrail:
    """`append` on the event loop; everything else is blocking SQLite for a thread
    (`asyncio.to_thread`). Each call opens its own connection: nothing is held between
    calls, and a file removed or replaced is noticed, not written through."""

    def __init__(
        self,
        path: Path,
        keyer: Keyer,
        chain_key: bytes,
        clock: Callable[[], float] = time.time,
        max_pending: int = MAX_PENDING,
    ) -> None:
        if len(chain_key) < KEY_BYTES:
            raise ValueError(f"a chain key has at least {KEY_BYTES} bytes")
        if max_pending < 1:
            raise ValueError("max_pending: at least 1")
        self.path = path
        self.keyer = keyer
        self.clock = clock
        self.max_pending = max_pending
        # HMAC with the key absorbed once: each record copies it.
        self._chain_key = chain_key
        self._lock = threading.Lock()  # the pending list: the loop appends, a thread takes
        self._write_lock = threading.Lock()  # one writer at a time: the chain is a sequence
        self._pending: list[tuple[str | None, AuditEntry | EntrySource]] = []
        self._in_flight = 0  # taken by a flush not yet committed: still counts as pending
        self._closed = False
        self._tail: _Tail | None = None  # where our chain stands; None until read
        self.head: Head | None = None
        # Counters for metrics.
        self.written = 0
        self.refused = 0  # appends refused: full or closed
        self.write_failures = 0
        self.unkeyed = 0  # recorded without a number: the keyer refused it
        self.dropped = 0  # could not be encoded at all

    @classmethod
    def for_data_dir(
        cls, data_dir: Path, secret: bytes, max_pending: int = MAX_PENDING
    ) -> AuditTrail:
        """The daemon's trail (<data_dir>/audit/audit.sqlite3), under keys derived
        from its secret: the daemon, `hlrd audit` and `hlrd erase` open the same."""
        return cls(
            data_dir / "audit" / "audit.sqlite3",
            number_keyer(secret),
            derive_chain_key(secret),
            max_pending=max_pending,
        )

    def __repr__(self) -> str:
        return f"AuditTrail({str(self.path)!r})"

    # -- the event loop's side ------------------------------------------------------

    def append(self, e164: str | None, entry: AuditEntry | EntrySource) -> bool:
        """False when the decision cannot be recorded (full, or closed): the caller
        must then not give it (fail closed). `e164` None: a decision about a person
        who was erased, recorded unlinked from the start (nothing may link them again)."""
        with self._lock:
            if self._closed or len(self._pending) + self._in_flight >= self.max_pending:
                self.refused += 1
                return False
            self._pending.append((e164, entry))
        return True

    @property
    def pending(self) -> int:
        return len(self._pending) + self._in_flight

    async def run(self, interval_s: float, head_every_s: float = HEAD_LOG_S) -> None:
        """Flush every `interval_s` until cancelled. A failing flush keeps its
        decisions (still bounded) for the next round; the head is logged when it has
        moved, at most every `head_every_s`: the copy of the head kept outside the
        file, against which a cut-off end is detected."""
        loop = asyncio.get_running_loop()
        logged: Head | None = None
        logged_at = -math.inf
        while True:
            await asyncio.sleep(interval_s)
            head = await self._flush_logged()
            if head is not None and head != logged and loop.time() - logged_at >= head_every_s:
                log.info("audit.head", head=head_text(head))
                logged, logged_at = head, loop.time()

    async def close(self) -> Head:
        """Refuse further appends and write what is pending. Raises when that write
        fails: the decisions still pending are then lost, and the error says how many."""
        with self._lock:
            self._closed = True
        try:
            head = await asyncio.to_thread(self.flush)
        except Exception as exc:
            log.error("audit.close_failed", lost=self.pending, error=_describe(exc))
            raise
        log.info("audit.head", head=head_text(head), closing=True)
        return head

    async def _flush_logged(self) -> Head | None:
        try:
            return await asyncio.to_thread(self.flush)
        except Exception as exc:  # the disk's trouble: logged (no number), retried
            log.warning("audit.flush_failed", pending=self.pending, error=_describe(exc))
            return None

    # -- writing --------------------------------------------------------------------

    def flush(self) -> Head:
        """Write every pending decision in one transaction; the new head. On failure
        the decisions stay pending (in order) and the error is raised."""
        with self._write_lock:
            return self._flush_locked()

    def _flush_locked(self) -> Head:
        batch = self._take()
        if not batch and self._tail is not None:
            return self._set_head(self._tail)
        try:
            encoded = self._encode(batch, self.clock())
            with self._connect() as db, _transaction(db):
                rows, tail = self._chain_rows(self._tail_for_writing(db), encoded)
                _insert(db, rows)
        except BaseException:
            self._give_back(batch)
            self.write_failures += 1
            raise
        with self._lock:
            self._in_flight = 0
        self.written += len(rows)
        return self._set_head(tail)

    def _take(self) -> list[tuple[str | None, AuditEntry | EntrySource]]:
        with self._lock:
            batch, self._pending = self._pending, []
            self._in_flight = len(batch)
        return batch

    def _give_back(self, batch: list[tuple[str | None, AuditEntry | EntrySource]]) -> None:
        with self._lock:
            self._pending = batch + self._pending
            self._in_flight = 0

    def _set_head(self, tail: _Tail) -> Head:
        self._tail = tail
        self.head = (tail.seq, tail.mac.hex())
        return self.head

    def _encode(
        self, batch: list[tuple[str | None, AuditEntry | EntrySource]], now: float
    ) -> list[_Encoded]:
        """Everything that needs no knowledge of the chain: done before the write
        lock on the file is taken."""
        salts = os.urandom(SALT_BYTES * len(batch))
        encoded: list[_Encoded] = []
        for i, (e164, item) in enumerate(batch):
            entry = item if isinstance(item, AuditEntry) else item.audit_entry()
            body = self._body(entry)
            if body is None:
                continue
            at = _stamp(entry.at, now)
            key = self._key(e164) if e164 is not None else None
            if key is None:
                encoded.append((None, None, _NO_NUMBER, body, at))
                continue
            salt = salts[i * SALT_BYTES : (i + 1) * SALT_BYTES]
            encoded.append((key, salt, hashlib.sha256(salt + key).digest(), body, at))
        return encoded

    def _body(self, entry: AuditEntry) -> bytes | None:
        try:
            return body_of(entry)
        except (TypeError, ValueError):  # a field of a type JSON has no form for
            self.dropped += 1
            log.error("audit.entry_dropped", decision_id=str(entry.decision_id)[:64])
            return None

    def _key(self, e164: str) -> bytes | None:
        """A number the keyer refuses is no number: the decision is recorded without
        one, rather than blocking every decision after it."""
        try:
            return self.keyer(e164)
        except (TypeError, ValueError):
            self.unkeyed += 1
            return None

    def _chain_rows(
        self, tail: _Tail, encoded: list[_Encoded]
    ) -> tuple[list[tuple[Any, ...]], _Tail]:
        """Times never go back along the chain (a clock stepped back stamps the
        previous time), so the records older than a date are always a prefix."""
        seq, mac, last_at = tail
        rows: list[tuple[Any, ...]] = []
        for key, salt, digest, body, at in encoded:
            seq += 1
            last_at = max(at, last_at)
            mac = self._mac(mac, seq, last_at, digest, body)
            rows.append((seq, last_at, key, salt, digest, body, mac))
        return rows, _Tail(seq, mac, last_at)

    def _tail_for_writing(self, db: sqlite3.Connection) -> _Tail:
        """Where the next record chains on, read in the write transaction. Another
        writer ahead of us (a second process): continue after it. The file behind
        what we wrote (its end cut off): continue after what we wrote, so the gap
        stays visible to `verify` instead of being papered over."""
        stored = _stored_tail(db)
        mine = self._tail
        if mine is None or stored.seq > mine.seq:
            return stored
        if stored.seq < mine.seq:
            log.warning("audit.end_missing", file_ends_at=stored.seq, written_up_to=mine.seq)
        return mine

    def _mac(self, prev: bytes, seq: int, at: float, digest: bytes, body: bytes) -> bytes:
        """Keyed BLAKE2b, a MAC by design (RFC 7693): one C call, where an HMAC object
        copied per record cost the writer ~3 µs of the event loop's interpreter lock."""
        message = b"".join((prev, _SEQ_AT.pack(seq, at), digest, body))
        return hashlib.blake2b(message, key=self._chain_key, digest_size=MAC_BYTES).digest()

    def _anchor_sig(self, seq: int, at: float, mac: bytes) -> bytes:
        message = b"".join((_ANCHOR_TAG, _SEQ_AT.pack(seq, at), mac))
        return hashlib.blake2b(message, key=self._chain_key, digest_size=MAC_BYTES).digest()

    # -- erasure and retention --------------------------------------------------------

    def unlink(self, e164: str) -> int:
        """GDPR Art. 17: the number's records lose their key and salt (the decisions
        stay, the chain still verifies, nothing leads from the number to them). Its
        pending decisions are written first, so they are unlinked too. The records
        unlinked."""
        key = self.keyer(e164)
        with self._write_lock:
            self._flush_locked()
            with self._connect() as db:
                with _transaction(db):
                    cur = db.execute(
                        "UPDATE audit SET number_key = NULL, salt = NULL WHERE number_key = ?",
                        (key,),
                    )
                _checkpoint(db, "unlink")
        return cur.rowcount

    def prune(self, before: float) -> int:
        """Retention: remove the records older than `before`, oldest first, leaving a
        signed anchor where the log now starts. Only a prefix that verifies is
        removed: retention never launders an altered record (it stops there, says
        so, and `verify` keeps reporting it). The records removed."""
        removed = 0
        while True:
            with self._write_lock, self._connect() as db:
                with _transaction(db):
                    n = self._prune_chunk(db, before)
                removed += n
                if n < PRUNE_CHUNK:
                    if removed:
                        _checkpoint(db, "prune")
                    return removed

    def _prune_chunk(self, db: sqlite3.Connection, before: float) -> int:
        start = self._start(db)
        if isinstance(start, Verification):  # a start that does not verify: keep all
            log.warning("audit.prune_stopped", reason=start.problem)
            return 0
        last: _Tail | None = None
        prev = start
        rows = db.execute(
            "SELECT seq, at, number_digest, body, mac FROM audit ORDER BY seq LIMIT ?",
            (PRUNE_CHUNK,),
        ).fetchall()
        for seq, at, digest, body, mac in rows:
            if seq != prev.seq + 1 or not self._matches(prev.mac, seq, at, digest, body, mac):
                log.warning("audit.prune_stopped", seq=seq, reason="the chain breaks there")
                break
            if not at < before:
                break
            last = prev = _Tail(seq, mac, at)
        if last is None:
            return 0
        db.execute("DELETE FROM audit WHERE seq <= ?", (last.seq,))
        db.execute("DELETE FROM anchor")
        db.execute(
            "INSERT INTO anchor (seq, at, mac, sig) VALUES (?, ?, ?, ?)",
            (last.seq, last.at, last.mac, self._anchor_sig(last.seq, last.at, last.mac)),
        )
        return last.seq - start.seq

    # -- verification -----------------------------------------------------------------

    def verify(self, expected_head: Head | None = None) -> Verification:
        """Walk the chain from its start (genesis or the anchor) to its end, a batch
        of rows at a time. `expected_head`, a head logged earlier, also proves that
        the end was not cut off: the log must reach it, with the same MAC there."""
        if not self.path.exists():
            return _against_head(Verification(True, 0), _GENESIS, expected_head)
        with self._connect() as db:
            db.execute("BEGIN")  # one snapshot: records written meanwhile are not seen
            try:
                return self._walk(db, expected_head)
            finally:
                db.execute("ROLLBACK")

    def _walk(self, db: sqlite3.Connection, expected: Head | None) -> Verification:
        start = self._start(db)
        if isinstance(start, Verification):
            return start
        anchored = start is not _GENESIS
        if anchored and expected is not None and expected[0] == start.seq:
            unlike = _against_anchor(start, expected[1])
            if unlike is not None:
                return unlike
        prev, count = start, 0
        cur = db.execute("SELECT seq, at, number_digest, body, mac FROM audit ORDER BY seq")
        for seq, at, digest, body, mac in _rows(cur):
            problem = _gap(prev.seq, seq, anchored=anchored) or self._check(
                prev.mac, (seq, at, digest, body, mac), expected
            )
            if problem is not None:
                bad = prev.seq + 1 if seq > prev.seq else seq
                return Verification(False, count, bad, problem, _head_of(prev))
            prev, count = _Tail(seq, mac, at), count + 1
        return _against_head(Verification(True, count, head=_head_of(prev)), prev, expected)

    def _check(self, prev: bytes, row: tuple[Any, ...], expected: Head | None) -> str | None:
        seq, at, digest, body, mac = row
        if not self._matches(prev, seq, at, digest, body, mac):
            return f"record {seq} altered (its MAC does not match)"
        if expected is not None and seq == expected[0] and mac.hex() != expected[1]:
            return f"record {seq} is not the one the head names (another MAC)"
        return None

    def _start(self, db: sqlite3.Connection) -> _Tail | Verification:
        """Genesis, or the anchor retention left, if its signature holds."""
        rows = db.execute("SELECT seq, at, mac, sig FROM anchor LIMIT 2").fetchall()
        if not rows:
            return _GENESIS
        if len(rows) > 1:
            return Verification(False, 0, None, "more than one anchor")
        seq, at, mac, sig = rows[0]
        intact = (
            isinstance(seq, int)
            and seq > 0
            and isinstance(at, int | float)
            and isinstance(mac, bytes)
            and isinstance(sig, bytes)
            and hmac.compare_digest(self._anchor_sig(seq, at, mac), sig)
        )
        if not intact:
            return Verification(False, 0, None, f"the anchor (seq {seq}) altered")
        return _Tail(seq, mac, float(at))

    def _matches(self, prev: bytes, seq: int, at: Any, digest: Any, body: Any, mac: Any) -> bool:
        """Whether a stored record is the one the chain says; a value of another type
        than was written (an edit through SQL) is an alteration too."""
        if not all(isinstance(v, bytes) for v in (digest, body, mac)):
            return False
        try:
            expected = self._mac(prev, seq, at, digest, body)
        except (TypeError, struct.error, OverflowError):
            return False
        return hmac.compare_digest(expected, mac)

    # -- queries ----------------------------------------------------------------------

    def by_number(self, e164: str, limit: int = 1000, after_seq: int = 0) -> list[dict[str, Any]]:
        """A data subject's access request: the number's decisions, oldest first."""
        return self._select(self.keyer(e164), -math.inf, math.inf, after_seq, _capped(limit))

    def by_time(
        self, since: float, until: float, limit: int = 10_000, after_seq: int = 0
    ) -> list[dict[str, Any]]:
        """Decisions written in [since, until), oldest first; the next page starts
        after the last seq returned."""
        return self._select(None, since, until, after_seq, _capped(limit))

    def count(self) -> int:
        if not self.path.exists():
            return 0
        with self._connect() as db:
            return int(db.execute("SELECT count(*) FROM audit").fetchone()[0])

    def export(
        self,
        target: str | os.PathLike[str] | IO[bytes],
        since: float = 0.0,
        until: float = math.inf,
        e164: str | None = None,
    ) -> int:
        """JSON lines, one record each, as the queries give them; streamed, so a log of
        any size is exported in bounded memory. A path is created 0600: the decisions
        about one person are their personal data. The records written."""
        key = self.keyer(e164) if e164 is not None else None
        if isinstance(target, str | os.PathLike):
            with _private_file(Path(target)) as out:
                return self._export(out, key, since, until)
        return self._export(target, key, since, until)

    def _export(self, out: IO[bytes], key: bytes | None, since: float, until: float) -> int:
        if not self.path.exists():
            return 0
        written = 0
        with self._connect() as db:
            for seq, at, body in _rows(_matching(db, key, since, until, 0, -1)):
                out.write(orjson.dumps(_record(seq, at, body)) + b"\n")
                written += 1
        return written

    def _select(
        self, key: bytes | None, since: float, until: float, after_seq: int, limit: int
    ) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self._connect() as db:
            rows = _matching(db, key, since, until, after_seq, limit)
            return [_record(seq, at, body) for seq, at, body in rows]

    # -- the file ---------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Created 0600 before SQLite opens it: its -wal and -shm copy these bits.
        os.close(os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o600))
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise AuditError(f"{self.path}: SQLite cannot use WAL there (mode {mode})")
            db.execute("PRAGMA synchronous = FULL")  # a committed record survives power loss
            db.execute("PRAGMA secure_delete = ON")  # unlinked keys are overwritten, not freed
            _schema(db, self.path)
            yield db
        finally:
            db.close()


def body_of(entry: AuditEntry) -> bytes:
    """The canonical bytes of a decision (sorted keys, orjson): what the MAC covers."""
    has_lookup = (entry.provider, entry.lookup_age_s, entry.outcome) != (None, None, None)
    lookup = (
        {"provider": entry.provider, "age_s": entry.lookup_age_s, "outcome": entry.outcome}
        if has_lookup
        else None
    )
    return orjson.dumps(
        {
            "decision_id": entry.decision_id,
            "at": entry.at,
            "policy": entry.policy,
            "policy_version": entry.policy_version,
            "verdict": entry.verdict,
            "reasons": entry.reasons,
            "warnings": entry.warnings,
            "lists": entry.lists,
            "lookup": lookup,
            "consent_id": entry.consent_id,
            "source": entry.source,
        },
        option=orjson.OPT_SORT_KEYS,
    )


def _record(seq: int, at: float, body: bytes) -> dict[str, Any]:
    """A record as queries and exports give it: the decision, its seq, and its time
    in ISO-8601 UTC; never key, salt or digest."""
    try:
        fields = orjson.loads(body)
    except (orjson.JSONDecodeError, TypeError):
        fields = None
    if not isinstance(fields, dict):
        return {"seq": seq, "at": iso_utc(at), "problem": "record unreadable"}
    decided = fields.get("at")
    fields["at"] = iso_utc(decided if isinstance(decided, int | float) else at)
    return {"seq": seq, **fields}


def _matching(
    db: sqlite3.Connection,
    key: bytes | None,
    since: float,
    until: float,
    after_seq: int,
    limit: int,  # -1: all
) -> sqlite3.Cursor:
    """Records in [since, until), of one number's key or of all, after `after_seq`."""
    if key is not None:  # a number has few records: its index, then the times
        return db.execute(
            "SELECT seq, at, body FROM audit WHERE number_key = ? AND seq > ? "
            "AND at >= ? AND at < ? ORDER BY seq LIMIT ?",
            (key, after_seq, since, until, limit),
        )
    first, last = _window(db, since, until)
    return db.execute(
        "SELECT seq, at, body FROM audit WHERE seq > ? AND seq <= ? "
        "AND at >= ? AND at < ? ORDER BY seq LIMIT ?",
        (max(after_seq, first - 1), last, since, until, limit),
    )


def _window(db: sqlite3.Connection, since: float, until: float) -> tuple[int, int]:
    """The seqs of the first and last records in [since, until). Times never go back
    along the chain, so a time range is a seq range: two lookups in the time index,
    then a range of the table — not a scan of a years-long log for each page."""
    first = db.execute(
        "SELECT seq FROM audit WHERE at >= ? ORDER BY at, seq LIMIT 1", (since,)
    ).fetchone()
    last = db.execute(
        "SELECT seq FROM audit WHERE at < ? ORDER BY at DESC, seq DESC LIMIT 1", (until,)
    ).fetchone()
    return (1, 0) if first is None or last is None else (first[0], last[0])


def _stamp(at: float, now: float) -> float:
    """The time a record is filed under: the decision's, unless it is not a time or
    lies ahead of the clock (one such record would hold every later one at its time,
    since times never go back along the chain)."""
    if isinstance(at, int | float) and math.isfinite(at) and at <= now:
        return float(at)
    return now


def _capped(limit: int) -> int:
    if limit < 1:
        raise ValueError("limit: at least 1")
    return min(limit, MAX_LIMIT)


def _gap(prev: int, seq: int, *, anchored: bool) -> str | None:
    if seq == prev + 1:
        return None
    if seq <= prev:
        return f"record {seq} lies before the anchor (seq {prev})"
    missing = str(prev + 1) if seq == prev + 2 else f"{prev + 1}..{seq - 1}"
    noun = "record" if seq == prev + 2 else "records"
    if prev == 0 and not anchored:
        return (
            f"{noun} {missing} missing (the log starts at {seq}; no anchor says they were pruned)"
        )
    return f"{noun} {missing} missing (seq jumps {prev} -> {seq})"


def _against_head(found: Verification, end: _Tail, expected: Head | None) -> Verification:
    """An intact log must still reach a head kept elsewhere: records after it are
    fine (written since), records missing up to it are a cut-off end."""
    if expected is None or end.seq >= expected[0]:
        return found
    problem = f"log ends at {end.seq} but the head says {expected[0]}"
    return Verification(False, found.records, end.seq + 1, problem, found.head)


def _against_anchor(anchor: _Tail, mac_hex: str) -> Verification | None:
    """A head logged before the records up to it were pruned: the anchor has its MAC."""
    if anchor.mac.hex() == mac_hex:
        return None
    problem = f"the anchor (seq {anchor.seq}) is not what the head says (another MAC)"
    return Verification(False, 0, anchor.seq, problem)


def _head_of(tail: _Tail) -> Head:
    return (tail.seq, tail.mac.hex())


def _stored_tail(db: sqlite3.Connection) -> _Tail:
    """The last record (or the anchor). A value of the wrong type, written through
    SQL, is taken as nothing rather than stopping every write after it: the chain
    from it breaks, and `verify` says where."""
    row = db.execute("SELECT seq, mac, at FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    if row is None:
        row = db.execute("SELECT seq, mac, at FROM anchor ORDER BY seq DESC LIMIT 1").fetchone()
    if row is None:
        return _GENESIS
    seq, mac, at = row
    return _Tail(
        seq if isinstance(seq, int) else 0,
        mac if isinstance(mac, bytes) else _GENESIS_MAC,
        float(at) if isinstance(at, int | float) else -math.inf,
    )


def _rows(cur: sqlite3.Cursor) -> Iterator[tuple[Any, ...]]:
    """A cursor's rows a batch at a time: never the whole log in memory."""
    while rows := cur.fetchmany(FETCH_ROWS):
        yield from rows


def _schema(db: sqlite3.Connection, path: Path) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == 0:
        db.executescript(_SCHEMA)
    elif version != VERSION:
        raise AuditError(
            f"{path}: an audit file of format {version}, this hlrd reads format {VERSION} "
            "(written by a newer hlrd?)"
        )


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _checkpoint(db: sqlite3.Connection, why: str) -> None:
    """Copy the overwritten pages into the file and empty the WAL: an older frame
    there would still hold what was cleared."""
    busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    if busy:  # a reader outlasted the busy timeout: the next checkpoint finishes it
        log.warning("audit.checkpoint_busy", after=why)


@contextmanager
def _private_file(path: Path) -> Iterator[IO[bytes]]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "wb") as out:
        yield out


def _describe(exc: BaseException) -> str:
    """An error for the log: its type and message (SQLite and OS messages name files,
    never the values bound to a statement)."""
    return f"{type(exc).__name__}: {exc}"[:300]
