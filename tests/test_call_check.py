"""The whole gate in a running daemon: named policies, consent (and the number
changing hands), calling hours where the subscriber is, the audit trail of every
answer, and the same gate behind the SMPP front end. The clock is the gate's own,
set by the test: no answer depends on when the suite runs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hlrd.daemon import Daemon
from simulator.controller import Simulator

from .conftest import ROOT
from .daemon_harness import config_for, daemon_of, with_account
from .smpplib_peer import smpplib_lookups

AT_HOME = "48600000001"  # at home in Poland, reachable
IN_GERMANY = "48600000002"  # a Polish subscriber roaming in Germany (EEA)

# Tuesday 1 December 2026: 11:00 in Warsaw and Berlin (CET, UTC+1).
TUESDAY_11 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC).timestamp()
# Tuesday 1 December 2026: 23:30 in Warsaw.
TUESDAY_2330 = datetime(2026, 12, 1, 22, 30, tzinfo=UTC).timestamp()

POLICIES: dict[str, Any] = {
    "telemarketing": {
        "version": "7",
        "consent": "voice",
        "block_zones": ["NON_EEA"],
        "hours": {
            "PL": {"mon-sun": ["08:00-22:00"]},
            "DE": {"mon-fri": ["15:00-18:00"]},
        },
    },
    "service": {"version": "2", "lists": []},
}
CONSENT = {
    "channels": ["voice"],
    "source": "web_form",
    "text_version": "marketing-2026-01",
    "given_at": "2026-01-05T10:00:00Z",
    "valid_until": "2029-01-05T10:00:00Z",
    "evidence": "form-a81f",
}


@asynccontextmanager
async def _daemon(
    sim: Simulator, at: float = TUESDAY_11, **sections: Any
) -> AsyncIterator[tuple[Daemon, aiohttp.ClientSession]]:
    data = config_for(sim, **sections)
    data["policies"] = POLICIES
    async with daemon_of(data) as (daemon, http):
        daemon.checker.clock = lambda: at
        assert daemon.checker.audit is not None
        daemon.checker.audit.clock = lambda: at  # it files records no later than its clock
        yield daemon, http


async def _get(http: aiohttp.ClientSession, path: str) -> tuple[int, Any, Any]:
    async with http.get(path) as r:
        body = await (r.json() if r.content_type == "application/json" else r.text())
        return r.status, body, r.headers


async def test_a_policy_is_chosen_per_request_and_named_in_the_answer(sim: Simulator) -> None:
    async with _daemon(sim) as (_, http):
        _, default, _ = await _get(http, f"/v1/check/{AT_HOME}")
        _, service, _ = await _get(http, f"/v1/check/{AT_HOME}?policy=service")
        status, unknown, _ = await _get(http, f"/v1/check/{AT_HOME}?policy=nope")
        _, digit, _ = await _get(http, f"/v1/check/{AT_HOME}?policy=nope&format=digit")
    assert default["policy"] == {"name": "default", "version": "1"}
    assert service["policy"] == {"name": "service", "version": "2"}
    assert (default["decision"], service["decision"]) == ("allow", "allow")
    assert status == 400 and unknown["error"]["field"] == "policy"
    assert "telemarketing" in unknown["error"]["message"] and digit == "1"


async def test_a_policy_that_needs_consent_blocks_without_it_and_pays_no_lookup(
    sim: Simulator,
) -> None:
    async with _daemon(sim) as (_, http):
        await _get(http, f"/v1/check/{IN_GERMANY}")  # binds up, one lookup gone out
        submits = sim.stats.submits
        _, none, _ = await _get(http, f"/v1/check/{AT_HOME}?policy=telemarketing")
        looked_up = sim.stats.submits - submits
        async with http.post(f"/v1/consent/{AT_HOME}", json=CONSENT) as r:
            recorded = await r.json()
        _, given, _ = await _get(http, f"/v1/check/{AT_HOME}?policy=telemarketing")
        async with http.post(
            f"/v1/consent/{AT_HOME}/withdrawal", json={"channels": ["voice"]}
        ) as r:
            assert r.status == 200
        _, withdrawn, _ = await _get(http, f"/v1/check/{AT_HOME}?policy=telemarketing")
        _, evidence, _ = await _get(http, f"/v1/consent/{AT_HOME}")
    assert (none["decision"], none["reasons"], none["lookup"]) == (
        "block",
        ["consent_missing:voice"],
        None,
    )
    assert looked_up == 0
    assert recorded["imsi_recorded"] is True and recorded["consent"]["state"] == "active"
    assert (given["decision"], given["call"], given["consent_id"]) == (
        "allow",
        True,
        recorded["consent"]["id"],
    )
    assert (withdrawn["decision"], withdrawn["reasons"]) == ("block", ["consent_withdrawn:voice"])
    assert evidence["number"].endswith("001") and AT_HOME not in str(evidence)
    assert [r["state"] for r in evidence["records"]] == ["withdrawn"]


async def test_a_number_that_changed_hands_since_consent_is_blocked(sim: Simulator) -> None:
    async with _daemon(sim) as (_, http):
        async with http.post(f"/v1/consent/{AT_HOME}", json=CONSENT) as r:
            assert (await r.json())["imsi_recorded"] is True
        _, before, _ = await _get(http, f"/v1/check/{AT_HOME}?policy=telemarketing")
        # The operator gives the number to someone else: another SIM, another IMSI.
        assert sim.smsc is not None
        scenario = sim.smsc.scenario
        rules = tuple(
            dataclasses.replace(r, imsi="260019999999999") if r.prefix == AT_HOME else r
            for r in scenario.rules
        )
        sim.smsc.scenario = dataclasses.replace(scenario, rules=rules)
        _, after, _ = await _get(http, f"/v1/check/{AT_HOME}?policy=telemarketing&fresh=1")
    assert (before["decision"], before["reasons"]) == ("allow", [])
    assert (after["decision"], after["call"], after["reasons"]) == (
        "block",
        False,
        ["subscriber_changed"],
    )
    assert after["lookup"]["imsi"] == "26001**********"  # masked as ever


async def test_outside_the_calling_hours_the_answer_is_defer_until_they_open(
    sim: Simulator,
) -> None:
    async with _daemon(sim, at=TUESDAY_2330) as (_, http):
        async with http.post(f"/v1/consent/{AT_HOME}", json=CONSENT) as r:
            assert r.status == 201
        submits = sim.stats.submits
        _, late, headers = await _get(http, f"/v1/check/{AT_HOME}?policy=telemarketing")
        _, digit, _ = await _get(http, f"/v1/check/{AT_HOME}?policy=telemarketing&format=digit")
        looked_up = sim.stats.submits - submits
        _, default, _ = await _get(http, f"/v1/check/{AT_HOME}")  # no hours in the default
        metrics = await (await http.get("/metrics")).text()
    opens = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)  # Wednesday 08:00 in Warsaw
    assert (late["decision"], late["call"], late["reasons"]) == (
        "defer",
        False,
        ["calling_hours:PL"],
    )
    assert late["retry_after"] == opens.isoformat().replace("+00:00", "Z")
    assert headers["Retry-After"] == str(int(opens.timestamp() - TUESDAY_2330))
    assert late["lookup"] is None and looked_up == 0 and digit == "1"
    assert default["decision"] == "allow"
    assert 'hlrd_deferrals_total{country="PL"} 2.0' in metrics
    assert 'hlrd_decisions_total{reason="calling_hours",verdict="defer"} 2.0' in metrics


async def test_a_roamer_is_called_in_the_visited_country_hours(sim: Simulator) -> None:
    """11:00 on a Tuesday: inside Poland's hours, outside Germany's (15:00-18:00)."""
    async with _daemon(sim) as (_, http):
        async with http.post(f"/v1/consent/{IN_GERMANY}", json=CONSENT) as r:
            assert r.status == 201
        _, roamer, _ = await _get(http, f"/v1/check/{IN_GERMANY}?policy=telemarketing")
        async with http.post(f"/v1/consent/{AT_HOME}", json=CONSENT) as r:
            assert r.status == 201
        _, home, _ = await _get(http, f"/v1/check/{AT_HOME}?policy=telemarketing")
    assert (roamer["decision"], roamer["reasons"]) == ("defer", ["calling_hours:DE"])
    assert roamer["lookup"]["visited_country"] == "DE"  # the lookup told where
    assert roamer["retry_after"] == "2026-12-01T14:00:00Z"  # 15:00 in Berlin
    assert home["decision"] == "allow"


async def test_every_answer_is_in_the_audit_trail_with_its_policy_and_reasons(
    sim: Simulator,
) -> None:
    async with _daemon(sim) as (_, http):
        _, allowed, _ = await _get(http, f"/v1/check/{AT_HOME}")
        _, blocked, _ = await _get(http, f"/v1/check/{AT_HOME}?policy=telemarketing")
        _, mine, _ = await _get(http, f"/v1/audit/numbers/+{AT_HOME}")
        _, other, _ = await _get(http, f"/v1/audit/numbers/{IN_GERMANY}")
        _, page, _ = await _get(http, "/v1/audit?since=2026-12-01T00:00:00Z&limit=1")
        status, bad, _ = await _get(http, "/v1/audit?since=yesterday")
    records = mine["records"]
    assert [r["decision_id"] for r in records] == [allowed["decision_id"], blocked["decision_id"]]
    first, second = records
    assert (first["policy"], first["verdict"], first["lookup"]["provider"]) == (
        "default",
        "allow",
        "sim",
    )
    assert (second["policy"], second["policy_version"], second["reasons"]) == (
        "telemarketing",
        "7",
        ["consent_missing:voice"],
    )
    assert second["lookup"] is None and second["at"] == "2026-12-01T10:00:00Z"
    assert other["records"] == []
    assert len(page["records"]) == 1 and page["next_after_seq"] == page["records"][0]["seq"]
    assert AT_HOME not in str(mine)
    assert status == 400 and bad["error"]["field"] == "since"


async def test_an_smpp_platform_gets_its_account_policy_decision_in_the_receipt(
    sim: Simulator,
) -> None:
    async with _daemon(sim, smpp_server=with_account(policy="telemarketing")) as (daemon, _):
        assert daemon.smpp_server is not None
        await daemon.service.wait_ready()
        submits = sim.stats.submits
        (receipt,) = await asyncio.to_thread(
            smpplib_lookups, daemon.smpp_server.port, "cc", "ccpass", [AT_HOME]
        )
        looked_up = sim.stats.submits - submits
    text = receipt["text"]
    assert "stat:REJECTD err:905" in text
    assert "call:no decision:block reasons:consent_missing:voice" in text
    assert looked_up == 0


@pytest.mark.parametrize("policies", [{"Bad Name": {}}, {"default": {}}])
def test_a_policy_name_must_be_plain(policies: dict[str, Any]) -> None:
    from hlrd.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="policies"):
        parse_config({"upstream": {"providers": [{"name": "p"}]}, "policies": policies})


def _hlrd(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hlrd", *args, "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_hlrd_audit_verify_finds_an_altered_decision(sim: Simulator, tmp_path: Path) -> None:
    async with _daemon(sim) as (_, http):
        for policy in ("default", "telemarketing", "service"):
            await _get(http, f"/v1/check/{AT_HOME}?policy={policy}")
    config = tmp_path / "hlrd.toml"
    config.write_text('[http]\nport = 1\n\n[[upstream.providers]]\nname = "sim"\n')
    clean = await asyncio.to_thread(_hlrd, config, "audit", "verify")
    shown = await asyncio.to_thread(_hlrd, config, "audit", "show", f"+{AT_HOME}")
    exported = tmp_path / "out.jsonl"
    export = await asyncio.to_thread(
        _hlrd, config, "audit", "export", "--since", "2026-12-01T00:00:00Z", "-o", str(exported)
    )
    # Someone with write access turns the block into an allow.
    db = Path(os.environ["HLRD_DATA_DIR"]) / "audit" / "audit.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit SET body = replace(body, 'block', 'allow') WHERE seq = 2")
    tampered = await asyncio.to_thread(_hlrd, config, "audit", "verify")
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["ok"] is True and json.loads(clean.stdout)["records"] == 3
    assert [r["policy"] for r in json.loads(shown.stdout)["records"]] == [
        "default",
        "telemarketing",
        "service",
    ]
    assert export.returncode == 0 and len(exported.read_text().splitlines()) == 3
    assert tampered.returncode == 1
    assert json.loads(tampered.stdout)["first_bad_seq"] == 2


async def test_a_legal_hold_keeps_consent_evidence_unused_after_erasure(sim: Simulator) -> None:
    async with _daemon(sim, erasure={"legal_hold_days": 30}) as (daemon, http):
        async with http.post(f"/v1/consent/{AT_HOME}", json=CONSENT) as r:
            assert r.status == 201
        async with http.delete(f"/v1/subjects/{AT_HOME}") as r:
            receipt = await r.json()
        _, check, _ = await _get(http, f"/v1/check/{AT_HOME}?policy=telemarketing")
        _, evidence, _ = await _get(http, f"/v1/consent/{AT_HOME}")
        async with http.post(f"/v1/consent/{AT_HOME}", json=CONSENT) as r:
            again = (r.status, (await r.json())["error"]["code"])
        assert daemon.checker.consent is not None
        # The hold ends: the evidence goes, securely, on the next housekeeping.
        after_hold = await asyncio.to_thread(
            daemon.checker.consent.purge_expired_holds, TUESDAY_11 + 31 * 86400
        )
        _, purged, _ = await _get(http, f"/v1/consent/{AT_HOME}")
    removed = receipt["removed"]
    assert (removed["consent_records"], removed["consent_records_held"]) == (0, 1)
    assert removed["held_until"] is not None
    assert (check["decision"], check["reasons"]) == ("block", ["erased"])  # never used
    assert [r["state"] for r in evidence["records"]] == ["erased"]
    assert after_hold == 1 and purged["records"] == []
    assert again == (409, "erased")  # no new record links the number again


async def test_a_batch_is_answered_in_order_each_number_through_the_gate(sim: Simulator) -> None:
    numbers = [AT_HOME, "+48600000003", "12", f"+{AT_HOME}", "48600000007"]
    async with _daemon(sim) as (_, http):
        await _get(http, f"/v1/check/{IN_GERMANY}")  # binds up
        async with http.put("/v1/dnc/48600000007", json={"reason": "complaint"}) as r:
            assert r.status == 200
        submits = sim.stats.submits
        async with http.post("/v1/check", json={"numbers": numbers}) as r:
            batch = await r.json()
        looked_up = sim.stats.submits - submits
        async with http.post("/v1/check", json={"numbers": numbers, "policy": "nope"}) as r:
            refused = (r.status, await r.json())
        async with http.post("/v1/check", json={"numbers": []}) as r:
            empty = (r.status, await r.json())
    got = [(x["number"], x.get("decision"), x.get("reasons")) for x in batch["results"]]
    assert got == [
        (AT_HOME, "allow", []),
        ("48600000003", "block", ["roaming_non_eea"]),
        (None, None, None),
        (AT_HOME, "allow", []),
        ("48600000007", "block", ["listed:dnc"]),
    ]
    assert batch["results"][2]["error"]["code"] == "invalid_number"
    assert looked_up == 2  # the number asked twice once; the listed one not at all
    assert refused[0] == 400 and refused[1]["error"]["field"] == "policy"
    assert empty[0] == 400 and empty[1]["error"]["field"] == "numbers"
