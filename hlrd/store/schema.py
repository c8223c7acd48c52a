"""The store's tables, versioned, so a file written by one release opens in the next.

`PRAGMA user_version` says which migrations a file has had. Opening applies the
missing ones in one transaction (a crash leaves the old version, never half of the
new one) and refuses what it cannot read: a file from a newer hlrd (a downgrade
must not scribble over it) or a file that is not ours. Migrations are append-only:
a released step is never edited, since files out there already went through it
(tests/store_v1.sql keeps schema 1 as it shipped).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .base import StoreError

HEADER = b"SQLite format 3\x00"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: answers under the keyed hash of their number. A rowid table with the key
    # unique beside it rather than WITHOUT ROWID: rows are ~400 bytes and WITHOUT ROWID
    # keeps whole rows in its interior pages, which measured twice the writer's CPU per
    # row. The index on checked_at lets retention find old rows without a scan.
    (
        """CREATE TABLE answers (
            id INTEGER PRIMARY KEY,
            key BLOB NOT NULL UNIQUE,
            checked_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            provider TEXT NOT NULL,
            kind TEXT NOT NULL,
            payload BLOB NOT NULL
        )""",
        "CREATE INDEX answers_checked_at ON answers (checked_at)",
    ),
    # 2: what the lookup cost, so a hit can count the cost it saved. ADD COLUMN with a
    # constant default rewrites no row: a million-row file migrates in milliseconds.
    (
        "ALTER TABLE answers ADD COLUMN cost REAL NOT NULL DEFAULT 0",
        "ALTER TABLE answers ADD COLUMN currency TEXT NOT NULL DEFAULT ''",
    ),
    # 3: facts about the file itself; `key_check` proves which hash key its rows are
    # under, so a file opened with another key is refused instead of quietly missing
    # every answer (and finding none to erase).
    ("CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",),
)
VERSION = len(MIGRATIONS)


def not_a_database(path: Path) -> StoreError:
    # Never quote the file's bytes: it may be anything, a list of numbers included.
    return StoreError(
        f"{path} is not an SQLite database: move it away or point store.data_dir elsewhere"
    )


def check_header(path: Path) -> None:
    """Refuse a file that is not SQLite before SQLite opens it (an empty file is new)."""
    try:
        with path.open("rb") as f:
            head = f.read(len(HEADER))
    except FileNotFoundError:
        return
    except IsADirectoryError as exc:
        raise StoreError(f"{path} is a directory, not the store's database file") from exc
    if head and head != HEADER:
        raise not_a_database(path)


def user_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def check_version(conn: sqlite3.Connection, path: Path) -> int:
    """The file's version, refused if newer than ours: called before anything is
    written to it (not even the journal mode), so a downgrade leaves it as it was."""
    found = user_version(conn)
    _check_known(found, path)
    return found


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the file to VERSION; returns the version it had (0: new)."""
    found = check_version(conn, path)
    if found == VERSION:
        return found
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = user_version(conn)  # another process may have migrated meanwhile
        _check_known(found, path)
        if found == 0:
            _check_empty(conn, path)
        for step in MIGRATIONS[found:]:
            for statement in step:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return found


def check_key(conn: sqlite3.Connection, path: Path, key_check: bytes) -> None:
    """Refuse the file if its rows were keyed with another secret; a file that has no
    check yet (new, or from schema 2) takes this one's."""
    row = conn.execute("SELECT value FROM meta WHERE name = 'key_check'").fetchone()
    if row is None:
        conn.execute("INSERT INTO meta (name, value) VALUES ('key_check', ?)", (key_check,))
    elif row[0] != key_check:
        raise StoreError(
            f"{path} was written under another hash key: with this one none of its "
            "answers can be found or erased. Give hlrd the key it was written with "
            "(store.hash_key_env, or the key file store.hash_key_file), or move the "
            "file away to start with an empty store"
        )


def _check_known(found: int, path: Path) -> None:
    if found > VERSION or found < 0:
        raise StoreError(
            f"{path} was written by a newer hlrd (schema {found}; this one knows "
            f"1..{VERSION}): upgrade hlrd or point store.data_dir elsewhere"
        )


def _check_empty(conn: sqlite3.Connection, path: Path) -> None:
    """A version-0 file with tables belongs to something else: leave it alone."""
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    if names:
        raise StoreError(
            f"{path} holds tables hlrd did not create ({', '.join(names[:5])}): "
            "point store.data_dir elsewhere"
        )
