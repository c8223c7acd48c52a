"""store: what remembering answers costs — the SQLite store alone, in this process.

- `put() on the caller µs`: CPU of the event-loop thread per put (it only queues).
- `writer answers/s`: 100,000 distinct answers (300-byte payload) put at once, until
  flush() returns; `writer CPU µs/answer`: the process's CPU beyond the loop thread's.
- `get p50/p99 µs`: one awaited get from the loop (reader thread and back), on a
  store of 100,000 and of 1,000,000 answers.
- `open 1M ms`: open_store() on a 1,000,000-answer file until the first get answers;
  `migrate 1M v1->now ms`: the same for a schema-1 file; `stats 1M ms`: stats() (a scan).
- `restart 1M: ready s`: `hlrd run` over a 1,000,000-answer store (the simulator as
  upstream) from process start to `hlrd.ready` (interpreter and imports included);
  `key filter filled s`: until the filter of stored keys holds all of them (in the
  background: misses read the store until then).
- `purge 100k of 1M s`: purge() of the oldest 100,000 answers (in chunks of 5,000);
  `purge all (900k) s`: purge(None) of the rest.

`python -m bench store` or `python -m bench.store` (the 1M files take a minute to make).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from hlrd.config import StoreConfig
from hlrd.logging_setup import configure_logging
from hlrd.store import AnswerStore, StoredAnswer, open_store
from hlrd.store.schema import MIGRATIONS
from hlrd.store.sqlite import FILE_NAME

from .procs import data_env, logged_daemon, simulator, wait_for_event, write_config

N_WRITE = 100_000
N_BIG = 1_000_000
PAYLOAD = os.urandom(300)
NOW = time.time()


def _answers(n: int) -> list[StoredAnswer]:
    return [
        StoredAnswer(os.urandom(32), NOW, NOW + 3600, "sim", "live", PAYLOAD, 0.01, "EUR")
        for _ in range(n)
    ]


def _cfg(data_dir: Path) -> StoreConfig:
    return StoreConfig(data_dir=str(data_dir), hash_key=b"k" * 32)


async def _gets(store: AnswerStore, keys: list[bytes]) -> list[float]:
    times = []
    for key in keys:
        t = time.perf_counter()
        found = await store.get(key)
        times.append((time.perf_counter() - t) * 1e6)
        assert found is not None
    return times


async def _write_run(data_dir: Path) -> dict[str, float]:
    shutil.rmtree(data_dir, ignore_errors=True)
    store = await open_store(_cfg(data_dir), retention_interval_s=None)
    answers = _answers(N_WRITE)
    cpu0, thread0, wall0 = time.process_time(), time.thread_time(), time.perf_counter()
    for a in answers:
        store.put(a)
    thread_put = time.thread_time() - thread0
    await store.flush()
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    loop_cpu = time.thread_time() - thread0
    stats = await store.stats()
    assert stats.answers == N_WRITE and stats.writes_dropped == 0, stats
    sample = [a.key for a in answers[:: N_WRITE // 5000]]
    gets = await _gets(store, sample)
    await store.close()
    return {
        "put() on the caller µs": thread_put / N_WRITE * 1e6,
        "writer answers/s (100k, 300 B payload)": N_WRITE / wall,
        "writer CPU µs/answer": (cpu - loop_cpu) / N_WRITE * 1e6,
        "get p50 µs (100k answers)": statistics.median(gets),
        "get p99 µs (100k answers)": statistics.quantiles(gets, n=100)[98],
    }


def _make_big(path: Path, version: int) -> list[bytes]:
    """A file of N_BIG answers at `version`, written in C by SQLite itself."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN")
    for step in MIGRATIONS[:version]:
        for statement in step:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute(
        "INSERT INTO answers (key, checked_at, expires_at, provider, kind, payload) "
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT ?) "
        "SELECT randomblob(32), ? + i * 0.001, ? + 3600, 'sim', 'live', randomblob(300) FROM n",
        (N_BIG, NOW - N_BIG * 0.001, NOW),
    )
    conn.execute("COMMIT")
    keys = [r[0] for r in conn.execute("SELECT key FROM answers WHERE id % 200 = 0")]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return keys


async def _big_run(data_dir: Path, keys: list[bytes], label: str) -> dict[str, float]:
    t = time.perf_counter()
    store = await open_store(_cfg(data_dir), retention_interval_s=None)
    await store.get(keys[0])
    ready_ms = (time.perf_counter() - t) * 1e3
    gets = await _gets(store, keys)
    result = {f"{label} ms": ready_ms}
    if label == "open 1M":
        t = time.perf_counter()
        await store.stats()
        result["stats 1M ms"] = (time.perf_counter() - t) * 1e3
        result["get p50 µs (1M answers)"] = statistics.median(gets)
        result["get p99 µs (1M answers)"] = statistics.quantiles(gets, n=100)[98]
    await store.close()
    return result


def _restart_run(big_file: Path) -> dict[str, float]:
    """`hlrd run` (simulator upstream) over a store of N_BIG answers: seconds from
    the process's start to `hlrd.ready`, and until the key filter holds every key.
    The file is hard-linked into the daemon's data directory, not copied."""
    with simulator(0) as (sim_port, _):
        config = write_config(sim_port, 256)
        data = Path(data_env(config)["HLRD_DATA_DIR"])
        data.mkdir()
        os.link(big_file, data / FILE_NAME)
        log = config.parent / "daemon.log"
        started = time.perf_counter()
        with logged_daemon(config, log, timeout=60):
            ready = time.perf_counter() - started
            loaded = wait_for_event(None, log, "cache.key_filter_loaded", 60)
            keys = loaded.get("keys")
            assert keys == N_BIG, loaded
            filled = time.perf_counter() - started
    return {"restart 1M: ready s": ready, "restart 1M: key filter filled s": filled}


async def _purge_run(data_dir: Path) -> dict[str, float]:
    store = await open_store(_cfg(data_dir), retention_interval_s=None)
    t = time.perf_counter()
    removed = await store.purge(NOW - (N_BIG - 100_000) * 0.001)
    some = time.perf_counter() - t
    assert abs(removed - 100_000) <= 1, removed
    t = time.perf_counter()
    await store.purge(None)
    rest = time.perf_counter() - t
    await store.close()
    return {"purge 100k of 1M s": some, "purge all (900k) s": rest}


async def _measure(runs: int, root: Path) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}

    def add(values: dict[str, float]) -> None:
        for k, v in values.items():
            samples.setdefault(k, []).append(v)

    for _ in range(runs):
        add(await _write_run(root / "write"))
    big = root / "big"
    keys = _make_big(big / FILE_NAME, len(MIGRATIONS))
    for _ in range(runs):
        add(await _big_run(big, keys, "open 1M"))
    for _ in range(runs):
        add(await asyncio.to_thread(_restart_run, big / FILE_NAME))
    for i in range(runs):
        v1 = root / f"v1-{i}"
        v1_keys = _make_big(v1 / FILE_NAME, 1)
        add(await _big_run(v1, v1_keys, "migrate 1M v1->now"))
        add(await _purge_run(v1))
        shutil.rmtree(v1)
    return samples


def measure(runs: int) -> dict[str, list[float]]:
    root = Path(tempfile.mkdtemp(prefix="hlrd-bench-store-"))
    try:
        return asyncio.run(_measure(runs, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    configure_logging("json", "WARNING")
    for metric, values in measure(int(os.environ.get("RUNS", "3"))).items():
        print(
            f"{metric:45} median {statistics.median(values):10.2f}  "
            f"min {min(values):10.2f}  max {max(values):10.2f}"
        )
