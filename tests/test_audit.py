"""The decision audit trail on real SQLite files: what it records, what tampering
`verify` catches (and the one thing only an external head catches), erasure and
retention without breaking the chain, and its bounds when the disk fails."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import io
import shutil
import sqlite3
import stat
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from hlrd.compliance import audit
from hlrd.compliance.audit import AuditEntry, AuditError, AuditTrail, Head
from hlrd.store.keys import NumberKeyer

NUMBER = "48601234567"
OTHER = "48601234568"
KEYER = NumberKeyer(b"k" * 32)
CHAIN_KEY = b"c" * 32
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


class Clock:
    def __init__(self, now: float = T0 + 3600) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def entry(n: int, at: float = T0, verdict: str = "allow", **kw: Any) -> AuditEntry:
    return AuditEntry(
        decision_id=f"d{n}",
        at=at,
        policy="default",
        policy_version="3",
        verdict=verdict,
        reasons=kw.pop("reasons", ()),
        **kw,
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "audit.sqlite3"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def trail(path: Path, clock: Clock) -> AuditTrail:
    return AuditTrail(path, KEYER.key, CHAIN_KEY, clock=clock)


def write(trail: AuditTrail, count: int, start: int = 1, number: str = NUMBER) -> Head:
    """`count` decisions, 10 s apart from T0 on, in one flush."""
    for n in range(start, start + count):
        assert trail.append(number, entry(n, T0 + 10 * (n - 1)))
    return trail.flush()


def sql(path: Path, statement: str, args: tuple[Any, ...] = ()) -> list[Any]:
    """What someone with write access to the file, but not the key, can do."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        return db.execute(statement, args).fetchall()
    finally:
        db.close()


@contextlib.contextmanager
def wal_kept(trail: AuditTrail) -> Iterator[Path]:
    """A reader open on the file, as the daemon's queries are: the WAL then outlives
    each write (the last connection to close would fold it in and remove it)."""
    trail.flush()  # the file, made by the trail (and so with its modes)
    reader = sqlite3.connect(trail.path)
    try:
        reader.execute("SELECT count(*) FROM audit").fetchone()
        yield trail.path.with_name(trail.path.name + "-wal")
    finally:
        reader.close()


def on_disk(path: Path) -> bytes:
    """The database and its WAL and shared-memory files, as bytes."""
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return b"".join(p.read_bytes() for p in files if p.exists())


# -- recording and reading back ---------------------------------------------------------


def test_a_decision_is_read_back_by_number_and_by_time(trail: AuditTrail) -> None:
    full = AuditEntry(
        decision_id="d1",
        at=T0,
        policy="default",
        policy_version="3",
        verdict="block",
        reasons=("listed:dnc",),
        warnings=("stale_lookup",),
        lists=(("dnc", "2027-01-01"),),
        provider="sim",
        lookup_age_s=1.5,
        outcome="ok",
        consent_id="c-17",
        source="smpp",
    )
    assert trail.append(NUMBER, full)
    assert trail.append(OTHER, entry(2, T0 + 10))
    assert trail.pending == 2
    head = trail.flush()

    expected = {
        "seq": 1,
        "at": "2027-01-15T08:00:00Z",
        "decision_id": "d1",
        "policy": "default",
        "policy_version": "3",
        "verdict": "block",
        "reasons": ["listed:dnc"],
        "warnings": ["stale_lookup"],
        "lists": [["dnc", "2027-01-01"]],
        "lookup": {"provider": "sim", "age_s": 1.5, "outcome": "ok"},
        "consent_id": "c-17",
        "source": "smpp",
    }
    assert trail.by_number(NUMBER) == [expected]
    assert [r["decision_id"] for r in trail.by_number("+" + OTHER)] == ["d2"]
    assert trail.by_number("48609999999") == []
    assert trail.by_time(T0, T0 + 10) == [expected]  # until is exclusive
    assert [r["seq"] for r in trail.by_time(T0, T0 + 11)] == [1, 2]
    assert trail.by_time(T0, T0 + 11)[1]["lookup"] is None
    assert (trail.pending, trail.written, trail.count()) == (0, 2, 2)
    assert head == trail.head and head[0] == 2


def test_a_time_range_is_read_in_pages(trail: AuditTrail) -> None:
    write(trail, 7)
    first = trail.by_time(T0, T0 + 1000, limit=3)
    second = trail.by_time(T0, T0 + 1000, limit=3, after_seq=first[-1]["seq"])
    last = trail.by_time(T0, T0 + 1000, limit=3, after_seq=second[-1]["seq"])
    assert [[r["seq"] for r in page] for page in (first, second, last)] == [
        [1, 2, 3],
        [4, 5, 6],
        [7],
    ]


def test_a_time_range_inside_the_log_is_found_by_seq(trail: AuditTrail) -> None:
    write(trail, 9)
    assert [r["seq"] for r in trail.by_time(T0 + 20, T0 + 50)] == [3, 4, 5]
    assert [r["seq"] for r in trail.by_time(T0 + 20, T0 + 50, after_seq=1)] == [3, 4, 5]
    assert [r["seq"] for r in trail.by_time(T0 + 20, T0 + 50, after_seq=4)] == [5]
    assert trail.by_time(T0 + 21, T0 + 29) == []
    assert trail.by_time(T0 + 1000, T0 + 2000) == []


def test_an_unreadable_record_is_shown_as_such(trail: AuditTrail, path: Path) -> None:
    write(trail, 2)
    sql(path, "UPDATE audit SET body = x'ff00' WHERE seq = 2")
    assert trail.by_time(0, 1e12)[1] == {
        "seq": 2,
        "at": "2027-01-15T08:00:10Z",
        "problem": "record unreadable",
    }


def test_query_limits_are_capped(trail: AuditTrail, monkeypatch: pytest.MonkeyPatch) -> None:
    write(trail, 5)
    monkeypatch.setattr(audit, "MAX_LIMIT", 2)
    assert len(trail.by_time(0, float("inf"), limit=1_000_000)) == 2
    assert len(trail.by_number(NUMBER, limit=1_000_000)) == 2
    with pytest.raises(ValueError, match="limit"):
        trail.by_time(0, float("inf"), limit=0)


def test_nothing_written_reads_as_empty(trail: AuditTrail, path: Path) -> None:
    assert (trail.by_number(NUMBER), trail.by_time(0, 1e12), trail.count()) == ([], [], 0)
    assert trail.verify().ok
    assert not path.exists()  # reading creates no file


def test_the_files_are_private(trail: AuditTrail, path: Path) -> None:
    with wal_kept(trail) as wal:
        write(trail, 1)
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(wal.stat().st_mode) == 0o600


def test_no_number_is_written_in_plaintext(trail: AuditTrail, path: Path) -> None:
    numbers = [NUMBER, OTHER, "447700900123", "15551234567"]
    with wal_kept(trail) as wal:
        for n, number in enumerate(numbers):
            e = entry(n, T0 + n, reasons=("listed:dnc",), consent_id="c1")
            assert trail.append(number, e)
        trail.flush()
        assert KEYER.key(NUMBER) in wal.read_bytes()
        data = on_disk(path)
    assert KEYER.key(NUMBER) in data  # the rows are there, under the number's key
    for number in numbers:
        assert number.encode() not in data
        assert number[-9:].encode() not in data


def test_a_number_the_keyer_refuses_is_recorded_without_one(trail: AuditTrail) -> None:
    assert trail.append("not a number", entry(1))
    trail.flush()
    assert (trail.count(), trail.unkeyed) == (1, 1)
    assert trail.verify().ok


def test_a_file_of_a_newer_format_is_refused(trail: AuditTrail, path: Path) -> None:
    write(trail, 1)
    sql(path, "PRAGMA user_version = 99")
    trail.append(NUMBER, entry(2))
    with pytest.raises(AuditError, match="format 99"):
        trail.flush()
    assert trail.pending == 1


# -- the chain -----------------------------------------------------------------------


def test_the_chain_verifies_across_flushes_and_restarts(
    trail: AuditTrail, path: Path, clock: Clock
) -> None:
    write(trail, 3)
    write(trail, 2, start=4)
    head = write(trail, 1, start=6)
    assert trail.verify(head) == audit.Verification(True, 6, head=head)

    again = AuditTrail(path, KEYER.key, CHAIN_KEY, clock=clock)  # a restart
    assert again.flush() == head  # reads where the chain stands
    new_head = write(again, 2, start=7)
    assert new_head[0] == 8
    assert again.verify(new_head).ok and again.verify(head).ok  # an older head still holds
    assert again.verify(new_head).records == 8


def test_two_writers_on_one_file_continue_each_others_chain(
    trail: AuditTrail, path: Path, clock: Clock
) -> None:
    other = AuditTrail(path, KEYER.key, CHAIN_KEY, clock=clock)
    write(trail, 2)
    write(other, 2, start=3)
    head = write(trail, 2, start=5)
    assert head[0] == 6
    assert trail.verify(head).ok


def test_a_chain_key_that_differs_fails_every_record(trail: AuditTrail, path: Path) -> None:
    write(trail, 2)
    stranger = AuditTrail(path, KEYER.key, b"x" * 32)
    assert stranger.verify() == audit.Verification(
        False, 0, 1, "record 1 altered (its MAC does not match)", (0, "00" * 32)
    )


def _flip_a_body_byte(path: Path) -> None:
    (body,) = sql(path, "SELECT body FROM audit WHERE seq = 3")[0]
    sql(path, "UPDATE audit SET body = ? WHERE seq = 3", (body[:5] + b"X" + body[6:],))


def _change_the_verdict(path: Path) -> None:
    (body,) = sql(path, "SELECT body FROM audit WHERE seq = 3")[0]
    assert b'"verdict":"allow"' in body
    sql(path, "UPDATE audit SET body = ? WHERE seq = 3", (body.replace(b"allow", b"block"),))


def _swap(path: Path) -> None:
    cols = "at, number_key, salt, number_digest, body, mac"
    three, four = (sql(path, f"SELECT {cols} FROM audit WHERE seq = ?", (s,))[0] for s in (3, 4))
    update = (
        "UPDATE audit SET at=?, number_key=?, salt=?, number_digest=?, body=?, mac=? WHERE seq=?"
    )
    sql(path, update, (*four, 3))
    sql(path, update, (*three, 4))


def _forged(path: Path, seq: int, body: bytes) -> tuple[Any, ...]:
    """A record chained onto the one before it exactly as hlrd does, but under a key
    that is not the chain key: what someone without the key can make at best."""
    (prev,) = sql(path, "SELECT mac FROM audit WHERE seq = ?", (seq - 1,))[0]
    digest = bytes(32)
    at = T0 + 15
    message = prev + struct.pack(">Qd", seq, at) + digest + body
    mac = hmac.new(b"w" * 32, message, hashlib.sha256).digest()
    return (seq, at, None, None, digest, body, mac)


def _insert_forged_in_the_middle(path: Path) -> None:
    (body,) = sql(path, "SELECT body FROM audit WHERE seq = 2")[0]
    sql(path, "UPDATE audit SET seq = seq + 100 WHERE seq >= 3")
    sql(path, "UPDATE audit SET seq = seq - 99 WHERE seq >= 100")
    sql(path, "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?)", _forged(path, 3, body))


def _append_forged(path: Path) -> None:
    (body,) = sql(path, "SELECT body FROM audit WHERE seq = 6")[0]
    sql(path, "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?)", _forged(path, 7, body))


TAMPERING: dict[str, tuple[Callable[[Path], object], int, str]] = {
    "a body byte": (_flip_a_body_byte, 3, "record 3 altered"),
    "a verdict": (_change_the_verdict, 3, "record 3 altered"),
    "a time": (lambda p: sql(p, "UPDATE audit SET at = at - 1 WHERE seq = 3"), 3, "altered"),
    "a record's number (its digest)": (
        lambda p: sql(p, "UPDATE audit SET number_digest = zeroblob(32) WHERE seq = 3"),
        3,
        "record 3 altered",
    ),
    "a middle record deleted": (
        lambda p: sql(p, "DELETE FROM audit WHERE seq = 3"),
        3,
        "record 3 missing (seq jumps 2 -> 4)",
    ),
    "two middle records deleted": (
        lambda p: sql(p, "DELETE FROM audit WHERE seq IN (3, 4)"),
        3,
        "records 3..4 missing (seq jumps 2 -> 5)",
    ),
    "the first record deleted": (
        lambda p: sql(p, "DELETE FROM audit WHERE seq = 1"),
        1,
        "record 1 missing (the log starts at 2; no anchor says they were pruned)",
    ),
    "two records swapped": (_swap, 3, "record 3 altered"),
    "a forged record inserted": (_insert_forged_in_the_middle, 3, "record 3 altered"),
    "a forged record appended": (_append_forged, 7, "record 7 altered"),
    "a MAC of another type": (
        lambda p: sql(p, "UPDATE audit SET mac = 'x' WHERE seq = 3"),
        3,
        "record 3 altered",
    ),
}


@pytest.mark.parametrize("what", TAMPERING)
def test_tampering_is_detected_and_named(trail: AuditTrail, path: Path, what: str) -> None:
    tamper, bad, problem = TAMPERING[what]
    write(trail, 6)
    tamper(path)
    found = trail.verify()
    assert (found.ok, found.first_bad_seq) == (False, bad)
    assert found.problem is not None and problem in found.problem
    assert found.records == bad - 1


def test_a_cut_off_end_is_caught_only_against_a_head_kept_elsewhere(
    trail: AuditTrail, path: Path
) -> None:
    """Nothing follows the last record to break: without the head logged at flush,
    a log cut short is just a shorter log."""
    head = write(trail, 6)
    sql(path, "DELETE FROM audit WHERE seq >= 5")
    assert trail.verify().ok
    assert trail.verify() == audit.Verification(True, 4, head=trail.verify().head)
    found = trail.verify(head)
    assert not found.ok
    assert (found.first_bad_seq, found.problem) == (5, "log ends at 4 but the head says 6")


def test_a_head_with_another_mac_is_caught(trail: AuditTrail) -> None:
    seq, _ = write(trail, 3)
    found = trail.verify((seq, "ab" * 32))
    assert not found.ok and found.first_bad_seq == 3
    assert found.problem == "record 3 is not the one the head names (another MAC)"


def test_an_end_cut_off_while_running_stays_visible(trail: AuditTrail, path: Path) -> None:
    """The next flush chains on from what was written, not from what is left: the
    gap is not papered over."""
    write(trail, 4)
    sql(path, "DELETE FROM audit WHERE seq = 4")
    with capture_logs() as logs:
        write(trail, 1, start=5)
    assert [e["event"] for e in logs] == ["audit.end_missing"]
    found = trail.verify()
    assert (found.ok, found.problem) == (False, "record 4 missing (seq jumps 3 -> 5)")


# -- erasure ---------------------------------------------------------------------------


def test_unlink_leaves_the_decisions_and_the_chain_but_not_the_link(
    trail: AuditTrail, path: Path
) -> None:
    key = KEYER.key(NUMBER)
    write(trail, 3, number=NUMBER)  # folded into the database file
    with wal_kept(trail) as wal:
        write(trail, 2, start=4, number=OTHER)
        write(trail, 1, start=6, number=NUMBER)  # in the WAL
        trail.append(NUMBER, entry(7, T0 + 60))  # still pending: unlinked too
        assert key in path.read_bytes() and key in wal.read_bytes()

        assert trail.unlink(NUMBER) == 5

        assert key not in on_disk(path)
    assert trail.by_number(NUMBER) == []
    assert [r["seq"] for r in trail.by_number(OTHER)] == [4, 5]
    assert trail.count() == 7
    assert trail.verify(trail.head).ok
    assert trail.export(io.BytesIO(), e164=NUMBER) == 0
    assert trail.unlink(NUMBER) == 0


# -- retention -------------------------------------------------------------------------


def test_prune_leaves_an_anchor_and_the_chain_verifies(trail: AuditTrail, path: Path) -> None:
    old_head = write(trail, 3)
    head = write(trail, 7, start=4)  # records 1..10 at T0, T0+10, ... T0+90
    assert trail.prune(T0 + 45) == 5
    assert [r["seq"] for r in trail.by_time(0, 1e12)] == [6, 7, 8, 9, 10]
    assert sql(path, "SELECT seq, at FROM anchor") == [(5, T0 + 40)]
    assert trail.verify(head) == audit.Verification(True, 5, head=head)
    assert trail.verify(old_head).ok  # pruned past it: the log still reaches it
    assert trail.prune(T0 + 45) == 0

    new_head = write(trail, 2, start=11)
    assert trail.verify(new_head).ok and new_head[0] == 12


def test_prune_of_everything_keeps_the_chain_going(trail: AuditTrail) -> None:
    head = write(trail, 4)
    assert trail.prune(T0 + 1e6) == 4
    assert trail.count() == 0
    assert trail.verify(head) == audit.Verification(True, 0, head=head)
    again = write(trail, 1, start=5)
    assert again[0] == 5 and trail.verify(again).ok


def test_prune_goes_in_chunks(trail: AuditTrail, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "PRUNE_CHUNK", 3)
    head = write(trail, 10)
    assert trail.prune(T0 + 75) == 8
    assert trail.verify(head).records == 2


def test_a_removed_anchor_is_detected(trail: AuditTrail, path: Path) -> None:
    write(trail, 6)
    trail.prune(T0 + 25)
    sql(path, "DELETE FROM anchor")
    found = trail.verify()
    assert (found.ok, found.first_bad_seq) == (False, 1)
    assert found.problem == (
        "records 1..3 missing (the log starts at 4; no anchor says they were pruned)"
    )


def test_pruning_by_hand_cannot_forge_an_anchor(trail: AuditTrail, path: Path) -> None:
    """Someone deletes old records that retention would keep and moves the anchor
    up, copying the last deleted record's MAC: the anchor's signature gives it away."""
    write(trail, 6)
    trail.prune(T0 + 5)
    at, mac = sql(path, "SELECT at, mac FROM audit WHERE seq = 3")[0]
    sql(path, "DELETE FROM audit WHERE seq <= 3")
    sql(path, "UPDATE anchor SET seq = 3, at = ?, mac = ?", (at, mac))
    found = trail.verify()
    assert (found.ok, found.problem) == (False, "the anchor (seq 3) altered")
    assert trail.prune(T0 + 1e6) == 0  # and retention does not sign it over


def test_retention_does_not_launder_an_altered_record(trail: AuditTrail, path: Path) -> None:
    write(trail, 5)
    _change_the_verdict(path)  # record 3
    with capture_logs() as logs:
        assert trail.prune(T0 + 1e6) == 2
    assert [e["event"] for e in logs] == ["audit.prune_stopped"]
    found = trail.verify()
    assert (found.ok, found.first_bad_seq) == (False, 3)


def test_a_clock_stepping_back_keeps_times_in_order(trail: AuditTrail, path: Path) -> None:
    for n, at in enumerate((T0, T0 + 30, T0 + 10, T0 + 40), 1):
        trail.append(NUMBER, entry(n, at))
    trail.flush()
    assert [at for (at,) in sql(path, "SELECT at FROM audit ORDER BY seq")] == [
        T0,
        T0 + 30,
        T0 + 30,  # stamped no earlier than the record before it
        T0 + 40,
    ]
    assert trail.by_number(NUMBER)[2]["at"] == "2027-01-15T08:00:10Z"  # the decision's own
    assert trail.prune(T0 + 20) == 1  # only the prefix
    assert trail.verify().ok


def test_a_time_ahead_of_the_clock_is_stamped_with_the_clock(
    trail: AuditTrail, path: Path, clock: Clock
) -> None:
    trail.append(NUMBER, entry(1, clock.now + 1e9))
    trail.append(NUMBER, entry(2, float("nan")))
    trail.flush()
    assert sql(path, "SELECT at FROM audit") == [(clock.now,), (clock.now,)]


# -- bounds and failures ---------------------------------------------------------------


def test_pending_is_bounded_and_frees_up_when_written(path: Path, clock: Clock) -> None:
    trail = AuditTrail(path, KEYER.key, CHAIN_KEY, clock=clock, max_pending=3)
    assert [trail.append(NUMBER, entry(n)) for n in range(4)] == [True, True, True, False]
    assert (trail.pending, trail.refused) == (3, 1)
    trail.flush()
    assert trail.append(NUMBER, entry(5))
    assert trail.pending == 1


def test_decisions_being_written_still_count_as_pending(path: Path, clock: Clock) -> None:
    """A slow flush has taken the batch but not written it: were those not counted,
    appends meanwhile would hold up to twice the bound when the write fails."""
    entered, release = threading.Event(), threading.Event()

    def slow_keyer(e164: str) -> bytes:
        entered.set()
        assert release.wait(10)
        return KEYER.key(e164)

    trail = AuditTrail(path, slow_keyer, CHAIN_KEY, clock=clock, max_pending=3)
    trail.append(NUMBER, entry(1))
    trail.append(NUMBER, entry(2))
    flushing = threading.Thread(target=trail.flush)
    flushing.start()
    try:
        assert entered.wait(10)
        assert [trail.append(NUMBER, entry(n)) for n in (3, 4)] == [True, False]
        assert trail.pending == 3
    finally:
        release.set()
        flushing.join()
    assert (trail.pending, trail.count()) == (1, 2)


def test_a_failing_flush_keeps_its_decisions_for_the_next(path: Path, clock: Clock) -> None:
    trail = AuditTrail(path, KEYER.key, CHAIN_KEY, clock=clock, max_pending=3)
    write(trail, 1)
    aside = path.parent.parent / "aside"
    shutil.move(path.parent, aside)
    path.mkdir(parents=True)  # the database's path is now a directory
    trail.append(NUMBER, entry(2, T0 + 10))
    trail.append(NUMBER, entry(3, T0 + 20))

    with pytest.raises((OSError, sqlite3.Error)):
        trail.flush()
    assert (trail.pending, trail.write_failures) == (2, 1)
    assert trail.append(NUMBER, entry(4, T0 + 30))
    assert not trail.append(NUMBER, entry(5, T0 + 40))  # still bounded

    shutil.rmtree(path.parent)
    shutil.move(aside, path.parent)
    head = trail.flush()
    assert head[0] == 4 and trail.pending == 0
    assert [r["decision_id"] for r in trail.by_number(NUMBER)] == ["d1", "d2", "d3", "d4"]
    assert trail.verify(head).ok


def test_flushes_from_several_threads_make_one_chain(trail: AuditTrail) -> None:
    stop = threading.Event()

    def flusher() -> None:
        while not stop.is_set():
            trail.flush()

    threads = [threading.Thread(target=flusher) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for n in range(3000):
            while not trail.append(NUMBER, entry(n, T0 + n)):
                pass
    finally:
        stop.set()
        for t in threads:
            t.join()
    head = trail.flush()
    assert head[0] == trail.count() == 3000
    assert trail.verify(head).ok
    seqs = [r["decision_id"] for r in trail.by_time(0, 1e12, limit=10_000)]
    assert seqs == [f"d{n}" for n in range(3000)]  # in the order appended


# -- export ------------------------------------------------------------------------------


def test_export_writes_json_lines_by_time_and_by_number(trail: AuditTrail, tmp_path: Path) -> None:
    write(trail, 4, number=NUMBER)
    write(trail, 2, start=5, number=OTHER)
    out = tmp_path / "export.jsonl"
    assert trail.export(out, since=T0 + 10, until=T0 + 50) == 4
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [r["seq"] for r in lines] == [2, 3, 4, 5]
    assert lines == trail.by_time(T0 + 10, T0 + 50)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    stream = io.BytesIO()
    assert trail.export(stream, e164=NUMBER, since=T0 + 10) == 3
    assert [orjson.loads(x)["decision_id"] for x in stream.getvalue().splitlines()] == [
        "d2",
        "d3",
        "d4",
    ]
    assert b"number" not in stream.getvalue() and NUMBER.encode() not in stream.getvalue()


def test_export_streams(trail: AuditTrail, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "FETCH_ROWS", 2)
    write(trail, 5)
    assert trail.verify().records == 5
    assert trail.export(io.BytesIO()) == 5


# -- the event loop's side ------------------------------------------------------------


async def test_run_writes_in_the_background_and_retries_a_failure(trail: AuditTrail) -> None:
    loop = asyncio.get_running_loop()
    written = asyncio.Event()
    real_flush = trail.flush
    calls = 0

    def flaky_flush() -> Head:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise sqlite3.OperationalError("disk I/O error")
        if calls == 3:  # the round after the write: its head has been logged
            loop.call_soon_threadsafe(written.set)
        return real_flush()

    trail.flush = flaky_flush  # type: ignore[method-assign]
    trail.append(NUMBER, entry(1))
    trail.append(NUMBER, entry(2))
    with capture_logs() as logs:
        task = asyncio.create_task(trail.run(0.001))
        try:
            await asyncio.wait_for(written.wait(), 10)
        finally:
            task.cancel()
    failed = [e for e in logs if e["event"] == "audit.flush_failed"]
    assert failed[0]["pending"] == 2 and "disk I/O error" in failed[0]["error"]
    heads = [e["head"] for e in logs if e["event"] == "audit.head"]
    # Logged so that the log's masking of digit runs leaves it whole: it reads back.
    assert heads and audit.parse_head(heads[-1]) == trail.head
    assert not any(NUMBER in str(v) for e in logs for v in e.values())
    assert trail.count() == 2


async def test_close_writes_what_is_pending_and_refuses_more(trail: AuditTrail) -> None:
    task = asyncio.create_task(trail.run(0.001))
    for n in range(5):
        assert trail.append(NUMBER, entry(n))
    head = await trail.close()
    task.cancel()
    assert head[0] == 5 and trail.count() == 5
    assert not trail.append(NUMBER, entry(6))
    assert trail.verify(head).ok


def test_a_short_chain_key_is_refused(path: Path) -> None:
    with pytest.raises(ValueError, match="chain key"):
        AuditTrail(path, KEYER.key, b"short")
    assert len(audit.derive_chain_key(b"s" * 32)) == 32
    assert audit.derive_chain_key(b"s" * 32) != KEYER.key("1")


def test_a_logged_head_survives_the_logs_masking_of_digit_runs() -> None:
    from hlrd.logging_setup import scrub

    head = (123456789, "0123456789" * 6 + "0123")  # a MAC full of digit runs
    logged = scrub(audit.head_text(head))
    assert audit.parse_head(logged) == head
    assert audit.parse_head(f"{head[0]}:{head[1]}") == head  # the plain form too
