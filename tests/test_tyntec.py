"""tyntec HLR Lookup (GNV) adapter, against its imitation and against answers built
from tyntec's public field list (docs/vendors/tyntec-gnv.md)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
    Zone,
)
from hlrd.logging_setup import configure_logging, flush_logs
from hlrd.upstream.base import ProviderError
from hlrd.upstream.http.provider import HttpProvider
from hlrd.upstream.http.tyntec import Tyntec, alpha2
from simulator.scenario import Scenario
from simulator.vendors.tyntec import DEMO_KEY, TyntecImitation, gnv_response

from .vendor_harness import (
    ABSENT,
    AT_HOME,
    BARRED,
    EGYPT,
    GERMANY,
    NOT_PROVISIONED,
    PORTED,
    SYSTEM_FAILURE,
    UNKNOWN_SUBSCRIBER,
    seen,
    serving,
    started,
)

REFUSED = (ABSENT, UNKNOWN_SUBSCRIBER, BARRED, SYSTEM_FAILURE)


@asynccontextmanager
async def served(scenario: Scenario) -> AsyncIterator[tuple[TyntecImitation, int]]:
    imit = TyntecImitation(scenario)
    async with serving(imit) as port:
        yield imit, port


@pytest.fixture
async def vendor(demo: Scenario) -> AsyncIterator[tuple[TyntecImitation, int]]:
    async with served(demo) as s:
        yield s


@asynccontextmanager
async def provider(port: int, key: str = DEMO_KEY, **changes: Any) -> AsyncIterator[HttpProvider]:
    settings: dict[str, Any] = {"tps": 1000, "request_timeout_s": 2.0}
    settings.update(changes)
    cfg = HttpProviderConfig(
        name="tyntec",
        type="tyntec",
        base_url=f"http://127.0.0.1:{port}",
        api_key=key,
        **settings,
    )
    p = HttpProvider(cfg, Tyntec(cfg.api_key))
    async with started(p):
        yield p


def seen_as(number: str, answer: HlrAnswer) -> LookupResult:
    return seen(number, answer, "tyntec")


async def look_up(p: HttpProvider, number: str) -> LookupResult:
    return seen_as(number, await p.lookup(number, "l1"))


# -- the request -------------------------------------------------------------------------


def test_the_request_is_a_get_with_the_plus_encoded_and_the_key_in_its_header() -> None:
    req = Tyntec("k-1").request(AT_HOME, "l1")
    assert (req.method, req.path, req.body) == ("GET", "/nis/v1/gnv?msisdn=%2B48600000001", None)
    assert req.headers() == {"Accept": "application/json", "apiKey": "k-1"}


async def test_the_number_arrives_with_its_plus(vendor: tuple[TyntecImitation, int]) -> None:
    imit, port = vendor
    async with provider(port) as p:
        await p.lookup(AT_HOME, "l1")
    assert imit.asked == ["+48600000001"]


async def test_the_imitation_reads_a_bare_plus_as_a_space_as_a_form_does(
    vendor: tuple[TyntecImitation, int],
) -> None:
    """So the imitation would catch an adapter that forgot to encode it."""
    _, port = vendor
    async with (
        aiohttp.ClientSession() as s,
        s.get(
            f"http://127.0.0.1:{port}/nis/v1/gnv?msisdn=+{AT_HOME}", headers={"apiKey": DEMO_KEY}
        ) as resp,
    ):
        body = await resp.json(content_type=None)
        assert (resp.status, resp.content_type) == (400, "application/problem+json")
    assert body["status"] == 400 and body["type"].endswith("/DataNotParseable")


# -- every status of the scenario --------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "reachability", "roaming", "visited"),
    [
        (AT_HOME, Reachability.CONNECTED, RoamingStatus.NOT_ROAMING, None),
        (GERMANY, Reachability.CONNECTED, RoamingStatus.ROAMING, "DE"),
        (EGYPT, Reachability.CONNECTED, RoamingStatus.ROAMING, "EG"),
        (PORTED, Reachability.CONNECTED, RoamingStatus.NOT_ROAMING, None),
        (ABSENT, Reachability.ABSENT, RoamingStatus.UNKNOWN, None),
        (UNKNOWN_SUBSCRIBER, Reachability.INVALID, RoamingStatus.UNKNOWN, None),
        (BARRED, Reachability.RESTRICTED, RoamingStatus.UNKNOWN, None),
        (NOT_PROVISIONED, Reachability.RESTRICTED, RoamingStatus.UNKNOWN, None),
        (SYSTEM_FAILURE, Reachability.UNKNOWN, RoamingStatus.UNKNOWN, None),
    ],
)
async def test_each_scenario_status_becomes_hlrds_answer(
    vendor: tuple[TyntecImitation, int],
    number: str,
    reachability: Reachability,
    roaming: RoamingStatus,
    visited: str | None,
) -> None:
    imit, port = vendor
    async with provider(port) as p:
        result = await look_up(p, number)
    assert (result.reachability, result.roaming, result.visited_country) == (
        reachability,
        roaming,
        visited,
    )
    assert result.outcome is (
        Outcome.PARTIAL if reachability is Reachability.UNKNOWN else Outcome.OK
    )
    assert imit.refused == 0


async def test_the_network_errors_keep_their_map_codes(
    vendor: tuple[TyntecImitation, int],
) -> None:
    _, port = vendor
    async with provider(port) as p:
        codes = [(await p.lookup(n, "l1")).map_error for n in REFUSED]
    assert codes == [
        MapError.ABSENT_SUBSCRIBER,
        MapError.UNKNOWN_SUBSCRIBER,
        MapError.CALL_BARRED,
        MapError.SYSTEM_FAILURE,
    ]


async def test_porting_networks_and_zone_come_through(
    vendor: tuple[TyntecImitation, int],
) -> None:
    _, port = vendor
    async with provider(port) as p:
        ported, egypt, home = [await look_up(p, n) for n in (PORTED, EGYPT, AT_HOME)]
    assert (ported.ported, ported.subscription_network.mccmnc) == (True, "26003")
    assert ported.home_network.mccmnc == "26001"
    assert (home.ported, home.serving_msc, home.zone) == (False, "48601000100", Zone.DOMESTIC)
    assert (egypt.zone, egypt.serving_network.mccmnc) == (Zone.NON_EEA, "60201")


# -- credentials -------------------------------------------------------------------------


async def test_a_wrong_key_is_refused_once_and_fails_the_lookup(
    vendor: tuple[TyntecImitation, int],
) -> None:
    imit, port = vendor
    async with provider(port, key="not-the-key") as p:
        with pytest.raises(ProviderError) as err:
            await p.lookup(AT_HOME, "l1")
    assert err.value.outcome == "failed"
    assert "credentials (HTTP 401)" in str(err.value)
    assert (imit.requests, imit.refused) == (1, 1)  # an auth failure is not retried


async def test_a_missing_key_is_forbidden(vendor: tuple[TyntecImitation, int]) -> None:
    imit, port = vendor
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"http://127.0.0.1:{port}/nis/v1/gnv?msisdn=%2B{AT_HOME}") as resp,
    ):
        body = await resp.read()
        status = resp.status
    assert status == 403 and imit.refused == 1
    with pytest.raises(ProviderError, match=r"credentials \(HTTP 403\)"):
        Tyntec(DEMO_KEY).read(status, body, AT_HOME)


async def test_an_account_out_of_credit_fails_at_once(
    vendor: tuple[TyntecImitation, int],
) -> None:
    imit, port = vendor
    imit.faults.append("no_credit")
    async with provider(port) as p:
        with pytest.raises(ProviderError) as err:
            await p.lookup(AT_HOME, "l1")
    assert (err.value.outcome, imit.requests) == ("failed", 1)  # 402: never paid for twice
    assert "out of credit" in str(err.value) and "[PaymentRequired]" in str(err.value)


# -- throttling, failures, time ----------------------------------------------------------


async def test_throttling_and_server_errors_are_retried_to_an_answer(
    vendor: tuple[TyntecImitation, int],
) -> None:
    imit, port = vendor
    imit.retry_after = "0"
    imit.faults.extend(["throttle", "server_error"])
    async with provider(port) as p:
        result = await look_up(p, AT_HOME)
    assert result.reachability is Reachability.CONNECTED
    assert imit.requests == 3


@pytest.mark.parametrize(
    ("fault", "outcome"), [("throttle", "throttled"), ("server_error", "failed")]
)
async def test_retries_run_out(
    vendor: tuple[TyntecImitation, int], fault: str, outcome: str
) -> None:
    imit, port = vendor
    imit.retry_after = "0"
    imit.faults.extend([fault] * 3)
    async with provider(port, max_attempts=3) as p:
        with pytest.raises(ProviderError) as err:
            await p.lookup(AT_HOME, "l1")
    assert err.value.outcome == outcome
    assert imit.requests == 3


async def test_a_vendor_that_never_answers_times_the_lookup_out(
    vendor: tuple[TyntecImitation, int],
) -> None:
    imit, port = vendor
    imit.faults.append("hang")
    async with provider(port, request_timeout_s=0.2, max_attempts=1) as p:
        with pytest.raises(ProviderError) as err:
            await p.lookup(AT_HOME, "l1")
    assert err.value.outcome == "timeout"


@pytest.mark.parametrize("fault", ["malformed", "partial"])
async def test_a_body_that_is_not_an_answer_fails_the_lookup_cleanly(
    vendor: tuple[TyntecImitation, int], fault: str
) -> None:
    imit, port = vendor
    imit.faults.append(fault)
    async with provider(port) as p:
        with pytest.raises(ProviderError) as err:
            await p.lookup(AT_HOME, "l1")
        again = await look_up(p, AT_HOME)  # the provider still works
    assert err.value.outcome == "failed" and str(err.value).startswith("tyntec answered")
    assert again.reachability is Reachability.CONNECTED


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'"true"',
        b"null",
        b'{"msisdn":"+48600000001"}',
        b'{"msisdn":"+48600000001","presence":"yes","errorCode":"0"}',
        b'{"msisdn":"+48600000001","presence":1}',
        b'{"msisdn":48600000001,"presence":"true"}',
        b'{"requestId":"12-a","synchronous":false}',
        b"\xff\xfe",
    ],
)
def test_odd_bodies_fail_with_a_provider_error_only(body: bytes) -> None:
    with pytest.raises(ProviderError):
        Tyntec("k").read(200, body, AT_HOME)


def test_an_answer_about_another_number_is_not_taken() -> None:
    body = b'{"msisdn":"+48600000002","presence":"true","errorCode":"0"}'
    with pytest.raises(ProviderError, match="another number"):
        Tyntec("k").read(200, body, AT_HOME)


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (400, "refused the request (HTTP 400) [DataNotParseable]"),
        (404, "no such endpoint (HTTP 404): check base_url [NotFound]"),
        (418, "tyntec answered HTTP 418 [NotFound]"),
    ],
)
def test_problem_bodies_name_the_status_and_problem_type_never_the_detail(
    status: int, text: str
) -> None:
    name = "DataNotParseable" if status == 400 else "NotFound"
    problem = {
        "type": f"https://docs.tyntec.com/problems/{name}",
        "title": f"msisdn +{AT_HOME} rejected",
        "status": str(status),  # common/problem.yaml types it as a string
        "detail": f"+{AT_HOME} is not valid",
    }
    with pytest.raises(ProviderError) as err:
        Tyntec("k").read(status, json.dumps(problem).encode(), AT_HOME)
    assert str(err.value).endswith(text) and AT_HOME not in str(err.value)


def test_a_problem_type_that_is_not_a_plain_name_is_left_out() -> None:
    problem = {"type": f"https://x.example/p?n={AT_HOME}", "status": 400}
    with pytest.raises(ProviderError) as err:
        Tyntec("k").read(400, json.dumps(problem).encode(), AT_HOME)
    assert str(err.value) == "tyntec refused the request (HTTP 400)"


# -- answers built from tyntec's public field list ---------------------------------------

# docs/vendors/tyntec-gnv.md example 1: the `example` of every GnvResponse property in
# tyntec/api-collection verify/v1/hlrLookup.yaml.
SPEC_EXAMPLE: dict[str, Any] = {
    "requestId": "12-86cfafba-8677-f42b-5050-ece6af6abf01",
    "msisdn": "+491622943176",
    "ported": "false",
    "roaming": "false",
    "presence": "true",
    "price": 0.001,
    "currency": "EUR",
    "priceEffective": "2010-11-01T00:00:00+0000",
    "errorCode": "0",
    "nrhMCC": "262",
    "nrhMNC": "02",
    "nrhTtId": "15",
    "nrhOperator": "Vodafone",
    "nrhCountry": "DEU",
    "nrhTimeZone": "+0100",
    "nrhTechnology": "GSM",
    "imsiMCC": "262",
    "imsiMNC": "02",
    "imsiTtId": "15",
    "imsiOperator": "Vodafone",
    "imsiCountry": "DEU",
    "imsiTimeZone": "+0100",
    "imsiTechnology": "GSM",
    "hlrCC": "49",
    "hlrNDC": "162",
    "hlrMCC": "262",
    "hlrMNC": "02",
    "hlrTtId": "15",
    "hlrOperator": "Vodafone",
    "hlrCountry": "DEU",
    "hlrTimeZone": "+0100",
    "hlrTechnology": "GSM",
    "mscCC": "49",
    "mscNDC": "162",
    "mscMCC": "262",
    "mscMNC": "02",
    "mscTtId": "15",
    "mscOperator": "Vodafone",
    "mscCountry": "DEU",
    "mscTimeZone": "+0100",
    "mscTechnology": "GSM",
    "synchronous": True,
}
SPEC_NUMBER = "491622943176"


@pytest.mark.parametrize("number", [AT_HOME, EGYPT, PORTED, ABSENT, UNKNOWN_SUBSCRIBER, BARRED])
def test_the_imitation_answers_in_the_definitions_fields_and_types(
    demo: Scenario, number: str
) -> None:
    body = gnv_response(demo.answer(number))
    assert set(body) <= set(SPEC_EXAMPLE) | {"imsi", "hlr", "msc"}
    assert {k for k, v in body.items() if not isinstance(v, str)} == {"price", "synchronous"}
    assert {body["ported"], body["roaming"], body["presence"]} <= {"true", "false", "unknown"}


def _read(changes: dict[str, Any], drop: tuple[str, ...] = ()) -> HlrAnswer:
    body = {k: v for k, v in SPEC_EXAMPLE.items() if k not in drop}
    body.update(changes)
    return Tyntec("k").read(200, json.dumps(body).encode(), SPEC_NUMBER)


def test_the_definitions_example_is_a_subscriber_at_home() -> None:
    answer = _read({})
    assert answer == HlrAnswer(
        delivered=True,
        mccmnc="26202",
        serving_mccmnc="26202",
        home_mccmnc="26202",
        ported=False,
        message_id="12-86cfafba-8677-f42b-5050-ece6af6abf01",
        serving_country="DE",
    )
    result = seen_as(SPEC_NUMBER, answer)
    assert (result.outcome, result.reachability, result.roaming) == (
        Outcome.OK,
        Reachability.CONNECTED,
        RoamingStatus.NOT_ROAMING,
    )


def test_the_older_examples_spelling_and_numeric_ids_are_read_too() -> None:
    """The docs-center example (S4) writes `nrhTimezone` and `nrhTtId: 15`."""
    legacy = {k.replace("TimeZone", "Timezone"): v for k, v in SPEC_EXAMPLE.items()}
    legacy.update({"nrhTtId": 15, "imsiTtId": 15, "synchronous": "true"})
    answer = Tyntec("k").read(200, json.dumps(legacy).encode(), SPEC_NUMBER)
    assert (answer.delivered, answer.serving_country, answer.mccmnc) == (True, "DE", "26202")


@pytest.mark.parametrize(
    ("changes", "reachability"),
    [
        ({"presence": "false"}, Reachability.ABSENT),  # a string "false" is not truthy
        ({"presence": "unknown"}, Reachability.UNKNOWN),
        ({"presence": False}, Reachability.ABSENT),  # a JSON boolean taken as meant
        ({"presence": "false", "errorCode": "1b"}, Reachability.ABSENT),
        ({"presence": "false", "errorCode": "1"}, Reachability.INVALID),
        ({"presence": "unknown", "errorCode": "d"}, Reachability.RESTRICTED),
        ({"presence": "unknown", "errorCode": "b"}, Reachability.RESTRICTED),
        ({"presence": "true", "errorCode": "1B"}, Reachability.ABSENT),  # the network says
        ({"presence": "unknown", "errorCode": "22"}, Reachability.UNKNOWN),
        ({"presence": "true", "errorCode": "not-a-code"}, Reachability.UNKNOWN),
        ({"presence": "true", "errorCode": "ffffffff"}, Reachability.UNKNOWN),
        ({"presence": "true", "errorCode": 0}, Reachability.CONNECTED),
    ],
)
def test_presence_and_error_codes(changes: dict[str, Any], reachability: Reachability) -> None:
    answer = _read(changes)
    assert seen_as(SPEC_NUMBER, answer).reachability is reachability
    if reachability is not Reachability.CONNECTED:
        assert (answer.msc, answer.serving_country, answer.serving_mccmnc) == (None, None, None)


def test_an_answer_without_error_code_is_read_by_presence() -> None:
    assert _read({}, drop=("errorCode",)).delivered is True
    with pytest.raises(ProviderError, match="presence"):
        _read({}, drop=("errorCode", "presence"))


NO_MSC = ("mscCC", "mscNDC", "mscMCC", "mscMNC", "mscCountry")


@pytest.mark.parametrize(
    ("changes", "drop", "roaming", "visited"),
    [
        # The MSC's country decides; the flag only fills in when no MSC is named.
        ({"roaming": "true", "mscCountry": "AUT", "mscMCC": "232", "mscMNC": "01"}, (), "R", "AT"),
        ({"roaming": "true", "mscCountry": "JPN", "mscMCC": "440", "mscMNC": "10"}, (), "R", "JP"),
        ({"roaming": "true", "mscCountry": "jpn"}, ("mscMCC", "mscMNC"), "R", "JP"),
        ({"roaming": "false"}, NO_MSC, "N", None),
        ({"roaming": False}, NO_MSC, "N", None),
        ({"roaming": "unknown"}, NO_MSC, "U", None),
        ({"roaming": "true"}, NO_MSC, "U", None),  # where: not said
        ({"roaming": "true", "msc": "201000000100"}, NO_MSC, "R", "EG"),  # a global title
        ({"roaming": "true", "msc": "*****"}, NO_MSC, "U", None),
    ],
)
def test_roaming_is_the_serving_msc_country(
    changes: dict[str, Any], drop: tuple[str, ...], roaming: str, visited: str | None
) -> None:
    result = seen_as(SPEC_NUMBER, _read(changes, drop))
    assert (result.roaming.value[0], result.visited_country) == (roaming, visited)


def test_the_imsi_is_kept_only_when_it_is_digits() -> None:
    assert _read({"imsi": "262021234567890"}).imsi == "262021234567890"
    assert _read({"imsi": "26202*********"}).imsi is None


def test_a_range_holder_that_disagrees_with_tyntecs_porting_verdict_is_left_out() -> None:
    """An MVNO's numbers on its host's IMSIs: not ported, whatever the MNCs say."""
    mvno = _read({"imsiMNC": "07", "ported": "false"})
    assert (mvno.home_mccmnc, seen_as(SPEC_NUMBER, mvno).ported) == (None, False)
    ported = _read({"imsiMNC": "07", "ported": "true"})
    assert (ported.home_mccmnc, seen_as(SPEC_NUMBER, ported).ported) == ("26202", True)
    unsure = _read({"ported": "unknown"})
    assert seen_as(SPEC_NUMBER, unsure).ported is False  # nrh and imsi agree


def test_alpha3_countries_become_alpha2() -> None:
    assert [alpha2(c) for c in ("DEU", "pol", "EGY", "XKX", "GBR", "USA")] == [
        "DE",
        "PL",
        "EG",
        "XK",
        "GB",
        "US",
    ]
    assert [alpha2(c) for c in ("", "DE", "XXX", None, 276)] == [None] * 5


# -- what reaches the log ----------------------------------------------------------------


async def test_the_key_and_the_number_never_reach_the_log_or_an_error(
    vendor: tuple[TyntecImitation, int],
) -> None:
    """Every failure path: a log shipped to a SIEM, or an error shown to a dialer,
    must not hand out the account or the subscriber."""
    imit, port = vendor
    imit.retry_after = "0"
    out = io.StringIO()
    configure_logging("json", "DEBUG", out, cache=False)
    errors: list[str] = []
    try:
        for key, faults in [
            ("wrong-" + DEMO_KEY, []),
            (DEMO_KEY, ["no_credit"]),
            (DEMO_KEY, ["throttle"] * 3),
            (DEMO_KEY, ["server_error"] * 3),
            (DEMO_KEY, ["malformed"]),
            (DEMO_KEY, ["partial"]),
        ]:
            imit.faults.extend(faults)
            async with provider(port, key=key) as p:
                with pytest.raises(ProviderError) as err:
                    await p.lookup(AT_HOME, "l1")
                errors.append(str(err.value))
        async with provider(port) as p:
            answered = await p.lookup(GERMANY, "l2")
        flush_logs()
    finally:
        structlog.reset_defaults()
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
    assert answered.delivered is True and len(errors) == 6
    text = out.getvalue() + "\n".join(errors)
    for secret in (DEMO_KEY, AT_HOME, GERMANY, "260010000000002"):
        assert secret not in text
