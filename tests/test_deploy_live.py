"""The dashboard and the rules against a real Prometheus scraping a real hlrd.

hlrd (with the simulator as its provider) serves some traffic: lookups that succeed,
one that times out, an invalid number, a request without a token, an SMPP front-end
submit and a wrong SMPP password. A Prometheus started here scrapes it every second
with deploy/'s rule files loaded. Then every dashboard query (variables at "All",
$__rate_interval at 1m) and every recording rule must return a number a graph can
draw: a panel that would show "No data" to a NOC fails this test, with its title.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hlrd.daemon import Daemon
from hlrd.smpp.constants import Status
from hlrd.smpp.errors import ResponseError
from hlrd.smpp.pdu import BindTransceiver
from hlrd.smpp.transport import connect
from simulator.controller import Simulator

from .daemon_harness import SMPP_SERVER, config_for, import_list, running_daemon
from .deploy_files import (
    RULE_FILES,
    Query,
    dashboard,
    panel_queries,
    recording_rules,
    substitute,
    variable_queries,
)
from .deploy_tools import tool
from .esme import bound_client, lookup
from .prometheus_server import Prometheus, PrometheusError, has_numbers, poll, running_prometheus

TOKEN = "live-test-token"
SCRAPE_TIMEOUT_S = 10.0
DATA_TIMEOUT_S = 15.0  # a pass takes ~3 s of it: two scrapes and a rule evaluation
EXPECTED = (200, 200, 200, 200, 200, 504, 400, 401, "DELIVRD", Status.ESME_RINVPASWD)  # drive()'s
LISTED = "48600000007"  # on the do-not-call list "own": blocked before any lookup
TIMED_OUT = 'hlrd_lookups_total{job="hlrd", outcome="timeout"} >= 1'


def all_queries() -> list[Query]:
    board = dashboard()
    found = [
        Query(q.where, substitute(q.expr)) for q in panel_queries(board) + variable_queries(board)
    ]
    found += [Query(f"recording rule {r['record']}", r["record"]) for r in recording_rules()]
    return found


async def test_every_panel_and_recording_rule_has_data(sim: Simulator, tmp_path: Path) -> None:
    binary = tool("prometheus")
    queries = all_queries()
    sections: dict[str, dict[str, Any]] = {
        "http": {"auth_tokens": [TOKEN]},
        "lookup": {"timeout_s": 1, "shutdown_grace_s": 0.2},
        "smpp_server": SMPP_SERVER,
        # No calling hours at all in Poland: every check under it is deferred.
        "policies": {"closed": {"hours": {"PL": {}}}},
    }
    import_list(config_for(sim, **sections), tmp_path, "own", LISTED)
    async with running_daemon(sim, **sections) as (daemon, http):
        await asyncio.wait_for(daemon.service.wait_ready(), SCRAPE_TIMEOUT_S)
        target = f"127.0.0.1:{daemon.http_port}"
        async with running_prometheus(binary, tmp_path, target, RULE_FILES) as prom:
            scraped = await poll(lambda: _has(prom, 'up{job="hlrd"} == 1'), SCRAPE_TIMEOUT_S)
            assert scraped, f"Prometheus never scraped hlrd:\n{prom.log_tail()}"
            # Twice, a scrape between: rate() needs a rise it saw, and a labelled
            # counter that has no series before its first event shows none.
            assert await drive(daemon, http) == EXPECTED
            assert await poll(lambda: _has(prom, TIMED_OUT), SCRAPE_TIMEOUT_S)
            assert await drive(daemon, http) == EXPECTED
            rule_errors = await evaluated_rules_errors(prom)
            missing = await without_data(prom, queries, DATA_TIMEOUT_S)
    assert not rule_errors, "rules that Prometheus cannot evaluate:\n" + "\n".join(rule_errors)
    assert not missing, f"{len(missing)} of {len(queries)} queries return no data:\n" + "\n".join(
        f"  {where}: {why}\n    {expr}" for where, (expr, why) in missing.items()
    )


async def _has(prom: Prometheus, expr: str) -> bool:
    return bool(await prom.query(expr))


async def drive(daemon: Daemon, http: aiohttp.ClientSession) -> tuple[object, ...]:
    """The traffic a NOC's panels show; the answers, to check it happened as meant."""
    auth = {"Authorization": f"Bearer {TOKEN}"}

    async def get(path: str, headers: dict[str, str] = auth) -> int:
        async with http.get(path, headers=headers) as resp:
            return resp.status

    port = daemon.smpp_server.port if daemon.smpp_server is not None else 0

    async def smpp_submit() -> str:
        conn, handler = await bound_client(port, "cc", "ccpass")
        receipt, _ = await lookup(conn, handler, "48600000001")
        await conn.close()
        return receipt.stat

    async def smpp_wrong_password() -> int:
        conn = await connect("127.0.0.1", port)
        try:
            await conn.bind(BindTransceiver(system_id="cc", password="wrong"))
        except ResponseError as exc:
            return exc.status
        finally:
            await conn.close()
        return Status.ESME_ROK

    return tuple(
        await asyncio.gather(
            get("/v1/check/48600000001"),  # at home: allow
            get("/v1/check/48600000003"),  # roaming outside the EEA: block
            get(f"/v1/check/{LISTED}"),  # on a do-not-call list: block, no lookup
            get("/v1/check/48600000001?policy=closed"),  # outside the calling hours: defer
            get("/v1/lookup/48600000002"),
            get("/v1/lookup/48600000090"),  # never answered: times out (lookup.timeout_s)
            get("/v1/check/123"),  # not a number
            get("/v1/check/48600000001", headers={}),  # no token
            smpp_submit(),
            smpp_wrong_password(),
        )
    )


async def evaluated_rules_errors(prom: Prometheus) -> list[str]:
    """Once every rule has been evaluated, those Prometheus reports an error for."""
    rules: list[dict[str, object]] = []

    async def all_evaluated() -> bool:
        nonlocal rules
        groups = (await prom.api("rules"))["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return bool(rules) and all(r["health"] != "unknown" for r in rules)

    if not await poll(all_evaluated, SCRAPE_TIMEOUT_S):
        pytest.fail(f"Prometheus did not evaluate every rule:\n{prom.log_tail()}")
    return [f"  {r['name']}: {r.get('lastError')}" for r in rules if r["health"] != "ok"]


async def without_data(
    prom: Prometheus, queries: list[Query], timeout_s: float
) -> dict[str, tuple[str, str]]:
    """The queries that still return no number when `timeout_s` is up, and why."""
    pending = {q.where: q.expr for q in queries}
    refused: dict[str, tuple[str, str]] = {}

    async def all_have_data() -> bool:
        for where, expr in list(pending.items()):
            try:
                samples = await prom.query(expr)
            except PrometheusError as exc:  # a query Prometheus refuses stays refused
                refused[where] = (expr, str(exc))
                del pending[where]
                continue
            if has_numbers(samples):
                del pending[where]
        return not pending

    await poll(all_have_data, timeout_s, poll_s=0.5)
    return refused | {where: (expr, "no data") for where, expr in pending.items()}
