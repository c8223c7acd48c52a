"""Infobip Number Lookup adapter: what its answers mean, and lookups gathered into
batches (counted at the imitation, never timed)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import structlog

from hlrd.config import HttpProviderConfig
from hlrd.domain.map_errors import MapError
from hlrd.domain.result import (
    HlrAnswer,
    LookupResult,
    Outcome,
    Reachability,
    RoamingStatus,
)
from hlrd.logging_setup import configure_logging, flush_logs
from hlrd.upstream.base import ProviderError
from hlrd.upstream.http.client import MAX_ANSWER_BYTES
from hlrd.upstream.http.infobip import (
    LEFT_OUT,
    STOPPED,
    Infobip,
    network_country,
    read,
    read_result,
)
from hlrd.upstream.http.provider import HttpProvider
from simulator.scenario import Scenario
from simulator.vendors.infobip import DEMO_KEY, PATH, STRANGER, InfobipImitation

from .vendor_harness import (
    ABSENT,
    AT_HOME,
    BARRED,
    EGYPT,
    GERMANY,
    NEVER_ANSWERS,
    NOT_PROVISIONED,
    PORTED,
    SYSTEM_FAILURE,
    UNKNOWN_SUBSCRIBER,
    seen,
    serving,
    started,
)


def _many(count: int) -> list[str]:
    """Numbers no demo rule names (answers derived from the number itself)."""
    return [f"48601{i:06d}" for i in range(count)]


def _seen(answer: HlrAnswer, number: str) -> LookupResult:
    return seen(number, answer, "ib", return_imsi=True)


# -- the vendor's own examples (docs/vendors/infobip-number-lookup.md) -------------

_OK_STATUS = {
    "groupId": 3,
    "groupName": "DELIVERED",
    "id": 5,
    "name": "DELIVERED_TO_HANDSET",
    "description": "Message delivered to handset",
}
_NO_ERROR = {
    "groupId": 0,
    "groupName": "Ok",
    "id": 0,
    "name": "NO_ERROR",
    "description": "No Error",
    "permanent": False,
}
_SWISSCOM = {
    "networkName": "Swisscom",
    "networkPrefix": "79",
    "countryName": "Switzerland",
    "countryPrefix": "41",
    "networkId": 123,
}
SWISS = "41793026727"
DELIVERED = {
    "to": SWISS,
    "mccMnc": "22801",
    "imsi": "228011234567890",
    "originalNetwork": _SWISSCOM,
    "ported": False,
    "roaming": False,
    "servingMSC": "41001",
    "status": _OK_STATUS,
    "error": _NO_ERROR,
}
PORTED_EXAMPLE = {
    **DELIVERED,
    "ported": True,
    "portedNetwork": {
        "networkName": "Sunrise",
        "networkPrefix": "77",
        "countryName": "Switzerland",
        "countryPrefix": "41",
        "networkId": 321,
    },
    "servingMSC": "41002",
}
ROAMING_EXAMPLE = {
    **DELIVERED,
    "roaming": True,
    "roamingNetwork": {
        "networkName": "Tele2",
        "networkPrefix": "739",
        "countryName": "Sweden",
        "countryPrefix": "46",
        "networkId": 456,
    },
    "servingMSC": "46003",
}
ABSENT_EXAMPLE = {
    "to": SWISS,
    "mccMnc": "22801",
    "originalNetwork": {"networkPrefix": "79", "countryPrefix": "41"},
    "ported": False,
    "roaming": False,
    "status": {
        "groupId": 2,
        "groupName": "UNDELIVERABLE",
        "id": 9,
        "name": "UNDELIVERABLE_NOT_DELIVERED",
        "description": "Message sent not delivered",
    },
    "error": {
        "groupId": 1,
        "groupName": "HANDSET_ERRORS",
        "id": 27,
        "name": "EC_ABSENT_SUBSCRIBER",
        "description": "Absent Subscriber",
        "permanent": False,
    },
}


def _body(*results: dict[str, Any]) -> bytes:
    return json.dumps({"results": list(results), "bulkId": "BULK-ID-123-xyz"}).encode()


def test_the_request_is_digits_without_plus_and_an_app_key() -> None:
    req = Infobip("key-1").request([SWISS, "48600000001"])
    assert (req.method, req.path) == ("POST", "/number/1/query")
    assert req.body == b'{"to":["41793026727","48600000001"]}'
    assert req.headers()["Authorization"] == "App key-1"


def test_the_delivered_example_is_reachable_at_home() -> None:
    answer = read(200, _body(DELIVERED), [SWISS])[SWISS]
    assert answer == HlrAnswer(
        delivered=True,
        imsi="228011234567890",
        mccmnc="22801",
        serving_mccmnc="22801",
        msc="41001",
        ported=False,
        message_id="BULK-ID-123-xyz",
        serving_country="CH",
    )
    seen = _seen(answer, SWISS)
    assert (seen.reachability, seen.roaming) == (Reachability.CONNECTED, RoamingStatus.NOT_ROAMING)


def test_the_ported_example_is_ported() -> None:
    answer = read(200, _body(PORTED_EXAMPLE), [SWISS])[SWISS]
    assert isinstance(answer, HlrAnswer)
    assert (answer.ported, _seen(answer, SWISS).ported) == (True, True)


def test_the_roaming_example_is_roaming_in_sweden() -> None:
    answer = read(200, _body(ROAMING_EXAMPLE), [SWISS])[SWISS]
    assert isinstance(answer, HlrAnswer)
    assert (answer.serving_country, answer.serving_mccmnc, answer.msc) == ("SE", None, "46003")
    seen = _seen(answer, SWISS)
    assert (seen.roaming, seen.visited_country) == (RoamingStatus.ROAMING, "SE")


def test_roaming_is_placed_by_the_roaming_network_without_a_serving_msc() -> None:
    example = {k: v for k, v in ROAMING_EXAMPLE.items() if k != "servingMSC"}
    answer = read_result(example, SWISS)
    seen = _seen(answer, SWISS)
    assert (answer.msc, seen.roaming, seen.visited_country) == (None, RoamingStatus.ROAMING, "SE")


def test_the_absent_example_is_absent_and_not_placed() -> None:
    answer = read(200, _body(ABSENT_EXAMPLE), [SWISS])[SWISS]
    assert isinstance(answer, HlrAnswer)
    assert (answer.delivered, answer.map_error) == (False, MapError.ABSENT_SUBSCRIBER)
    # "roaming": false of an absent subscriber says nothing of where it is
    assert (answer.serving_country, answer.serving_mccmnc, answer.msc) == (None, None, None)
    assert _seen(answer, SWISS).reachability is Reachability.ABSENT


def test_a_serving_msc_in_other_capitals_is_not_read() -> None:
    example = {
        k: v for k, v in ROAMING_EXAMPLE.items() if k not in ("servingMSC", "roamingNetwork")
    }
    answer = read_result({**example, "servingMsc": "46003"}, SWISS)
    assert (answer.msc, answer.serving_country) == (None, None)
    assert _seen(answer, SWISS).roaming is RoamingStatus.UNKNOWN


@pytest.mark.parametrize(
    ("error_id", "map_error", "reachability"),
    [
        (1, MapError.UNKNOWN_SUBSCRIBER, Reachability.INVALID),
        (13, MapError.CALL_BARRED, Reachability.RESTRICTED),
        (11, MapError.TELESERVICE_NOT_PROVISIONED, Reachability.RESTRICTED),
        (34, MapError.SYSTEM_FAILURE, Reachability.UNKNOWN),
        (31, None, Reachability.UNKNOWN),  # subscriberBusyForMT-SMS: not one hlrd names
        (4096, None, Reachability.UNKNOWN),  # not a MAP code at all
    ],
)
def test_error_ids_are_map_errors_when_they_are_known_ones(
    error_id: int, map_error: int | None, reachability: Reachability
) -> None:
    example = {**ABSENT_EXAMPLE, "error": {**ABSENT_EXAMPLE["error"], "id": error_id}}  # type: ignore[dict-item]
    answer = read_result(example, SWISS)
    assert (answer.delivered, answer.map_error) == (False, map_error)
    assert _seen(answer, SWISS).reachability is reachability


def test_a_pending_status_leaves_reachability_unknown() -> None:
    pending = {"groupId": 1, "groupName": "PENDING", "id": 3, "name": "PENDING_WAITING_DELIVERY"}
    answer = read_result({**DELIVERED, "status": pending}, SWISS)
    assert answer.delivered is None
    assert _seen(answer, SWISS).outcome is Outcome.PARTIAL


@pytest.mark.parametrize(
    ("network", "country"),
    [
        ({"countryPrefix": "46"}, "SE"),
        ({"countryPrefix": "20", "countryName": "Egypt"}, "EG"),
        ({"countryPrefix": "1"}, None),  # NANP: twenty-odd countries
        ({"countryPrefix": "1", "countryName": "Canada"}, "CA"),
        ({"countryPrefix": "1", "countryName": "United States"}, "US"),
        ({"countryPrefix": "7"}, None),
        ({"countryPrefix": "7", "countryName": "Kazakhstan"}, "KZ"),
        ({"countryPrefix": "7", "countryName": "Sweden"}, None),  # names no +7 country
        ({"countryPrefix": "44", "countryName": "united kingdom "}, "GB"),
        ({"countryPrefix": "+46"}, None),
        ({"countryPrefix": "9999"}, None),
        ({"networkName": "Tele2"}, None),
        ("46", None),
    ],
)
def test_a_network_is_placed_only_where_its_calling_code_is_unambiguous(
    network: Any, country: str | None
) -> None:
    assert network_country(network) == country


def test_a_result_about_another_number_answers_nobody() -> None:
    outcomes = read(200, _body({**DELIVERED, "to": "48600000002"}), [SWISS])
    failed = outcomes[SWISS]
    assert isinstance(failed, ProviderError)
    assert (str(failed), failed.outcome) == (LEFT_OUT, "failed")
    assert set(outcomes) == {SWISS}


def test_results_are_matched_by_number_not_position() -> None:
    other = {**ABSENT_EXAMPLE, "to": "+" + AT_HOME}  # a "+" is tolerated
    outcomes = read(200, _body(other, DELIVERED), [SWISS, AT_HOME])
    swiss, home = outcomes[SWISS], outcomes[AT_HOME]
    assert isinstance(swiss, HlrAnswer) and isinstance(home, HlrAnswer)
    assert (swiss.delivered, home.delivered) == (True, False)


@pytest.mark.parametrize(
    "body",
    [
        b'{"results":[{"to":"4179',
        b"[]",
        b'{"bulkId":"x"}',
        b'{"results":{"to":"41793026727"}}',
        b"\xff\xfe",
    ],
)
def test_a_body_that_is_no_batch_answer_fails_the_whole_batch(body: bytes) -> None:
    with pytest.raises(ProviderError) as err:
        read(200, body, [SWISS])
    assert err.value.outcome == "failed" and str(err.value).startswith("infobip")


@pytest.mark.parametrize(
    "result",
    [
        {"to": SWISS},
        {"to": SWISS, "status": "DELIVERED"},
        {"to": SWISS, "status": {"groupId": "3"}},
        {"to": SWISS, "error": _NO_ERROR},
    ],
)
def test_a_result_without_a_status_fails_its_lookup_only(result: dict[str, Any]) -> None:
    outcomes = read(200, _body(result, ABSENT_EXAMPLE | {"to": AT_HOME}), [SWISS, AT_HOME])
    assert isinstance(outcomes[SWISS], ProviderError)
    assert isinstance(outcomes[AT_HOME], HlrAnswer)


def test_an_http_error_names_infobips_code_but_not_its_text() -> None:
    body = json.dumps(
        {"requestError": {"serviceException": {"messageId": "BAD_REQUEST", "text": SWISS}}}
    ).encode()
    with pytest.raises(ProviderError) as err:
        read(400, body, [SWISS])
    assert str(err.value) == "infobip refused the request (HTTP 400 BAD_REQUEST)"
    with pytest.raises(ProviderError, match=r"credentials \(HTTP 401\)"):
        read(401, b"<html>", [SWISS])


# -- against the vendor's imitation -------------------------------------------------


@dataclass
class Server:
    imitation: InfobipImitation
    port: int


@pytest.fixture
async def server(demo: Scenario) -> AsyncIterator[Server]:
    imit = InfobipImitation(demo)
    async with serving(imit) as port:
        yield Server(imit, port)


@asynccontextmanager
async def infobip(server: Server, **changes: Any) -> AsyncIterator[tuple[HttpProvider, Infobip]]:
    settings: dict[str, Any] = {
        "name": "ib",
        "type": "infobip",
        "base_url": f"http://127.0.0.1:{server.port}",
        "api_key": DEMO_KEY,
        "tps": 1000,
        "request_timeout_s": 2,
    }
    settings.update(changes)
    cfg = HttpProviderConfig(**settings)
    vendor = Infobip(cfg.api_key, cfg.batch_size, cfg.batch_wait_s)
    provider = HttpProvider(cfg, vendor)
    async with started(provider):
        yield provider, vendor


async def _all(provider: HttpProvider, numbers: list[str]) -> list[HlrAnswer | BaseException]:
    return await asyncio.gather(
        *(provider.lookup(n, f"l{i}") for i, n in enumerate(numbers)), return_exceptions=True
    )


@pytest.mark.parametrize("serving_msc", [True, False])
async def test_each_status_family_becomes_hlrds_answer(server: Server, serving_msc: bool) -> None:
    """With and without servingMSC: without it the visited country comes from
    roamingNetwork's calling code."""
    server.imitation.serving_msc = serving_msc
    numbers = [
        AT_HOME,
        GERMANY,
        EGYPT,
        PORTED,
        ABSENT,
        UNKNOWN_SUBSCRIBER,
        BARRED,
        NOT_PROVISIONED,
        SYSTEM_FAILURE,
    ]
    async with infobip(server) as (provider, _):
        answers = await _all(provider, numbers)
    assert server.imitation.batch_sizes == {len(numbers): 1}  # one request for all
    seen = {}
    for n, a in zip(numbers, answers, strict=True):
        assert isinstance(a, HlrAnswer), a
        seen[n] = _seen(a, n)
    assert (seen[AT_HOME].reachability, seen[AT_HOME].roaming) == (
        Reachability.CONNECTED,
        RoamingStatus.NOT_ROAMING,
    )
    assert seen[AT_HOME].imsi == "260010000000001"
    assert (seen[GERMANY].roaming, seen[GERMANY].visited_country) == (RoamingStatus.ROAMING, "DE")
    assert (seen[EGYPT].roaming, seen[EGYPT].visited_country) == (RoamingStatus.ROAMING, "EG")
    assert (seen[PORTED].ported, seen[PORTED].roaming) == (True, RoamingStatus.NOT_ROAMING)
    assert seen[PORTED].subscription_network.mccmnc == "26003"
    assert seen[ABSENT].reachability is Reachability.ABSENT
    assert seen[UNKNOWN_SUBSCRIBER].reachability is Reachability.INVALID
    assert seen[BARRED].reachability is Reachability.RESTRICTED
    assert seen[BARRED].map_error == MapError.CALL_BARRED
    assert seen[NOT_PROVISIONED].map_error == MapError.TELESERVICE_NOT_PROVISIONED
    assert seen[SYSTEM_FAILURE].map_error == MapError.SYSTEM_FAILURE
    assert seen[SYSTEM_FAILURE].outcome is Outcome.PARTIAL
    assert all(s.roaming is RoamingStatus.UNKNOWN for s in (seen[ABSENT], seen[BARRED]))
    assert server.imitation.refused == 0


async def test_a_wrong_key_is_refused_and_not_retried(server: Server) -> None:
    async with infobip(server, api_key="not-the-key") as (provider, _):
        with pytest.raises(ProviderError) as err:
            await provider.lookup(AT_HOME, "l1")
    assert err.value.outcome == "failed"
    assert (
        str(err.value) == "infobip refused the credentials (HTTP 401 UNAUTHORIZED): check api_key"
    )
    assert (server.imitation.requests, server.imitation.refused) == (1, 1)


async def test_throttling_and_server_errors_are_retried_to_an_answer(server: Server) -> None:
    server.imitation.retry_after = "0"
    server.imitation.faults.extend(["throttle", "server_error"])
    async with infobip(server) as (provider, _):
        answer = await provider.lookup(AT_HOME, "l1")
    assert answer.delivered is True
    assert server.imitation.requests == 3


async def test_throttling_to_the_last_attempt_is_throttled(server: Server) -> None:
    server.imitation.retry_after = "0"
    server.imitation.faults.extend(["throttle"] * 3)
    async with infobip(server, max_attempts=3) as (provider, _):
        with pytest.raises(ProviderError) as err:
            await provider.lookup(AT_HOME, "l1")
    assert err.value.outcome == "throttled"
    assert server.imitation.requests == 3


async def test_a_vendor_that_never_answers_times_the_lookup_out(server: Server) -> None:
    server.imitation.faults.append("hang")
    async with infobip(server, request_timeout_s=0.2, max_attempts=1) as (provider, _):
        with pytest.raises(ProviderError) as err:
            await provider.lookup(AT_HOME, "l1")
    assert err.value.outcome == "timeout"


@pytest.mark.parametrize("fault", ["malformed", "partial"])
async def test_a_body_that_is_not_an_answer_fails_the_lookup_cleanly(
    server: Server, fault: str
) -> None:
    server.imitation.faults.append(fault)
    async with infobip(server) as (provider, _):
        with pytest.raises(ProviderError) as err:
            await provider.lookup(AT_HOME, "l1")
        again = await provider.lookup(AT_HOME, "l2")  # the provider still works
    assert err.value.outcome == "failed" and str(err.value).startswith("infobip")
    assert again.delivered is True


async def test_an_answer_about_another_number_is_not_taken(server: Server) -> None:
    server.imitation.faults.append("other_number")
    async with infobip(server) as (provider, _):
        home, egypt = await _all(provider, [AT_HOME, EGYPT])
    assert isinstance(home, ProviderError) and str(home) == LEFT_OUT
    assert isinstance(egypt, HlrAnswer) and egypt.delivered is True


async def test_a_number_the_vendor_leaves_out_fails_alone(server: Server) -> None:
    async with infobip(server) as (provider, _):
        lost, home = await _all(provider, [NEVER_ANSWERS, AT_HOME])
    assert isinstance(lost, ProviderError) and (str(lost), lost.outcome) == (LEFT_OUT, "failed")
    assert isinstance(home, HlrAnswer)
    assert server.imitation.requests == 1


async def test_the_imitation_refuses_more_than_a_thousand_numbers(server: Server) -> None:
    url = f"http://127.0.0.1:{server.port}{PATH}"
    headers = {"Authorization": "App " + DEMO_KEY}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"to": _many(1001)}, headers=headers) as resp:
            status, body = resp.status, await resp.json()
        async with session.post(url, json={"to": ["+" + AT_HOME]}, headers=headers) as resp:
            plus = resp.status
    assert status == 400
    assert body["requestError"]["serviceException"]["messageId"] == "BAD_REQUEST"
    assert "limited to 1000" in body["requestError"]["serviceException"]["text"]
    assert plus == 400


# -- batching ---------------------------------------------------------------------


async def test_concurrent_lookups_share_requests_of_batch_size(
    server: Server, demo: Scenario
) -> None:
    numbers = _many(300)
    async with infobip(server, batch_size=100) as (provider, vendor):
        answers = await _all(provider, numbers)
        assert (vendor.waiting, vendor.batches_in_flight) == (0, 0)
    assert server.imitation.requests == 3
    assert server.imitation.batch_sizes == {100: 3}
    for n, a in zip(numbers, answers, strict=True):  # each got its own number's answer
        assert isinstance(a, HlrAnswer)
        expected = demo.answer(n)
        assert (a.imsi, a.mccmnc) == (expected.imsi, expected.subscription_mccmnc)


async def test_a_thousand_concurrent_lookups_cost_one_request(server: Server) -> None:
    """The ratio the README quotes: 1,000 lookups, batch_size 1000, batch_wait_s
    0.005 -> 1 request (0.001 requests per lookup), and the answer stays under the
    client's size bound."""
    async with infobip(server, batch_size=1000, batch_wait_s=0.005) as (provider, _):
        answers = await _all(provider, _many(1000))
    assert all(isinstance(a, HlrAnswer) for a in answers)
    assert server.imitation.requests / len(answers) == 0.001
    assert server.imitation.batch_sizes == {1000: 1}


async def test_a_full_batch_does_not_wait_for_its_timer(server: Server) -> None:
    async with infobip(server, batch_size=7, batch_wait_s=3600) as (provider, _):
        answers = await _all(provider, _many(7))
    assert all(isinstance(a, HlrAnswer) for a in answers)
    assert server.imitation.batch_sizes == {7: 1}


async def test_a_batch_that_does_not_fill_is_sent_by_its_timer(server: Server) -> None:
    async with infobip(server, batch_size=1000, batch_wait_s=0.001) as (provider, _):
        answers = await _all(provider, _many(5))
        one = await provider.lookup(AT_HOME, "l9")  # alone: a batch of one
    assert all(isinstance(a, HlrAnswer) for a in answers) and one.delivered is True
    assert server.imitation.batch_sizes == {5: 1, 1: 1}


async def test_a_batch_never_holds_more_than_the_vendor_takes(server: Server) -> None:
    async with infobip(server, batch_size=5000) as (provider, _):
        answers = await _all(provider, _many(1001))
    assert all(isinstance(a, HlrAnswer) for a in answers)
    assert server.imitation.batch_sizes == {1000: 1, 1: 1}


async def test_the_same_number_twice_is_asked_once(server: Server) -> None:
    async with infobip(server) as (provider, _):
        first, second, other = await _all(provider, [EGYPT, EGYPT, AT_HOME])
    assert server.imitation.batch_sizes == {2: 1}
    assert isinstance(first, HlrAnswer) and first == second
    assert isinstance(other, HlrAnswer) and other.imsi == "260010000000001"


@pytest.mark.parametrize(
    ("changes", "fault", "outcome"),
    [
        ({"max_attempts": 1}, "server_error", "failed"),
        ({"api_key": "not-the-key"}, None, "failed"),
        ({"max_attempts": 1, "request_timeout_s": 0.2}, "hang", "timeout"),
        ({}, "malformed", "failed"),
    ],
)
async def test_a_failed_request_fails_every_lookup_of_its_batch(
    server: Server, changes: dict[str, Any], fault: str | None, outcome: str
) -> None:
    if fault:
        server.imitation.faults.append(fault)
    async with infobip(server, **changes) as (provider, vendor):
        answers = await _all(provider, _many(10))
        assert vendor.waiting == 0
    assert server.imitation.requests == 1
    assert all(isinstance(a, ProviderError) and a.outcome == outcome for a in answers)


async def test_a_lookup_given_up_before_its_batch_is_sent_is_not_asked(server: Server) -> None:
    async with infobip(server, batch_size=2, batch_wait_s=3600) as (provider, vendor):
        gone = asyncio.create_task(provider.lookup(AT_HOME, "l1"))
        await asyncio.sleep(0)  # one loop turn: it joins the batch
        assert vendor.waiting == 1
        gone.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gone
        assert (vendor.waiting, provider.waiting) == (0, 0)
        egypt, absent = await _all(provider, [EGYPT, ABSENT])  # a batch of these two
    assert isinstance(egypt, HlrAnswer) and isinstance(absent, HlrAnswer)
    assert server.imitation.batch_sizes == {2: 1}
    assert server.imitation.numbers == 2


async def test_a_lookup_given_up_does_not_break_its_batch(server: Server) -> None:
    async with infobip(server, batch_size=3, batch_wait_s=3600) as (provider, vendor):
        gone = asyncio.create_task(provider.lookup(AT_HOME, "l1"))
        kept = asyncio.create_task(provider.lookup(EGYPT, "l2"))
        await asyncio.sleep(0)
        gone.cancel()
        more = await _all(provider, [ABSENT, GERMANY])  # fills the batch: EGYPT + these
        egypt = await kept
        assert gone.cancelled()
        assert (vendor.waiting, vendor.batches_in_flight) == (0, 0)
    assert egypt.delivered is True and all(isinstance(a, HlrAnswer) for a in more)
    assert server.imitation.batch_sizes == {3: 1}


async def test_a_lookup_given_up_while_its_batch_is_asked_leaves_nothing_behind(
    server: Server,
) -> None:
    server.imitation.faults.append("hang")
    async with infobip(server, batch_size=2, max_attempts=1) as (provider, vendor):
        gone = asyncio.create_task(provider.lookup(AT_HOME, "l1"))
        kept = asyncio.create_task(provider.lookup(EGYPT, "l2"))
        await server.imitation.arrived.wait()  # the batch is at the vendor
        gone.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gone
        assert vendor.waiting == 1  # the other lookup still waits for the answer
        server.imitation.release()  # the hanging request ends (503)
        with pytest.raises(ProviderError) as err:
            await kept
        assert (vendor.waiting, vendor.batches_in_flight) == (0, 0)
    assert err.value.outcome == "failed"


async def test_stopping_fails_the_lookups_still_waiting(server: Server) -> None:
    async with infobip(server, batch_size=10, batch_wait_s=3600) as (provider, vendor):
        waiting = [asyncio.create_task(provider.lookup(n, "l")) for n in (AT_HOME, EGYPT)]
        await asyncio.sleep(0)
        await provider.stop()
        answers = await asyncio.gather(*waiting, return_exceptions=True)
        assert vendor.waiting == 0
    assert all(isinstance(a, ProviderError) and str(a) == STOPPED for a in answers)
    assert server.imitation.requests == 0


async def test_stopping_fails_a_batch_at_the_vendor(server: Server) -> None:
    server.imitation.faults.append("hang")
    async with infobip(server) as (provider, vendor):
        waiting = asyncio.create_task(provider.lookup(AT_HOME, "l1"))
        await server.imitation.arrived.wait()
        await provider.stop()
        with pytest.raises(ProviderError, match=STOPPED):
            await waiting
        assert (vendor.waiting, vendor.batches_in_flight) == (0, 0)


# -- secrets and numbers stay out of what is logged and raised ----------------------


async def test_the_key_and_the_numbers_never_reach_errors_or_the_log(server: Server) -> None:
    out = io.StringIO()
    configure_logging("json", "DEBUG", out, cache=False)
    errors: list[str] = []
    try:
        server.imitation.retry_after = "0"
        for fault in ("malformed", "partial", "other_number", "server_error", "throttle"):
            server.imitation.faults.extend([fault] * 3)
            async with infobip(server) as (provider, _):
                got = await _all(provider, [AT_HOME, EGYPT, NEVER_ANSWERS])
            errors += [str(e) for e in got if isinstance(e, ProviderError)]
        async with infobip(server, api_key="wrong-" + DEMO_KEY) as (provider, _):
            got = await _all(provider, [AT_HOME])
        errors += [str(e) for e in got if isinstance(e, ProviderError)]
        flush_logs()
    finally:
        structlog.reset_defaults()
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
    assert len(errors) >= 12
    text = out.getvalue() + "\n".join(errors)
    for secret in (DEMO_KEY, AT_HOME, EGYPT, NEVER_ANSWERS, STRANGER, "60000000"):
        assert secret not in text


def test_the_client_bound_fits_a_full_batch() -> None:
    """1,000 results of the roaming example, as compact as Infobip sends them."""
    body = json.dumps({"results": [ROAMING_EXAMPLE] * 1000}, separators=(",", ":"))
    assert len(body) < MAX_ANSWER_BYTES


async def test_a_batch_waiting_for_its_rate_slot_keeps_taking_numbers(server: Server) -> None:
    """At the account's request rate, numbers that come while a batch waits for its
    slot ride in it: fewer requests, none of them wasted on a handful of numbers."""
    async with infobip(server, tps=2, batch_wait_s=0.0) as (provider, vendor):
        first = await _all(provider, _many(1))  # takes the one slot there is
        numbers = _many(201)[1:]
        wave = asyncio.gather(*(provider.lookup(n, "w") for n in numbers[:100]))
        # Its timer fires a loop turn or two later: asked for, not yet written. The
        # batcher has no event for it (none of its users needs one); yield until then.
        while vendor.batches_in_flight == 0:  # noqa: ASYNC110
            await asyncio.sleep(0)
        late = asyncio.gather(*(provider.lookup(n, "w") for n in numbers[100:]))
        answers = [*await wave, *await late]
    assert not isinstance(first[0], BaseException)
    assert len(answers) == 200 and all(isinstance(a, HlrAnswer) for a in answers)
    assert server.imitation.batch_sizes == {1: 1, 200: 1}
