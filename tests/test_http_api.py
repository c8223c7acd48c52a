"""The daemon's HTTP API against the simulator over 127.0.0.1, as a dialer uses it."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest

from simulator.controller import Simulator

from .daemon_harness import running_daemon


@pytest.mark.parametrize(
    ("number", "reach", "roaming", "zone", "visited", "ported", "verdict", "digit"),
    [
        ("+48600000001", "CONNECTED", "NOT_ROAMING", "DOMESTIC", None, False, "allow", "0"),
        ("+48600000002", "CONNECTED", "ROAMING", "EEA", "DE", False, "allow", "0"),
        ("+48600000003", "CONNECTED", "ROAMING", "NON_EEA", "EG", False, "block", "1"),
        ("+48600000004", "CONNECTED", "NOT_ROAMING", "DOMESTIC", None, True, "allow", "0"),
        ("+48600000005", "ABSENT", "UNKNOWN", "UNKNOWN", None, False, "block", "1"),
        ("+48600000006", "INVALID", "UNKNOWN", "UNKNOWN", None, None, "block", "1"),
        # callBarred / no SMS teleservice say little about voice: allowed unless configured
        ("+48600000007", "RESTRICTED", "UNKNOWN", "UNKNOWN", None, False, "allow", "0"),
        ("+48600000009", "UNKNOWN", "UNKNOWN", "UNKNOWN", None, False, "unknown", "1"),
    ],
)
async def test_each_reachability_and_roaming_case(
    sim: Simulator,
    number: str,
    reach: str,
    roaming: str,
    zone: str,
    visited: str | None,
    ported: bool | None,
    verdict: str,
    digit: str,
) -> None:
    async with running_daemon(sim) as (_, http):
        async with http.get(f"/v1/lookup/{number}") as r:
            assert r.status == 200
            result = await r.json()
        async with http.get(f"/v1/check/{number}") as r:
            check = await r.json()
        async with http.get(f"/v1/check/{number}", params={"format": "digit"}) as r:
            assert r.content_type == "text/plain"
            body = await r.text()
    assert result["msisdn"] == number[1:]
    assert result["reachability"] == reach
    assert result["roaming"] == roaming
    assert result["zone"] == zone
    assert result["visited_country"] == visited
    assert result["ported"] is ported
    assert check["decision"] == verdict
    assert body == digit


async def test_result_carries_networks_map_error_and_masked_imsi(sim: Simulator) -> None:
    async with running_daemon(sim) as (_, http):
        async with http.get("/v1/lookup/48600000003") as r:
            egypt = await r.json()
        async with http.get("/v1/lookup/48600000005") as r:
            absent = await r.json()
    assert egypt["serving_msc"] == "201000000100"
    assert egypt["serving_country"] == "EG"
    assert egypt["home_network"]["country"] == "PL"
    assert egypt["subscription_network"] == {"mccmnc": "26001", "country": "PL"}
    assert egypt["imsi"] == "26001**********"  # masked unless lookup.return_imsi
    assert egypt["provider"] == "sim"
    assert egypt["transport"] == "smpp"
    assert egypt["outcome"] == "ok"
    assert absent["map_error"] == 27
    assert absent["map_error_name"] == "absentSubscriber"


async def test_imsi_is_returned_when_configured(sim: Simulator) -> None:
    async with running_daemon(sim, lookup={"return_imsi": True}) as (_, http):
        async with http.get("/v1/lookup/48600000003") as r:
            assert (await r.json())["imsi"] == "260010000000003"


@pytest.mark.parametrize(
    "number", ["+48 600 000 003", "0048600000003", "48600000003", "600000003", "600-000-003"]
)
async def test_number_formats_reach_the_same_subscriber(sim: Simulator, number: str) -> None:
    async with running_daemon(sim) as (_, http), http.get(f"/v1/check/{number}") as r:
        check = await r.json()
    assert check["lookup"]["msisdn"] == "48600000003"
    assert check["decision"] == "block"


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("hello", "not_a_number"),
        ("+48 22 123 45 67", "not_mobile"),
        ("+4860000", "invalid_for_country"),
        ("1234567890123456789", "too_long"),
    ],
)
async def test_bad_numbers_get_400_naming_the_field(
    sim: Simulator, number: str, reason: str
) -> None:
    async with running_daemon(sim) as (daemon, http):
        async with http.get(f"/v1/check/{number}") as r:
            assert r.status == 400
            body = await r.json()
        async with http.get(f"/v1/check/{number}", params={"format": "digit"}) as r:
            digit = (r.status, await r.text())
    assert body["error"]["code"] == "invalid_number"
    assert body["error"]["field"] == "number"
    assert body["error"]["reason"] == reason
    assert digit == (400, "1")  # a dialer's filter fails closed
    assert sim.stats.submits == 0  # nothing went upstream
    assert 'hlrd_rejected_numbers_total{problem="' + reason + '"} 2.0' in (
        daemon.metrics.render().decode()
    )


async def test_unknown_format_parameter_is_refused(sim: Simulator) -> None:
    async with running_daemon(sim) as (_, http):
        async with http.get("/v1/check/48600000001", params={"format": "xml"}) as r:
            assert r.status == 400
            body = await r.json()
    assert body["error"]["field"] == "format"


async def test_bearer_auth(sim: Simulator) -> None:
    async with running_daemon(sim, http={"auth_tokens": ["s3cret"]}) as (_, http):
        async with http.get("/v1/lookup/48600000001") as r:
            assert r.status == 401
            body = await r.json()
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
        async with http.get(
            "/v1/check/48600000001",
            params={"format": "digit"},
            headers={"Authorization": "Bearer no"},
        ) as r:
            denied_digit = (r.status, await r.text())
        async with http.get(
            "/v1/lookup/48600000001", headers={"Authorization": "Bearer s3cret"}
        ) as r:
            assert r.status == 200
        async with http.get("/healthz") as r:
            assert r.status == 200  # probes stay open
    assert body["error"]["code"] == "unauthorized"
    assert body["error"]["field"] == "Authorization"
    assert denied_digit == (401, "1")


async def test_health_ready_and_metrics(sim: Simulator) -> None:
    async with running_daemon(sim) as (daemon, http):
        await daemon.service.wait_ready()
        async with http.get("/readyz") as r:
            ready = (r.status, await r.json())
        async with http.get("/v1/check/48600000003") as r:
            assert r.status == 200
        async with http.get("/metrics") as r:
            text = await r.text()
    assert ready == (200, {"status": "ready", "providers": {"sim": "bound"}})
    assert 'hlrd_lookups_total{outcome="ok",provider="sim"} 1.0' in text
    assert 'hlrd_upstream_binds{provider="sim",state="bound"} 2.0' in text
    assert 'hlrd_decisions_total{reason="roaming_non_eea",verdict="block"} 1.0' in text
    assert "hlrd_lookup_duration_seconds_bucket" in text
    assert "hlrd_upstream_window_in_flight" in text


async def test_not_ready_while_the_upstream_is_down(demo: object) -> None:
    from simulator.scenario import Scenario

    assert isinstance(demo, Scenario)
    sim = Simulator(demo)
    await sim.start()
    await sim.stop()  # a port nobody listens on any more
    async with running_daemon(sim) as (_, http):
        async with http.get("/readyz") as r:
            assert r.status == 503
            assert (await r.json())["providers"] == {"sim": "down"}
        async with http.get("/healthz") as r:
            assert r.status == 200


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is installed by .ci/run")
async def test_curl_digit_filter_as_a_dialer_calls_it(sim: Simulator) -> None:
    async with running_daemon(sim) as (daemon, _):
        url = f"http://127.0.0.1:{daemon.http_port}/v1/check/+48600000003?format=digit"
        home = url.replace("600000003", "600000001")
        out = await asyncio.to_thread(
            subprocess.run, ["curl", "-s", url, home], capture_output=True, text=True, timeout=30
        )
    assert out.stdout == "10"
