"""The cache across restarts, on a real SQLite file: answers come back without a paid
lookup, the files never hold a number or an IMSI, and the CLI reads and purges them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from simulator.controller import Simulator

from .conftest import ROOT
from .daemon_harness import running_daemon
from .test_cache import FakeClock
from .test_store_privacy import found

EGYPT = "48600000003"
AT_HOME = "48600000001"
DEMO_IMSIS = ["260010000000001", "260010000000003"]
DEMO_MSCS = ["48601000100", "201000000100", "491720000100"]  # where subscribers are


def _submits(sim: Simulator) -> int:
    assert sim.smsc is not None
    return sim.smsc.stats.submits


async def _lookup(http: Any, number: str) -> dict[str, Any]:
    async with http.get(f"/v1/lookup/{number}") as r:
        body: dict[str, Any] = await r.json()
        return body


async def test_a_restart_keeps_answers_and_pays_for_none_again(sim: Simulator) -> None:
    async with running_daemon(sim) as (_, http):
        first = await _lookup(http, EGYPT)
        await _lookup(http, AT_HOME)
    paid = _submits(sim)
    async with running_daemon(sim) as (_, http):
        again = await _lookup(http, EGYPT)
        async with http.get(f"/v1/check/{AT_HOME}?format=digit") as r:
            digit, age = await r.text(), r.headers.get("Age")
        async with http.get("/metrics") as r:
            metrics = await r.text()
    assert paid == 2 and _submits(sim) == 2  # nothing paid after the restart
    assert again["cache"]["hit"] is True and first["cache"]["hit"] is False
    assert again["visited_country"] == "EG" and again["imsi"] == "26001**********"
    assert again["serving_msc"] is None  # the switch's address is not kept on disk
    assert (digit, age is not None) == ("0", True)
    assert 'hlrd_cache_lookups_total{result="store"} 2.0' in metrics


async def test_the_store_files_hold_no_number_and_no_imsi(sim: Simulator) -> None:
    """Even with IMSIs returned in full to callers (lookup.return_imsi), what reaches
    the database, its WAL and journal is keyed hashes, masked IMSIs and no MSC."""
    numbers = [f"486000000{i:02d}" for i in range(1, 10)] + [EGYPT]
    async with running_daemon(sim, lookup={"return_imsi": True}) as (daemon, http):
        answers = [await _lookup(http, n) for n in numbers]
        assert daemon.store is not None
        await daemon.store.flush()
        data_dir = Path(daemon.config.store.data_dir)
        while_running = found(data_dir, numbers + DEMO_IMSIS + DEMO_MSCS)
    assert any(a["imsi"] == "260010000000003" for a in answers)  # the caller got it
    names = sorted(os.listdir(data_dir))
    assert {"hash.key", "hlrd.sqlite3", "audit"} <= set(names)
    assert while_running == []
    assert found(data_dir, numbers + DEMO_IMSIS + DEMO_MSCS) == []


def _cli(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "hlrd", "cache", *args, "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert "Traceback" not in done.stderr
    return done.returncode, json.loads(done.stdout)


async def test_hlrd_cache_stats_and_purge_on_the_files(sim: Simulator, tmp_path: Path) -> None:
    """No daemon running: the CLI opens the store itself."""
    async with running_daemon(sim) as (_, http):
        for n in (EGYPT, AT_HOME, "48600000005"):
            await _lookup(http, n)
    config = tmp_path / "hlrd.toml"
    config.write_text(  # port 1: nothing listens, so the CLI goes to the files
        '[http]\nport = 1\n\n[[upstream.providers]]\nname = "sim"\n'
    )
    rc1, before = _cli(config, "stats")
    rc2, one = _cli(config, "purge", "--number", "+48 600 000 003")
    rc3, after = _cli(config, "stats")
    rc4, everything = _cli(config, "purge", "--all")
    rc5, empty = _cli(config, "stats")
    assert (rc1, rc2, rc3, rc4, rc5) == (0, 0, 0, 0, 0)
    assert before["daemon"] == "not running"
    assert before["store"]["answers"] == 3
    assert before["store"]["by_kind"] == {"roaming": 1, "connected": 1, "absent": 1}
    assert one == {"removed": 1} and after["store"]["answers"] == 2
    assert everything == {"removed": 2} and empty["store"]["answers"] == 0


async def test_purging_through_the_daemon_empties_its_memory_too(sim: Simulator) -> None:
    async with running_daemon(sim) as (_, http):
        await _lookup(http, EGYPT)
        async with http.delete(f"/v1/cache/{EGYPT}") as r:
            removed = await r.json()
        again = await _lookup(http, EGYPT)
        async with http.delete("/v1/cache?older_than=x") as r:
            bad = (r.status, (await r.json())["error"]["field"])
    assert removed == {"removed": 1}
    assert again["cache"]["hit"] is False and _submits(sim) == 2
    assert bad == (400, "older_than")


async def test_store_counts_are_shared_for_a_while_and_a_purge_starts_afresh(
    sim: Simulator,
) -> None:
    """Counting the store is a scan: a dashboard polling /v1/cache reuses one count
    for 10 s (and is told how old it is); a purge through the daemon is seen at once."""

    async def stats(http: Any) -> dict[str, Any]:
        async with http.get("/v1/cache") as r:
            body: dict[str, Any] = (await r.json())["store"]
            return body

    async with running_daemon(sim) as (daemon, http):
        clock = FakeClock()
        daemon.cache.clock = clock
        assert daemon.store is not None
        await _lookup(http, EGYPT)
        await daemon.store.flush()
        first = await stats(http)
        await _lookup(http, AT_HOME)
        await daemon.store.flush()
        clock.now += 5
        reused = await stats(http)
        clock.now += 6
        recounted = await stats(http)
        async with http.delete("/v1/cache?all=1") as r:
            assert r.status == 200
        after_purge = await stats(http)
    assert (first["answers"], first["as_of_s_ago"]) == (1, 0.0)
    assert (reused["answers"], reused["as_of_s_ago"]) == (1, 5.0)
    assert (recounted["answers"], recounted["as_of_s_ago"]) == (2, 0.0)
    assert after_purge["answers"] == 0
