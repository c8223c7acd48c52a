"""Consent: recorded per number, checked in memory, withdrawn for good, tied to the SIM
that held the number, exported for a regulator, and erased from the files for real."""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest

from hlrd.compliance.consent import (
    CHANNELS,
    CLOCK_SKEW_S,
    MAX_PER_NUMBER,
    ConsentBook,
    ConsentCheck,
    ConsentFull,
    Erased,
)
from hlrd.store.keys import NumberKeyer

KEYER = NumberKeyer(b"k" * 32)
NUMBER = "48601234567"
OTHER = "48601234568"
IMSI = "260011234567890"
OTHER_IMSI = "260011234567891"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86_400.0
THREE_YEARS = 3 * 365 * DAY  # the policy default, applied by the caller
VERSION = "privacy-2026-03"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "consent" / "consent.sqlite3"


@pytest.fixture
def book(path: Path, clock: Clock) -> ConsentBook:
    return ConsentBook(path, KEYER, clock=clock)


def _check(
    book: ConsentBook, channel: str, now: float, number: str = NUMBER, *, owner: bool = False
) -> ConsentCheck:
    return book.check(KEYER.key(number), channel, now, require_ownership=owner)


def _on_disk(path: Path) -> bytes:
    """Every byte SQLite keeps of the book: the database, its WAL and any journal."""
    files = (path, *(path.with_name(path.name + s) for s in ("-wal", "-journal")))
    return b"".join(p.read_bytes() for p in files if p.exists())


@contextmanager
def _another_reader(path: Path) -> Iterator[sqlite3.Connection]:
    """An idle connection, as the daemon's would be while the CLI erases: the last
    connection to close no longer checkpoints the WAL away, so the erasure must."""
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("SELECT count(*) FROM consent").fetchall()
        yield db


# -- record and check ---------------------------------------------------------------------


def test_a_consent_grants_the_channels_it_names_and_no_other(book: ConsentBook) -> None:
    c = book.record(NUMBER, ["voice", "sms", "voice"], "web_form", VERSION, evidence="form-77")
    assert re.fullmatch(r"c_[0-9a-f]{24}", c.id)
    assert c.channels == ("sms", "voice") and c.given_at == T0 and c.recorded_at == T0
    assert (c.valid_until, c.withdrawn_at, c.imsi_known, c.ownership_verified) == (
        None,
        None,
        False,
        False,
    )
    assert _check(book, "voice", T0) == ConsentCheck(True, None, c.id)
    assert _check(book, "sms", T0 + THREE_YEARS * 10) == ConsentCheck(True, None, c.id)
    for channel in ("ivr", "messenger"):
        assert _check(book, channel, T0) == ConsentCheck(False, f"consent_missing:{channel}", None)


def test_a_number_without_consent_may_not_be_called(book: ConsentBook) -> None:
    book.record(NUMBER, ["voice"], "paper_form", VERSION)
    assert _check(book, "sms", T0, OTHER) == ConsentCheck(False, "consent_missing:sms", None)
    assert _check(book, "sms", T0) == ConsentCheck(False, "consent_missing:sms", None)


def test_a_channel_that_does_not_exist_is_a_caller_error(book: ConsentBook) -> None:
    book.record(NUMBER, ["voice"], "paper_form", VERSION)
    with pytest.raises(ValueError, match="channel"):
        _check(book, "fax", T0)


def test_a_consent_ends_at_valid_until(book: ConsentBook) -> None:
    c = book.record(NUMBER, ["voice"], "web_form", VERSION, valid_until=T0 + THREE_YEARS)
    assert c.valid_until == T0 + THREE_YEARS
    assert _check(book, "voice", T0 + THREE_YEARS - 1).ok
    expired = ConsentCheck(False, "consent_expired:voice", c.id)
    assert _check(book, "voice", T0 + THREE_YEARS) == expired
    renewed = book.record(NUMBER, ["voice"], "web_form", VERSION, valid_until=T0 + 4 * THREE_YEARS)
    assert _check(book, "voice", T0 + THREE_YEARS) == ConsentCheck(True, None, renewed.id)


def test_a_consent_given_a_moment_ahead_of_our_clock_counts_from_then(
    book: ConsentBook,
) -> None:
    c = book.record(NUMBER, ["sms"], "sms_keyword", VERSION, given_at=T0 + 60)
    assert _check(book, "sms", T0) == ConsentCheck(False, "consent_missing:sms", c.id)
    assert _check(book, "sms", T0 + 60).ok


def test_the_newest_of_several_consents_is_the_one_named(book: ConsentBook) -> None:
    book.record(NUMBER, ["voice"], "paper_form", VERSION, given_at=T0 - 10 * DAY)
    newer = book.record(NUMBER, ["voice"], "web_form", VERSION, given_at=T0 - DAY)
    book.record(NUMBER, ["voice"], "email", VERSION, given_at=T0 - 5 * DAY)
    assert _check(book, "voice", T0).consent_id == newer.id


# -- withdrawal ----------------------------------------------------------------------------


def test_withdrawing_one_channel_keeps_the_other_and_the_history(
    book: ConsentBook, clock: Clock
) -> None:
    first = book.record(
        NUMBER, ["voice", "sms"], "recorded_call", VERSION, imsi=IMSI, evidence="call-0042.wav"
    )
    clock.now = T0 + 100
    closed, kept = book.withdraw(NUMBER, ["sms"])
    assert (closed.id, closed.withdrawn_at, closed.withdrawn_channels) == (
        first.id,
        T0 + 100,
        ("sms",),
    )
    assert kept.channels == ("voice",) and kept.replaces == first.id and kept.id != first.id
    same = ("source", "text_version", "given_at", "valid_until", "imsi_known", "evidence")
    assert all(getattr(kept, f) == getattr(first, f) for f in same)
    assert (kept.recorded_at, kept.withdrawn_at) == (T0 + 100, None)
    assert _check(book, "sms", T0 + 200) == ConsentCheck(False, "consent_withdrawn:sms", first.id)
    assert _check(book, "voice", T0 + 200) == ConsentCheck(True, None, kept.id)
    assert book.history(NUMBER) == [closed, kept]
    assert [c.state(T0 + 200) for c in book.history(NUMBER)] == ["withdrawn", "active"]


def test_withdrawing_without_channels_withdraws_them_all(book: ConsentBook, clock: Clock) -> None:
    a = book.record(NUMBER, ["voice", "sms"], "web_form", VERSION)
    b = book.record(NUMBER, ["ivr"], "web_form", VERSION, valid_until=T0 + 10)
    clock.now = T0 + 100
    changed = book.withdraw(NUMBER)
    assert [(c.id, c.withdrawn_channels) for c in changed] == [
        (a.id, ("sms", "voice")),
        (b.id, ("ivr",)),  # expired already: the withdrawal is on record all the same
    ]
    for channel in ("voice", "sms", "ivr"):
        assert _check(book, channel, T0 + 100).reason == f"consent_withdrawn:{channel}"
    assert book.withdraw(NUMBER) == []  # nothing left to withdraw
    assert book.withdraw(OTHER) == []


def test_a_withdrawal_is_final_until_a_newer_consent(book: ConsentBook, clock: Clock) -> None:
    first = book.record(NUMBER, ["voice"], "web_form", VERSION)
    clock.now = T0 + 100
    book.withdraw(NUMBER, ["voice"])
    # A paper form signed before the withdrawal and typed in after it does not undo it.
    book.record(NUMBER, ["voice"], "paper_form", VERSION, given_at=T0 + 50)
    assert _check(book, "voice", T0 + 100) == ConsentCheck(
        False, "consent_withdrawn:voice", first.id
    )
    clock.now = T0 + 200
    again = book.record(NUMBER, ["voice"], "web_form", VERSION, valid_until=T0 + 300)
    assert _check(book, "voice", T0 + 200) == ConsentCheck(True, None, again.id)
    # Once the re-consent expires, that is what the number's latest record says.
    assert _check(book, "voice", T0 + 300) == ConsentCheck(False, "consent_expired:voice", again.id)


def test_a_withdrawal_dated_before_a_consent_leaves_it(book: ConsentBook, clock: Clock) -> None:
    clock.now = T0 + 100
    c = book.record(NUMBER, ["voice"], "web_form", VERSION)
    assert book.withdraw(NUMBER, ["voice"], at=T0 + 50) == []
    assert _check(book, "voice", T0 + 100) == ConsentCheck(True, None, c.id)


# -- ownership and the subscriber -----------------------------------------------------------


def test_ownership_is_required_only_when_asked_for(book: ConsentBook) -> None:
    verified = book.record(
        NUMBER, ["voice"], "recorded_call", VERSION, given_at=T0 - DAY, ownership_verified=True
    )
    newer = book.record(NUMBER, ["voice"], "web_form", VERSION)
    assert _check(book, "voice", T0) == ConsentCheck(True, None, newer.id)
    assert _check(book, "voice", T0, owner=True) == ConsentCheck(True, None, verified.id)
    unverified = book.record(NUMBER, ["sms"], "web_form", VERSION)
    assert _check(book, "sms", T0) == ConsentCheck(True, None, unverified.id)
    assert _check(book, "sms", T0, owner=True) == ConsentCheck(
        False, "ownership_unverified:sms", unverified.id
    )
    assert _check(book, "ivr", T0, owner=True).reason == "consent_missing:ivr"


def test_a_different_imsi_means_the_number_changed_hands(book: ConsentBook) -> None:
    with_imsi = book.record(NUMBER, ["voice", "sms"], "web_form", VERSION, imsi=IMSI)
    without = book.record(OTHER, ["voice"], "web_form", VERSION)
    assert with_imsi.imsi_known and not without.imsi_known
    assert book.subscriber_changed(with_imsi.id, OTHER_IMSI) is True
    assert book.subscriber_changed(with_imsi.id, IMSI) is False
    assert book.subscriber_changed(with_imsi.id, None) is None  # no IMSI seen now
    assert book.subscriber_changed(with_imsi.id, "not-an-imsi") is None
    assert book.subscriber_changed(without.id, IMSI) is None  # none recorded then
    assert book.subscriber_changed("c_" + "0" * 24, IMSI) is None
    _, kept = book.withdraw(NUMBER, ["sms"])  # the continuation keeps the SIM it was given on
    assert book.subscriber_changed(kept.id, OTHER_IMSI) is True


# -- the index and the file -----------------------------------------------------------------


def test_a_new_book_on_the_same_file_loads_what_the_first_wrote(
    book: ConsentBook, path: Path, clock: Clock
) -> None:
    c = book.record(NUMBER, ["voice", "sms"], "web_form", VERSION, imsi=IMSI)
    clock.now = T0 + 100
    _, kept = book.withdraw(NUMBER, ["sms"])
    book.record(OTHER, ["ivr"], "email", VERSION)
    book.erase(OTHER)
    later = ConsentBook(path, KEYER, clock=clock)
    assert _check(later, "voice", T0 + 100).reason == "consent_missing:voice"  # not loaded yet
    later.load()
    for channel in CHANNELS:
        for number in (NUMBER, OTHER):
            assert _check(later, channel, T0 + 100, number) == _check(
                book, channel, T0 + 100, number
            )
    assert _check(later, "sms", T0 + 100).reason == "consent_withdrawn:sms"
    assert later.subscriber_changed(kept.id, OTHER_IMSI) is True
    assert later.subscriber_changed(c.id, IMSI) is False


def test_a_check_reads_memory_only(book: ConsentBook, path: Path) -> None:
    c = book.record(NUMBER, ["voice"], "web_form", VERSION, imsi=IMSI)
    for p in path.parent.iterdir():
        p.unlink()
    assert _check(book, "voice", T0) == ConsentCheck(True, None, c.id)
    assert book.subscriber_changed(c.id, IMSI) is False


def test_a_write_by_another_process_moves_changed_at(
    book: ConsentBook, path: Path, clock: Clock
) -> None:
    assert book.changed_at() == 0  # no file yet
    book.record(NUMBER, ["voice"], "web_form", VERSION)
    for p in path.parent.glob(path.name + "*"):
        os.utime(p, ns=(1, 1))  # as if written long ago: no two writes share a tick
    before = book.changed_at()
    cli = ConsentBook(path, KEYER, clock=clock)
    cli.record(OTHER, ["sms"], "paper_form", VERSION)
    assert book.changed_at() > before
    assert not _check(book, "sms", T0, OTHER).ok
    book.load()
    assert _check(book, "sms", T0, OTHER).ok


def test_the_file_is_private(book: ConsentBook, path: Path) -> None:
    book.record(NUMBER, ["voice"], "web_form", VERSION)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        plans = db.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM consent WHERE key = ?", (b"x",)
        ).fetchall()
    assert any("consent_key" in str(p) for p in plans)


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"e164": "+48 601 234"}, "msisdn"),
        ({"channels": ["voice", "fax"]}, "channels"),
        ({"channels": []}, "channels"),
        ({"channels": "voice"}, "channels"),
        ({"source": "rumour"}, "source"),
        ({"text_version": ""}, "text_version"),
        ({"text_version": "v" * 65}, "text_version"),
        ({"text_version": f"privacy for {NUMBER}"}, "text_version"),
        ({"evidence": f"call-{NUMBER}.wav"}, "evidence"),
        ({"evidence": "f" * 201}, "evidence"),
        ({"evidence": "form 12\nsecond line"}, "evidence"),
        ({"given_at": T0 + CLOCK_SKEW_S + 1}, "given_at"),
        ({"given_at": math.nan}, "given_at"),
        ({"given_at": -1.0}, "given_at"),
        ({"valid_until": T0}, "valid_until"),
        ({"valid_until": T0 - DAY}, "valid_until"),
        ({"valid_until": 1e300}, "valid_until"),
        ({"ownership_verified": 1}, "ownership_verified"),
        ({"imsi": "26001-abc"}, "imsi"),
    ],
)
def test_bad_input_is_refused_naming_its_field(
    book: ConsentBook, path: Path, change: dict[str, Any], field: str
) -> None:
    args: dict[str, Any] = {
        "e164": NUMBER,
        "channels": ["voice"],
        "source": "web_form",
        "text_version": VERSION,
        **change,
    }
    with pytest.raises(ValueError, match=f"^{field}:") as exc:
        book.record(**args)
    assert NUMBER not in str(exc.value)  # an error body must not carry the number
    assert not path.exists()  # refused before anything was written


def test_bad_withdrawals_and_holds_are_refused_naming_their_field(book: ConsentBook) -> None:
    book.record(NUMBER, ["voice"], "web_form", VERSION)
    with pytest.raises(ValueError, match=r"^channels:"):
        book.withdraw(NUMBER, ["fax"])
    with pytest.raises(ValueError, match=r"^at:"):
        book.withdraw(NUMBER, at=T0 + CLOCK_SKEW_S + 1)
    with pytest.raises(ValueError, match=r"^hold_until:"):
        book.erase(NUMBER, hold_until=T0)
    assert _check(book, "voice", T0).ok


# -- bounds ---------------------------------------------------------------------------------


def test_the_file_holds_at_most_max_records(path: Path, clock: Clock) -> None:
    book = ConsentBook(path, KEYER, clock=clock, max_records=3)
    for n in range(3):
        book.record(f"4860000000{n}", ["voice", "sms"], "web_form", VERSION)
    with pytest.raises(ConsentFull):
        book.record(NUMBER, ["voice"], "web_form", VERSION)
    # A withdrawal is never refused, even when its continuation goes past the bound.
    assert len(book.withdraw("48600000000", ["sms"])) == 2
    assert book.erase("48600000001").deleted == 1
    assert book.erase("48600000000").deleted == 2
    book.record(NUMBER, ["voice"], "web_form", VERSION)
    assert _check(book, "voice", T0).ok


def test_one_number_keeps_at_most_max_per_number_records(book: ConsentBook) -> None:
    for _ in range(MAX_PER_NUMBER):
        book.record(NUMBER, ["voice"], "web_form", VERSION)
    with pytest.raises(ConsentFull):
        book.record(NUMBER, ["voice"], "web_form", VERSION)
    assert len(book.history(NUMBER)) == MAX_PER_NUMBER
    book.record(OTHER, ["voice"], "web_form", VERSION)


# -- evidence -------------------------------------------------------------------------------


def test_the_evidence_export_shows_the_history_and_no_number_or_imsi(
    book: ConsentBook, clock: Clock
) -> None:
    book.record(NUMBER, ["voice", "sms"], "recorded_call", VERSION, imsi=IMSI, evidence="rec-1")
    book.record(NUMBER, ["ivr"], "web_form", VERSION, imsi=IMSI, valid_until=T0 + DAY)
    book.record(NUMBER, ["messenger"], "email", VERSION)
    clock.now = T0 + 2 * DAY
    book.record(NUMBER, ["voice"], "paper_form", VERSION, imsi=OTHER_IMSI)
    book.withdraw(NUMBER, ["sms"])
    export = book.evidence(NUMBER)
    text = json.dumps(export)
    for secret in (NUMBER, IMSI, OTHER_IMSI):
        assert secret not in text
    for key in (KEYER.key(NUMBER), KEYER.imsi_key(IMSI), KEYER.imsi_key(OTHER_IMSI)):
        assert key.hex() not in text
    assert export["number"] == "********567"
    assert export["exported_at"] == "2026-01-03T00:00:00Z"
    records = export["records"]
    assert [r["imsi_at_recording"] for r in records] == [
        "first",
        "same",
        "not_recorded",
        "changed",  # the number may have changed hands here
        "first",  # the first record's continuation: its SIM, seen when it was recorded
    ]
    assert [r["state"] for r in records] == ["withdrawn", "expired", "active", "active", "active"]
    first = records[0]
    assert first["channels"] == ["sms", "voice"] and first["withdrawn_channels"] == ["sms"]
    assert first["given_at"] == "2026-01-01T00:00:00Z"
    assert first["withdrawn_at"] == "2026-01-03T00:00:00Z"
    assert first["evidence"] == "rec-1" and first["imsi_known"] is True
    assert records[4]["replaces"] == first["id"] and records[4]["channels"] == ["voice"]
    assert records[1]["valid_until"] == "2026-01-02T00:00:00Z"
    assert book.evidence(OTHER)["records"] == []


def test_to_json_names_the_state_at_the_time_asked(book: ConsentBook) -> None:
    c = book.record(NUMBER, ["voice"], "web_form", VERSION, given_at=T0 + 60, valid_until=T0 + 120)
    assert [c.to_json(t)["state"] for t in (T0, T0 + 60, T0 + 120)] == [
        "not_yet_valid",
        "active",
        "expired",
    ]
    assert c.to_json(T0)["recorded_at"] == "2026-01-01T00:00:00Z"
    assert c.to_json(T0)["withdrawn_at"] is None


# -- erasure --------------------------------------------------------------------------------


def _fill(book: ConsentBook, clock: Clock) -> None:
    """Two numbers' records in the same pages, and withdrawals that rewrote rows."""
    for _ in range(29):
        book.record(NUMBER, ["voice", "sms"], "web_form", VERSION, imsi=IMSI, evidence="f-1")
        book.record(OTHER, ["voice", "sms"], "web_form", VERSION, imsi=OTHER_IMSI)
    clock.now = T0 + 100
    book.withdraw(NUMBER, ["sms"])
    book.withdraw(OTHER, ["sms"])


def test_an_erased_number_leaves_nothing_in_the_files(
    book: ConsentBook, path: Path, clock: Clock
) -> None:
    book.record(NUMBER, ["voice", "sms"], "web_form", VERSION, imsi=IMSI, evidence="f-1")
    book.record(OTHER, ["voice", "sms"], "web_form", VERSION, imsi=OTHER_IMSI)
    erased, imsi = KEYER.key(NUMBER), KEYER.imsi_key(IMSI)
    kept, kept_imsi = KEYER.key(OTHER), KEYER.imsi_key(OTHER_IMSI)
    with _another_reader(path):
        _fill(book, clock)
        before = _on_disk(path)
        assert erased in before and imsi in before  # the scan finds what is there...
        assert path.with_name(path.name + "-wal").stat().st_size > 0
        assert book.erase(NUMBER) == Erased(deleted=60, held=0, held_until=None)
        live = _on_disk(path)  # while another connection keeps the WAL open
    for scanned in (live, _on_disk(path)):
        assert erased not in scanned and imsi not in scanned  # ...and not what went
        assert kept in scanned and kept_imsi in scanned
    assert book.history(NUMBER) == [] and len(book.history(OTHER)) == 60
    assert _check(book, "voice", T0 + 100).reason == "consent_missing:voice"
    assert _check(book, "voice", T0 + 100, OTHER).ok
    assert book.erase(NUMBER) == Erased(0, 0, None)


def test_erasing_a_number_never_recorded_is_harmless(book: ConsentBook, path: Path) -> None:
    assert book.erase(NUMBER) == Erased(0, 0, None)
    assert not path.exists()
    assert book.history(NUMBER) == [] and book.purge_expired_holds() == 0


def test_a_legal_hold_keeps_the_records_until_it_ends_and_they_grant_nothing(
    book: ConsentBook, path: Path, clock: Clock
) -> None:
    c = book.record(NUMBER, ["voice"], "recorded_call", VERSION, imsi=IMSI)
    book.record(OTHER, ["voice"], "web_form", VERSION, imsi=OTHER_IMSI)
    hold = T0 + 30 * DAY
    assert book.erase(NUMBER, hold_until=hold) == Erased(deleted=0, held=1, held_until=hold)
    assert _check(book, "voice", T0) == ConsentCheck(False, "consent_missing:voice", None)
    assert book.subscriber_changed(c.id, OTHER_IMSI) is None
    [held] = book.history(NUMBER)
    assert (held.id, held.erased_at, held.held_until, held.state(T0)) == (c.id, T0, hold, "erased")
    assert book.evidence(NUMBER)["records"][0]["held_until"] == "2026-01-31T00:00:00Z"
    fresh = ConsentBook(path, KEYER, clock=clock)
    fresh.load()
    assert not _check(fresh, "voice", T0).ok and _check(fresh, "voice", T0, OTHER).ok
    # A plain erase does not cut a hold short; a later hold only lengthens it.
    assert book.erase(NUMBER) == Erased(deleted=0, held=1, held_until=hold)
    assert book.erase(NUMBER, hold_until=T0 + DAY) == Erased(0, 1, hold)
    assert book.purge_expired_holds(hold - 1) == 0
    assert KEYER.key(NUMBER) in _on_disk(path) and KEYER.imsi_key(IMSI) in _on_disk(path)
    clock.now = hold
    with _another_reader(path):
        assert book.purge_expired_holds() == 1
        live = _on_disk(path)
    for scanned in (live, _on_disk(path)):
        assert KEYER.key(NUMBER) not in scanned and KEYER.imsi_key(IMSI) not in scanned
        assert KEYER.key(OTHER) in scanned and KEYER.imsi_key(OTHER_IMSI) in scanned
    assert book.history(NUMBER) == []
    assert _check(book, "voice", hold, OTHER).ok


def test_a_number_consents_again_after_a_held_erasure(book: ConsentBook) -> None:
    book.record(NUMBER, ["voice"], "web_form", VERSION)
    book.erase(NUMBER, hold_until=T0 + DAY)
    again = book.record(NUMBER, ["voice"], "paper_form", VERSION)
    assert _check(book, "voice", T0) == ConsentCheck(True, None, again.id)
    assert book.withdraw(NUMBER) == [book.history(NUMBER)[1]]  # the held one is left alone
    assert book.history(NUMBER)[0].withdrawn_at is None
