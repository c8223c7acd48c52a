"""Files from other versions: an older one opens with its answers, a newer one or a
foreign one is refused with a message that names the file and what to do."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from hlrd.config import StoreConfig
from hlrd.store import StoreError, open_store
from hlrd.store.keys import NumberKeyer
from hlrd.store.schema import VERSION
from hlrd.store.sqlite import FILE_NAME

from .store_tools import KEYER, T0, answer, store_config

V1_SQL = Path(__file__).with_name("store_v1.sql")
V2_SQL = Path(__file__).with_name("store_v2.sql")


@pytest.fixture
def cfg(tmp_path: Path) -> StoreConfig:
    return store_config(tmp_path)


def db_file(cfg: StoreConfig) -> Path:
    path = Path(cfg.data_dir) / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def make_v1(path: Path, numbers: list[str]) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(V1_SQL.read_text())
    conn.executemany(
        "INSERT INTO answers (key, checked_at, expires_at, provider, kind, payload) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(KEYER.key(n), T0, T0 + 3600, "sim", "live", b"v1 " + n[-2:].encode()) for n in numbers],
    )
    conn.commit()
    conn.close()


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_new_store_is_created_at_the_current_version(cfg: StoreConfig) -> None:
    with capture_logs() as logs:
        store = await open_store(cfg, retention_interval_s=None)
        await store.close()
    assert logs[0]["event"] == "store.created"
    assert logs[0]["schema"] == VERSION == 3
    assert user_version(Path(cfg.data_dir) / FILE_NAME) == VERSION


async def test_a_schema_1_store_opens_with_its_answers_and_no_cost(cfg: StoreConfig) -> None:
    numbers = ["48601000001", "48601000002", "48601000003"]
    make_v1(db_file(cfg), numbers)

    with capture_logs() as logs:
        store = await open_store(cfg, retention_interval_s=None)
    migrated = [e for e in logs if e["event"] == "store.migrated"]
    assert [(e["from_version"], e["to_version"]) for e in migrated] == [(1, VERSION)]
    for n in numbers:
        got = await store.get(KEYER.key(n))
        assert got is not None
        assert (got.checked_at, got.kind, got.payload) == (T0, "live", b"v1 " + n[-2:].encode())
        assert (got.cost, got.currency) == (0.0, "")
    priced = answer("48601000004", cost=0.009, currency="EUR")
    store.put(priced)
    await store.close()

    with capture_logs() as logs:
        store = await open_store(cfg, retention_interval_s=None)
    assert not [e for e in logs if e["event"] in ("store.migrated", "store.created")]
    assert await store.get(priced.key) == priced
    assert (await store.stats()).answers == 4
    await store.close()
    assert user_version(Path(cfg.data_dir) / FILE_NAME) == VERSION


async def test_a_schema_2_store_opens_with_its_answers_and_takes_the_key_check(
    cfg: StoreConfig,
) -> None:
    """The previous version: its answers stay, priced as they were; the file learns
    which hash key it is under, and from then on refuses another one."""
    path = db_file(cfg)
    conn = sqlite3.connect(path)
    conn.executescript(V2_SQL.read_text())
    conn.execute(
        "INSERT INTO answers (key, checked_at, expires_at, provider, kind, payload, cost, "
        "currency) VALUES (?, ?, ?, 'sim', 'live', x'7632', 0.008, 'EUR')",
        (KEYER.key("48601000001"), T0, T0 + 3600),
    )
    conn.commit()
    conn.close()
    with capture_logs() as logs:
        store = await open_store(cfg, retention_interval_s=None, key_check=KEYER.check())
    migrated = [e for e in logs if e["event"] == "store.migrated"]
    assert [(e["from_version"], e["to_version"]) for e in migrated] == [(2, VERSION)]
    got = await store.get(KEYER.key("48601000001"))
    assert got is not None and (got.payload, got.cost, got.currency) == (b"v2", 0.008, "EUR")
    await store.close()
    other = NumberKeyer(b"another key entirely, 32 bytes..")
    with pytest.raises(StoreError) as err:
        await open_store(cfg, retention_interval_s=None, key_check=other.check())
    assert "was written under another hash key" in str(err.value)
    assert "move the file away" in str(err.value)
    store = await open_store(cfg, retention_interval_s=None, key_check=KEYER.check())
    assert (await store.stats()).answers == 1  # the right key still opens it
    await store.close()


async def test_a_failed_migration_leaves_the_file_as_it_was(cfg: StoreConfig) -> None:
    """A hand-edited v1 file whose second step fails: the first step is undone too."""
    path = db_file(cfg)
    make_v1(path, ["48601000001"])
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE answers ADD COLUMN currency TEXT")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="duplicate column name: currency"):
        await open_store(cfg, retention_interval_s=None)
    assert user_version(path) == 1
    conn = sqlite3.connect(path)
    columns = [r[1] for r in conn.execute("PRAGMA table_info(answers)")]
    assert conn.execute("SELECT count(*) FROM answers").fetchone()[0] == 1
    conn.close()
    assert "cost" not in columns


async def test_a_store_from_a_newer_hlrd_is_refused_and_left_alone(cfg: StoreConfig) -> None:
    path = db_file(cfg)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE answers (key BLOB, answer_v3 BLOB)")
    conn.execute(f"PRAGMA user_version = {VERSION + 1}")
    conn.commit()
    conn.close()
    before = digest(path)
    with pytest.raises(StoreError) as err:
        await open_store(cfg, retention_interval_s=None)
    assert str(err.value) == (
        f"{path} was written by a newer hlrd (schema {VERSION + 1}; this one knows 1..{VERSION}): "
        "upgrade hlrd or point store.data_dir elsewhere"
    )
    assert digest(path) == before  # not even switched to WAL


async def test_a_file_that_is_not_a_database_is_refused_and_left_alone(cfg: StoreConfig) -> None:
    path = db_file(cfg)
    path.write_text("number;name\n48601000001;Jan\n")
    with pytest.raises(StoreError) as err:
        await open_store(cfg, retention_interval_s=None)
    assert str(err.value) == (
        f"{path} is not an SQLite database: move it away or point store.data_dir elsewhere"
    )
    assert path.read_text() == "number;name\n48601000001;Jan\n"


async def test_a_database_of_something_else_is_refused(cfg: StoreConfig) -> None:
    path = db_file(cfg)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"holds tables hlrd did not create \(contacts\)"):
        await open_store(cfg, retention_interval_s=None)
    conn = sqlite3.connect(path)
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["contacts"]
    conn.close()


async def test_a_data_dir_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("")
    with pytest.raises(StoreError, match=f"{blocker}: cannot create the data directory"):
        await open_store(store_config(tmp_path), retention_interval_s=None)
