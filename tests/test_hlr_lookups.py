"""hlr-lookups.com adapter: the request signature as the vendor checks it."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import structlog

from hlrd.config import HTTP_PROVIDER_TYPES, HttpProviderConfig, parse_config
from hlrd.daemon import Daemon
from hlrd.domain.result import LookupResult, Outcome, Reachability, RoamingStatus
from hlrd.logging_setup import configure_logging, flush_logs
from hlrd.upstream.base import ProviderError
from hlrd.upstream.factory import VENDORS
from hlrd.upstream.http.hlr_lookups import HlrLookups, auth_headers, signature
from hlrd.upstream.http.provider import HttpProvider
from simulator.controller import Simulator
from simulator.scenario import Scenario
from simulator.vendors.hlr_lookups import DEMO_KEY, DEMO_SECRET

from .daemon_harness import config_for
from .data_dirs import DATA_ENV

BODY = b'{"msisdn":"+491788735000"}'


def test_the_signature_matches_the_vendors_test_vector() -> None:
    assert signature("hlr-secret-value", "/hlr-lookup", 1790000000, "POST", BODY) == (
        "997fc8db45a0ac1c0e8ecc70bb2de21de9967b3c3c8ae50803aece5962aec6c8"
    )


def test_any_change_to_what_is_signed_changes_the_signature() -> None:
    base = signature("hlr-secret-value", "/hlr-lookup", 1790000000, "POST", BODY)
    changed = [
        signature("other-secret", "/hlr-lookup", 1790000000, "POST", BODY),
        signature("hlr-secret-value", "/hlr-lookups", 1790000000, "POST", BODY),
        signature("hlr-secret-value", "/hlr-lookup", 1790000001, "POST", BODY),
        signature("hlr-secret-value", "/hlr-lookup", 1790000000, "GET", BODY),
        signature("hlr-secret-value", "/hlr-lookup", 1790000000, "POST", BODY + b" "),
    ]
    assert base not in changed and len(set(changed)) == len(changed)


def test_the_headers_carry_key_timestamp_and_signature() -> None:
    headers = auth_headers("key-1", "hlr-secret-value", "/hlr-lookup", 1790000000, "post", BODY)
    assert headers == {
        "X-Digest-Key": "key-1",
        "X-Digest-Timestamp": "1790000000",
        "X-Digest-Signature": "997fc8db45a0ac1c0e8ecc70bb2de21de9967b3c3c8ae50803aece5962aec6c8",
    }


# -- against the vendor's imitation, through a real daemon ----------------------------

AT_HOME = "48600000001"
EGYPT = "48600000003"
ABSENT = "48600000005"
UNKNOWN_SUBSCRIBER = "48600000006"


@pytest.fixture
async def vendor(demo: Scenario) -> AsyncIterator[Simulator]:
    async with Simulator(demo, http_port=0) as s:
        yield s


def _provider(sim: Simulator, **changes: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "name": "hlrl",
        "type": "hlr_lookups",
        "base_url": f"http://127.0.0.1:{sim.http_port}/api/v2",
        "api_key": DEMO_KEY,
        "api_secret": DEMO_SECRET,
        "tps": 1000,
        "request_timeout_s": 2,
    }
    p.update(changes)
    return p


@asynccontextmanager
async def http_daemon(sim: Simulator, **changes: Any) -> AsyncIterator[Daemon]:
    data = config_for(sim, cache={"enabled": False})
    data["upstream"]["providers"] = [_provider(sim, **changes)]
    daemon = Daemon(parse_config(data, env=DATA_ENV()))
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.stop()


async def _look_up(daemon: Daemon, number: str) -> LookupResult:
    return await daemon.service.lookup(daemon.service.normalize(number))


async def test_each_connectivity_status_becomes_hlrds_answer(vendor: Simulator) -> None:
    async with http_daemon(vendor) as daemon:
        home, egypt, absent, unknown = [
            await _look_up(daemon, n) for n in (AT_HOME, EGYPT, ABSENT, UNKNOWN_SUBSCRIBER)
        ]
    assert (home.outcome, home.reachability, home.roaming) == (
        Outcome.OK,
        Reachability.CONNECTED,
        RoamingStatus.NOT_ROAMING,
    )
    assert home.transport == "http" and home.provider == "hlrl"
    assert (egypt.roaming, egypt.visited_country) == (RoamingStatus.ROAMING, "EG")
    assert absent.reachability is Reachability.ABSENT
    assert unknown.reachability is Reachability.INVALID
    assert vendor.hlr_lookups.refused == 0


async def test_a_wrong_secret_is_refused_by_the_vendor_and_fails_the_lookup(
    vendor: Simulator,
) -> None:
    async with http_daemon(vendor, api_secret="not-the-secret") as daemon:
        result = await _look_up(daemon, AT_HOME)
    assert result.outcome is Outcome.FAILED
    assert "credentials" in (result.error or "")
    assert vendor.hlr_lookups.refused == 1  # refused once: an auth failure is not retried


async def test_throttling_and_server_errors_are_retried_to_an_answer(vendor: Simulator) -> None:
    vendor.hlr_lookups.retry_after = "0"
    vendor.hlr_lookups.faults.extend(["throttle", "server_error"])
    async with http_daemon(vendor) as daemon:
        result = await _look_up(daemon, AT_HOME)
    assert result.reachability is Reachability.CONNECTED
    assert vendor.hlr_lookups.requests == 3


@pytest.mark.parametrize("fault", ["malformed", "partial"])
async def test_a_body_that_is_not_an_answer_fails_the_lookup_cleanly(
    vendor: Simulator, fault: str
) -> None:
    vendor.hlr_lookups.faults.append(fault)
    async with http_daemon(vendor) as daemon:
        result = await _look_up(daemon, AT_HOME)
        again = await _look_up(daemon, AT_HOME)  # the provider still works
    assert result.outcome is Outcome.FAILED and "hlr-lookups" in (result.error or "")
    assert again.reachability is Reachability.CONNECTED


async def test_a_vendor_that_never_answers_times_the_lookup_out(vendor: Simulator) -> None:
    vendor.hlr_lookups.faults.extend(["hang"] * 3)
    async with http_daemon(vendor, request_timeout_s=0.05) as daemon:
        result = await _look_up(daemon, AT_HOME)
    assert result.outcome is Outcome.TIMEOUT


def test_an_answer_about_another_number_is_not_taken() -> None:
    vendor = HlrLookups("k", "s")
    body = b'{"msisdn":"+48600000002","connectivity_status":"CONNECTED","mccmnc":"26001"}'
    with pytest.raises(ProviderError, match="another number"):
        vendor.read(200, body, AT_HOME)


def test_masked_imsi_and_msc_are_no_values() -> None:
    body = (
        b'{"msisdn":"+48600000001","connectivity_status":"CONNECTED","mccmnc":"26001",'
        b'"imsi":"***************","msc":"************","is_roaming":false}'
    )
    answer = HlrLookups("k", "s").read(200, body, AT_HOME)
    assert (answer.imsi, answer.msc, answer.serving_mccmnc) == (None, None, "26001")


async def test_the_vendors_key_and_secret_never_reach_the_log(vendor: Simulator) -> None:
    """Not at start (the provider is named by its URL), not when the vendor refuses
    them, not when it fails: a log shipped to a SIEM must not hand out the account."""
    out = io.StringIO()
    configure_logging("json", "DEBUG", out, cache=False)
    try:
        vendor.hlr_lookups.faults.extend(["server_error"] * 3)
        async with http_daemon(vendor, api_key=DEMO_KEY, api_secret=DEMO_SECRET) as daemon:
            failed = await _look_up(daemon, AT_HOME)
            answered = await _look_up(daemon, EGYPT)
        async with http_daemon(vendor, api_secret="wrong-" + DEMO_SECRET) as daemon:
            refused = await _look_up(daemon, AT_HOME)
        flush_logs()
    finally:
        structlog.reset_defaults()
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
    text = out.getvalue()
    assert (failed.outcome, answered.outcome, refused.outcome) == (
        Outcome.FAILED,
        Outcome.OK,
        Outcome.FAILED,
    )
    assert "hlrl@http://127.0.0.1" in text  # the start line names the provider by its URL
    for secret in (DEMO_KEY, DEMO_SECRET, "wrong-" + DEMO_SECRET):
        assert secret not in text


async def test_a_failing_vendor_is_skipped_by_its_breaker_and_no_lookup_is_lost(
    vendor: Simulator,
) -> None:
    """The vendor first, the SMPP simulator behind it: while the vendor breaks (503),
    every lookup is answered by the fallback, and after `failures` in a row the vendor
    is no longer asked at all until its cool-down ends."""
    vendor.hlr_lookups.faults.extend(["server_error"] * 100)
    data = config_for(vendor, cache={"enabled": False})
    smpp = data["upstream"]["providers"][0]
    data["upstream"]["providers"] = [_provider(vendor, max_attempts=1), smpp]
    data["upstream"]["breaker"] = {"failures": 3, "cooldown_s": 300}
    daemon = Daemon(parse_config(data, env=DATA_ENV()))
    await daemon.start()
    try:
        await daemon.service.wait_ready()
        results = [await _look_up(daemon, n) for n in [AT_HOME, EGYPT] * 5]
        metrics = daemon.metrics.render().decode()
    finally:
        await daemon.stop()
    assert [r.provider for r in results] == ["sim"] * 10
    assert all(r.outcome is Outcome.OK for r in results)
    assert vendor.hlr_lookups.requests == 3  # then skipped
    assert 'hlrd_upstream_circuit_state{provider="hlrl"} 2.0' in metrics
    assert 'hlrd_upstream_circuit_opened_total{provider="hlrl"} 1.0' in metrics
    assert 'hlrd_upstream_circuit_state{provider="sim"} 0.0' in metrics


async def test_lookups_beyond_the_queue_bound_are_refused_at_once(vendor: Simulator) -> None:
    """A vendor that stops answering must not gather every caller: past max_queue a
    lookup is refused as throttled (the service then tries the next provider)."""
    vendor.hlr_lookups.faults.append("hang")
    cfg = parse_config({"upstream": {"providers": [_provider(vendor)]}}).providers[0]
    assert isinstance(cfg, HttpProviderConfig)
    provider = HttpProvider(cfg, VENDORS[cfg.type](cfg), max_queue=1)
    await provider.start()
    try:
        first = asyncio.create_task(provider.lookup(AT_HOME, "l1"))
        await asyncio.sleep(0)  # one loop turn: the first lookup is counted, then waits
        assert provider.waiting == 1
        with pytest.raises(ProviderError) as err:
            await provider.lookup(EGYPT, "l2")
        assert (err.value.outcome, str(err.value)) == ("throttled", "provider queue full")
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
        assert provider.waiting == 0
    finally:
        await provider.stop()


def test_every_http_type_the_config_accepts_has_an_adapter() -> None:
    assert set(HTTP_PROVIDER_TYPES) == set(VENDORS)
