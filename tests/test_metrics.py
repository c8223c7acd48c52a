"""/metrics as a NOC's Prometheus reads it, from a real daemon on 127.0.0.1.

What an alert needs: lint-clean exposition, a failing primary provider visible behind
a working fallback, timeouts apart from answers, HTTP refusals by route and code,
every series there (at 0) before its first event, and no phone number in any label.
"""

from __future__ import annotations

import asyncio
import copy
import re
import subprocess
from dataclasses import replace
from importlib.metadata import version
from typing import Any

import pytest

from hlrd.metrics import Metrics
from hlrd.smpp.pdu import SubmitSm, SubmitSmResp
from simulator.controller import Simulator
from simulator.scenario import Rule, Scenario

from .daemon_harness import ACCOUNT, BASE_CONFIG, SMPP_SERVER, running_daemon
from .esme import bound_client, lookup
from .scrape import scrape
from .test_http_hostile import exchange, get
from .tools import require_tool

TOKEN = {"Authorization": "Bearer s3cret"}
AUTH = {"auth_tokens": ["s3cret"]}
ROAMING_EG = "48600000003"  # demo scenario: answers at once
NEVER_ANSWERED = "48600000090"  # demo scenario: no submit_sm_resp, no receipt


async def test_promtool_finds_nothing_to_lint_after_real_traffic(sim: Simulator) -> None:
    promtool = require_tool("promtool", "prometheus")
    async with running_daemon(sim, http=AUTH, smpp_server=SMPP_SERVER) as (daemon, http):
        await daemon.service.wait_ready()
        assert daemon.smpp_server is not None
        for number in (ROAMING_EG, "48600000001"):
            async with http.get(f"/v1/check/{number}", headers=TOKEN) as r:
                assert r.status == 200
        async with http.get(f"/v1/check/{ROAMING_EG}") as r:
            assert r.status == 401
        async with http.get("/nowhere") as r:
            assert r.status == 404
        async with http.get("/v1/lookup/abc", headers=TOKEN) as r:
            assert r.status == 400
        conn, receipts = await bound_client(daemon.smpp_server.port, "cc", "ccpass")
        await lookup(conn, receipts, "48600000002")
        await conn.close()
        text = (await scrape(http)).text
    out = await asyncio.to_thread(
        subprocess.run,
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (out.returncode, out.stdout + out.stderr) == (0, "")
    assert "hlrd_smpp_server_submits_total" in text  # the SMPP front end was in it


def _provider(name: str, port: int, **changes: Any) -> dict[str, Any]:
    p: dict[str, Any] = copy.deepcopy(BASE_CONFIG["upstream"]["providers"][0])
    p.update(name=name, port=port, **changes)
    return p


async def test_a_failing_primary_shows_behind_a_working_fallback(
    sim: Simulator, demo: Scenario
) -> None:
    """The primary takes the submit and never sends a receipt; the fallback answers.
    hlrd_lookups_total sees only the fallback's ok: the attempts show the primary."""
    silent = replace(demo, rules=(Rule(prefix=ROAMING_EG, fault="no_receipt"), *demo.rules))
    async with Simulator(silent) as broken:
        providers = [
            _provider("primary", broken.smpp_port, result_timeout_s=0.3),
            _provider("fallback", sim.smpp_port),
        ]
        async with running_daemon(sim, upstream={"providers": providers}) as (daemon, http):
            for p in daemon.providers:
                await p.wait_ready()  # bound, so the primary is tried first
            async with http.get(f"/v1/lookup/{ROAMING_EG}") as r:
                body = await r.json()
            m = await scrape(http)
    assert body["provider"] == "fallback"
    assert m.value("hlrd_upstream_attempts_total", provider="primary", outcome="timeout") == 1
    assert m.value("hlrd_lookup_failovers_total", provider="primary") == 1
    assert m.value("hlrd_upstream_attempts_total", provider="fallback", outcome="ok") == 1
    assert m.value("hlrd_lookup_failovers_total", provider="fallback") == 0
    assert m.value("hlrd_lookups_total", provider="fallback", outcome="ok") == 1
    lookups_of_primary = [
        m.value("hlrd_lookups_total", provider="primary", outcome=o)
        for o in ("ok", "partial", "failed", "timeout", "throttled")
    ]
    assert lookups_of_primary == [0, 0, 0, 0, 0]


async def test_a_timeout_is_counted_apart_from_answers(sim: Simulator) -> None:
    async with running_daemon(sim, provider={"result_timeout_s": 0.2}) as (daemon, http):
        await daemon.service.wait_ready()
        async with http.get(f"/v1/lookup/{NEVER_ANSWERED}") as r:
            assert r.status == 504
        async with http.get(f"/v1/lookup/{ROAMING_EG}") as r:
            assert r.status == 200
        m = await scrape(http)

    def histogram(part: str, outcome: str, **le: str) -> float | None:
        return m.value(
            f"hlrd_lookup_duration_seconds_{part}", provider="sim", outcome=outcome, **le
        )

    assert histogram("count", "timeout") == 1
    assert histogram("count", "ok") == 1
    timed_out = histogram("sum", "timeout")
    assert timed_out is not None and timed_out >= 0.2
    assert histogram("bucket", "timeout", le="0.1") == 0  # not a 6 ms answer
    assert histogram("sum", "ok") < timed_out  # type: ignore[operator]
    assert m.value("hlrd_lookups_total", provider="sim", outcome="timeout") == 1
    assert m.value("hlrd_upstream_attempts_total", provider="sim", outcome="timeout") == 1


async def test_http_answers_are_counted_by_route_method_and_code(sim: Simulator) -> None:
    """A flood of 401s shows, by route; so do parser refusals and wrong methods."""
    async with running_daemon(sim, http=AUTH) as (daemon, http):
        for _ in range(3):
            async with http.get(f"/v1/check/{ROAMING_EG}") as r:
                assert r.status == 401
        for _ in range(2):
            async with http.get(f"/v1/lookup/{ROAMING_EG}", headers={"Authorization": "x"}) as r:
                assert r.status == 401
        async with http.get(f"/v1/lookup/{ROAMING_EG}", headers=TOKEN) as r:
            assert r.status == 200
        async with http.post("/healthz") as r:
            assert r.status == 405
        refused = await exchange(daemon.http_port, get("/v1/check/+48 600 000 003"))
        assert refused.status == 400
        m = await scrape(http)

    def requests(route: str, code: str, method: str = "GET") -> float | None:
        return m.value("hlrd_http_requests_total", route=route, method=method, code=code)

    assert requests("/v1/check/{number}", "401") == 3
    assert requests("/v1/lookup/{number}", "401") == 2
    assert requests("/v1/lookup/{number}", "200") == 1
    assert requests("unmatched", "405", "POST") == 1
    assert requests("unmatched", "400", "OTHER") == 1
    assert m.value("hlrd_http_request_duration_seconds_count", route="/v1/check/{number}") == 3


# One series per do-not-call list, per country with calling hours: none configured here.
PER_CONFIGURED = {"hlrd_list_hits", "hlrd_deferrals"}


async def test_every_series_is_there_at_zero_before_its_first_event(sim: Simulator) -> None:
    """Prometheus' increase() needs a series' value before its first event."""
    async with running_daemon(sim, smpp_server=SMPP_SERVER) as (_, http):
        m = await scrape(http)  # the first request: nothing has happened yet
    empty = [
        f.name
        for f in m.families
        if f.name.startswith("hlrd_")
        and f.type in ("counter", "histogram")
        and not f.samples
        and f.name not in PER_CONFIGURED
    ]
    assert empty == []
    zero = {
        "hlrd_lookups_total": {"provider": "sim", "outcome": "ok"},
        "hlrd_lookup_duration_seconds_count": {"provider": "sim", "outcome": "timeout"},
        "hlrd_upstream_attempts_total": {"provider": "sim", "outcome": "not_bound"},
        "hlrd_lookup_failovers_total": {"provider": "sim"},
        "hlrd_upstream_throttled_total": {"provider": "sim"},
        "hlrd_upstream_retries_total": {"provider": "sim"},
        "hlrd_upstream_receipts_discarded_total": {"provider": "sim", "reason": "other_number"},
        "hlrd_decisions_total": {"verdict": "block", "reason": "roaming_non_eea"},
        "hlrd_rejected_numbers_total": {"problem": "not_a_number"},
        "hlrd_client_connections_refused_total": {"frontend": "smpp", "reason": "per_ip"},
        "hlrd_client_connections_closed_total": {"frontend": "http", "reason": "header_timeout"},
        "hlrd_smpp_server_submits_total": {"account": "cc"},
        "hlrd_smpp_server_receipts_total": {"account": "cc", "event": "expired"},
        "hlrd_smpp_server_rejected_total": {"account": "cc", "status": "ESME_RMSGQFUL"},
        "hlrd_smpp_server_bind_failures_total": {"account": "?", "reason": "unknown_system_id"},
        "hlrd_http_requests_total": {
            "route": "/v1/lookup/{number}",
            "method": "GET",
            "code": "401",
        },
    }
    assert {name: m.value(name, **labels) for name, labels in zero.items()} == dict.fromkeys(
        zero, 0.0
    )
    assert m.value("hlrd_upstream_queue_limit", provider="sim") == 10_000
    assert m.value("hlrd_upstream_binds_configured", provider="sim") == 2
    python = m.series("python_info")[0]["version"]
    assert m.value("hlrd_build_info", version=version("hlrd"), python=python) == 1
    for name in ("process_resident_memory_bytes", "process_open_fds", "process_max_fds"):
        assert (m.value(name) or 0) > 0, name
    assert m.series("python_gc_collections_total")
    assert len(m.samples) < 600  # bounded: one provider, one account


# Every form a number took below, and the digits an unmasked label would show.
NUMBERS = ["48600000003", "48600000005", "48600000007", "48600000009", "4860000000312345678"]
DIGIT_RUN = re.compile(r"\d{7,}")


async def test_no_label_ever_holds_a_number(sim: Simulator) -> None:
    """Whatever path, header or PDU carries a number, the labels stay templates and
    reasons, and more distinct paths add no series."""
    account = {**ACCOUNT, "reject_invalid": True}
    server = {**SMPP_SERVER, "accounts": [account]}
    async with running_daemon(sim, http=AUTH, smpp_server=server) as (daemon, http):
        await daemon.service.wait_ready()
        assert daemon.smpp_server is not None
        tried = [
            ("GET", f"/v1/lookup/{NUMBERS[0]}", TOKEN),
            ("GET", "/v1/check/+48 600-000-005?format=digit", TOKEN),
            ("GET", f"/v1/lookup/{NUMBERS[4]}", TOKEN),  # too long: 400
            ("GET", f"/v1/lookup/{NUMBERS[1]}", {}),  # 401
            ("GET", f"/v1/{NUMBERS[2]}", TOKEN),  # 404
            ("GET", f"/{NUMBERS[3]}", {}),
            ("GET", f"/v1/check/{NUMBERS[0]}?format={NUMBERS[2]}", TOKEN),
            ("POST", f"/v1/lookup/{NUMBERS[0]}", TOKEN),  # 405
            ("GET", f"/metrics?n={NUMBERS[3]}", {"X-Request-Id": NUMBERS[1]}),
        ]
        for method, path, headers in tried:
            async with http.request(method, path, headers=headers) as r:
                await r.read()
        await exchange(daemon.http_port, get(f"/v1/check/{NUMBERS[3]} {NUMBERS[2]}"))
        conn, receipts = await bound_client(daemon.smpp_server.port, "cc", "ccpass")
        await lookup(conn, receipts, NUMBERS[2])
        refused = await conn.request(
            SubmitSm(source_addr=NUMBERS[1], destination_addr=NUMBERS[4], registered_delivery=1)
        )
        await conn.close()
        before = len((await scrape(http)).samples)
        for i in range(20):  # more numbers, more paths: no more series
            for path in (f"/v1/lookup/486000{i:05d}", f"/v1/check/x{i}", f"/x/4860000{i:04d}"):
                async with http.get(path, headers=TOKEN) as r:
                    await r.read()
        after = await scrape(http)
    assert isinstance(refused, SubmitSmResp) and refused.status != 0
    labels = {v for s in after.samples for v in s.labels.values()}
    assert [v for v in labels if DIGIT_RUN.search(v)] == []
    for number in NUMBERS:
        assert number[2:] not in after.text  # the national digits, in any label or text
    assert len(after.samples) == before


def test_counts_kept_pending_on_the_hot_path_scrape_as_direct_ones_would() -> None:
    """Cached answers count into plain numbers flushed at scrape: the exposition must
    be what prometheus_client's own inc()/observe() give, bucket by bucket (this
    fails if an upgrade of prometheus_client moves what the flush writes into)."""
    pending, direct = Metrics(), Metrics()
    route = "/v1/check/{number}"
    samples = [0.0001, 0.005, 0.0051, 0.2, 0.25, 3.0, 31.0, 0.004]
    for rendered in range(2):  # twice: a flush leaves nothing behind to count again
        for s in samples:
            pending.pending(pending.http_seconds, route).observe(s)
            direct.child(direct.http_seconds, route).observe(s)
            pending.pending(pending.cache_lookups, "memory").inc()
            direct.child(direct.cache_lookups, "memory").inc()
        pending.pending(pending.cost_saved, "sim", "EUR").inc(0.01)
        direct.child(direct.cost_saved, "sim", "EUR").inc(0.01)

        def hot(m: Metrics) -> dict[str, float]:
            lines = m.render().decode().splitlines()
            prefixes = ("hlrd_http_request_duration", "hlrd_cache_", "hlrd_cost_")
            return {
                series: float(value)
                for series, _, value in (line.rpartition(" ") for line in lines)
                if series.startswith(prefixes)
            }

        assert hot(pending) == pytest.approx(hot(direct)), rendered  # sums: float order
    assert hot(pending)[f'hlrd_http_request_duration_seconds_count{{route="{route}"}}'] == 16
