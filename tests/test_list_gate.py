"""The list gate in a running daemon: a listed number is blocked before any lookup."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hlrd.compliance.list_formats import ReadOptions
from hlrd.compliance.list_key import ListKeyer
from hlrd.compliance.lists import ListError, ListFiles
from hlrd.config import parse_config
from hlrd.daemon import Daemon
from hlrd.store.keys import load_key
from simulator.controller import Simulator

from .daemon_harness import config_for, daemon_of
from .data_dirs import DATA_ENV

LISTED = "48600000001"  # at home, reachable: only the list can block it
NOT_LISTED = "48600000002"


def _files(data: dict[str, Any], clock: Any = time.time) -> ListFiles:
    cfg = parse_config(data, env=DATA_ENV())
    return ListFiles(Path(cfg.store.data_dir) / "lists", ListKeyer(load_key(cfg.store)), clock)


def _import(files: ListFiles, tmp_path: Path, name: str, *numbers: str, fmt: str = "lines") -> None:
    path = tmp_path / f"{name}.txt"
    path.write_text("\n".join("+" + n for n in numbers) + "\n")
    files.import_file(name, path, ReadOptions(fmt))


async def _check(http: aiohttp.ClientSession, number: str, digit: bool = False) -> Any:
    async with http.get(f"/v1/check/{number}" + ("?format=digit" if digit else "")) as r:
        assert r.status == 200
        return await r.text() if digit else await r.json()


async def test_a_listed_number_is_blocked_and_costs_no_lookup(
    sim: Simulator, tmp_path: Path
) -> None:
    data = config_for(sim)
    _import(_files(data), tmp_path, "own", LISTED)
    async with daemon_of(data) as (_, http):
        await _check(http, NOT_LISTED)  # binds are up and one lookup went out
        submits = sim.stats.submits
        listed = await _check(http, LISTED)
        digit = await _check(http, LISTED, digit=True)
        other = await _check(http, NOT_LISTED)
        async with http.get("/metrics") as r:
            metrics = await r.text()
    assert len(listed.pop("decision_id")) == 16
    assert listed == {
        "decision": "block",
        "call": False,
        "reasons": ["listed:own"],
        "warnings": [],
        "policy": {"name": "default", "version": "1"},
        "retry_after": None,
        "consent_id": None,
        "lookup": None,
        "lookup_skipped": "blocked by a do-not-call list before any lookup",
    }
    assert digit == "1"
    assert sim.stats.submits == submits  # neither check of the listed number looked it up
    assert other["lookup"]["msisdn"] == NOT_LISTED and other["lookup_skipped"] is None
    assert 'hlrd_list_hits_total{list="own"} 2.0' in metrics
    assert 'hlrd_list_numbers{list="own"} 1.0' in metrics
    assert 'hlrd_decisions_total{reason="listed",verdict="block"} 2.0' in metrics


async def test_an_import_while_running_is_taken_whole_on_reload(
    sim: Simulator, tmp_path: Path
) -> None:
    data = config_for(sim)
    files = _files(data)
    _import(files, tmp_path, "own", NOT_LISTED)
    async with daemon_of(data) as (daemon, http):
        gate = daemon.service.gate
        assert gate is not None
        assert not await gate.reload_if_changed()  # nothing changed yet
        before = await _check(http, LISTED, digit=True)
        _import(files, tmp_path, "own", LISTED)
        assert await gate.reload_if_changed()
        after = await _check(http, LISTED, digit=True)
        freed = await _check(http, NOT_LISTED)
    assert (before, after) == ("0", "1")
    assert freed["reasons"] == [] and freed["decision"] == "allow"


async def test_a_list_that_fails_to_reload_leaves_the_old_one(
    sim: Simulator, tmp_path: Path
) -> None:
    data = config_for(sim)
    files = _files(data)
    _import(files, tmp_path, "own", LISTED)
    async with daemon_of(data) as (daemon, http):
        (files.directory / "own.json").write_text("{not json")
        assert daemon.service.gate is not None
        assert not await daemon.service.gate.reload_if_changed()
        still = await _check(http, LISTED, digit=True)
        async with http.get("/metrics") as r:
            metrics = await r.text()
    assert still == "1"
    assert "hlrd_list_reload_failures_total 1.0" in metrics


@pytest.mark.parametrize("stale", ["block", "warn"])
async def test_a_stale_registry_blocks_every_number_unless_the_policy_only_warns(
    sim: Simulator, tmp_path: Path, stale: str
) -> None:
    data = config_for(sim, lists={"stale": stale})
    month_ago = time.time() - 29 * 86400  # TPS: 28 days at most
    _import(_files(data, lambda: month_ago), tmp_path, "tps", "447700900123", fmt="lines")
    files = _files(data)
    meta = json.loads((files.directory / "tps.json").read_text())
    meta["max_age_days"] = 28.0
    (files.directory / "tps.json").write_text(json.dumps(meta))
    async with daemon_of(data) as (_, http):
        answer = await _check(http, NOT_LISTED)
    if stale == "block":
        assert (answer["decision"], answer["reasons"], answer["lookup"]) == (
            "block",
            ["list_stale:tps"],
            None,
        )
    else:
        assert answer["warnings"] == ["list_stale:tps"] and answer["lookup"] is not None


async def test_a_daemon_that_cannot_read_its_lists_does_not_start(
    sim: Simulator, tmp_path: Path
) -> None:
    data = config_for(sim)
    files = _files(data)
    _import(files, tmp_path, "own", LISTED)
    (files.directory / "own.json").write_text("{not json")
    daemon = Daemon(parse_config(data, env=DATA_ENV()))
    with pytest.raises(ListError, match=r"own\.json"):
        await daemon.start()
    await daemon.stop()


async def test_the_lists_the_daemon_checks_are_shown_with_their_freshness(
    sim: Simulator, tmp_path: Path
) -> None:
    data = config_for(sim)
    _import(_files(data), tmp_path, "own_import", LISTED, NOT_LISTED)
    async with daemon_of(data) as (_, http):
        async with http.get("/v1/lists") as r:
            shown = await r.json()
    first, own = shown["lists"]
    assert (first["name"], first["numbers"], first["stale"], first["format"]) == (
        "own_import",
        2,
        False,
        "lines",
    )
    assert "keys_file" not in first and "key_check" not in first
    assert own == {"name": "dnc", "format": "own", "numbers": 0, "stale": False}
