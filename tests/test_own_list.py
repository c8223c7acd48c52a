"""The own do-not-call list over the API, from a dialer's disposition and from the
CLI, in a running daemon: in force at once, kept across restarts, no number on disk."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hlrd.config import parse_config
from simulator.controller import Simulator

from .conftest import ROOT
from .daemon_harness import config_for, running_daemon
from .data_dirs import DATA_ENV

NUMBER = "48600000001"  # at home, reachable: only the list can block it


async def _digit(http: aiohttp.ClientSession, number: str = NUMBER) -> str:
    async with http.get(f"/v1/check/{number}?format=digit") as r:
        return await r.text()


async def _json(resp: aiohttp.ClientResponse) -> tuple[int, Any]:
    async with resp:
        return resp.status, await resp.json()


async def test_a_number_put_on_the_list_is_blocked_at_once_and_taken_off_again(
    sim: Simulator,
) -> None:
    async with running_daemon(sim) as (_, http):
        before = await _digit(http)
        added = await _json(await http.put(f"/v1/dnc/+{NUMBER}", json={"reason": "complaint"}))
        submits = sim.stats.submits
        async with http.get(f"/v1/check/{NUMBER}") as r:
            check = await r.json()
        shown = await _json(await http.get(f"/v1/dnc/{NUMBER}"))
        removed = await _json(await http.delete(f"/v1/dnc/{NUMBER}"))
        after = await _digit(http)
    assert before == "0" and after == "0"
    assert added[0] == 200 and added[1]["entry"]["reason"] == "complaint"
    assert added[1]["entry"]["source"] == "api" and added[1]["entry"]["expires_at"] is None
    assert (check["reasons"], check["lookup"]) == (["listed:dnc"], None)
    assert sim.stats.submits == submits
    assert shown == (200, added[1])
    assert removed == (200, {"removed": True})


async def test_an_entry_past_its_expiry_no_longer_blocks(sim: Simulator) -> None:
    async with running_daemon(sim) as (_, http):
        body = {"reason": "callback later", "expires_at": 1_000_000_000}
        status, _ = await _json(await http.put(f"/v1/dnc/{NUMBER}", json=body))
        digit = await _digit(http)
    assert (status, digit) == (200, "0")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"[1, 2]", "body"),
        (b"{}", "reason"),
        (b'{"reason": ""}', "reason"),
        (b'{"reason": "x", "source": 7}', "source"),
        (b'{"reason": "x", "expires_at": "tomorrow"}', "expires_at"),
        (b'{"reason": "x", "expires_at": 1e300}', "expires_at"),
        (b'{"reason": "x", "colour": "red"}', "body"),  # a caller's key is not echoed
        (b'{"reason": "customer 48601234567 complained"}', "reason"),  # kept as a hash only
    ],
)
async def test_a_bad_entry_is_refused_naming_its_field(
    sim: Simulator, body: bytes, field: str
) -> None:
    async with running_daemon(sim) as (_, http):
        status, answer = await _json(await http.put(f"/v1/dnc/{NUMBER}", data=body))
    assert status == 400 and answer["error"]["field"] == field


async def test_a_bad_number_is_refused_as_for_a_lookup(sim: Simulator) -> None:
    async with running_daemon(sim) as (_, http):
        status, answer = await _json(await http.put("/v1/dnc/12ab", json={"reason": "x"}))
    assert status == 400 and answer["error"]["code"] == "invalid_number"


async def test_vicidials_dnc_disposition_puts_the_number_on_the_list(sim: Simulator) -> None:
    url = "/v1/dispositions/vicidial?dispo={}&phone_code=48&phone_number=600000001&lead_id=7"
    async with running_daemon(sim) as (_, http):
        sale = await _json(await http.get(url.format("SALE")))
        still = await _digit(http)
        dnc = await _json(await http.get(url.format("DNC")))
        blocked = await _digit(http)
        entry = await _json(await http.get(f"/v1/dnc/{NUMBER}"))
        bad = await _json(await http.get(url.format("DNC").replace("600000001", "12")))
    assert (sale, still) == ((200, {"added": False}), "0")
    assert (dnc, blocked) == ((200, {"added": True}), "1")
    assert entry[1]["entry"]["reason"] == "disposition DNC"
    assert entry[1]["entry"]["source"] == "vicidial"
    assert bad[0] == 400 and bad[1]["error"]["field"] == "phone_number"


async def test_the_list_outlives_a_restart_and_its_file_holds_no_number(sim: Simulator) -> None:
    async with running_daemon(sim) as (_, http):
        await http.put(f"/v1/dnc/{NUMBER}", json={"reason": "objection (GDPR Art. 21)"})
    async with running_daemon(sim) as (_, http):
        digit = await _digit(http)
    assert digit == "1"
    data_dir = Path(parse_config(config_for(sim), env=DATA_ENV()).store.data_dir)
    for path in (data_dir / "lists").glob("own.sqlite3*"):
        data = path.read_bytes()
        assert NUMBER.encode() not in data and NUMBER[2:].encode() not in data
        assert path.stat().st_mode & 0o077 == 0


async def test_hlrd_dnc_from_the_cli_reaches_a_running_daemon_on_reload(
    sim: Simulator,
) -> None:
    data = config_for(sim)
    async with running_daemon(sim) as (daemon, http):
        config = Path(parse_config(data, env=DATA_ENV()).store.data_dir).parent / "cli.toml"
        config.write_text('[[upstream.providers]]\nname = "sim"\n')
        args = ["dnc", "add", "600000001", "--reason", "complaint", "--config", str(config)]
        proc = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "hlrd", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert daemon.service.gate is not None
        reloaded = await daemon.service.gate.reload_if_changed()
        digit = await _digit(http)
    assert proc.returncode == 0, proc.stderr
    assert (reloaded, digit) == (True, "1")
