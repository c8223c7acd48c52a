"""CAMARA adapter: two APIs asked in parallel, a shared OAuth2 token, and what the
operator's answers mean, against the imitation in simulator/vendors/camara.py."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

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
from hlrd.upstream.http.camara import (
    REACHABILITY,
    ROAMING,
    Camara,
    NotACustomer,
    answer_of,
    read_answer,
    read_reachability,
    read_roaming,
)
from hlrd.upstream.http.client import HttpAnswer
from hlrd.upstream.http.oauth2 import ClientCredentials
from hlrd.upstream.http.provider import HttpProvider, Request
from simulator.scenario import Scenario
from simulator.vendors.camara import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, CamaraImitation

from .vendor_harness import (
    ABSENT,
    AT_HOME,
    BARRED,
    EGYPT,
    GERMANY,
    NOT_PROVISIONED,
    SYSTEM_FAILURE,
    UNKNOWN_SUBSCRIBER,
    seen,
    serving,
    started,
)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class Clock:
    """Time that moves only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Vendor:
    """The running imitation and where to reach it."""

    def __init__(self, imitation: CamaraImitation, port: int) -> None:
        self.imitation = imitation
        self.base_url = f"http://127.0.0.1:{port}/camara"


@pytest.fixture
async def vendor(demo: Scenario) -> AsyncIterator[Vendor]:
    imitation = CamaraImitation(demo)
    async with _serving(imitation) as v:
        yield v


@asynccontextmanager
async def _serving(imitation: CamaraImitation) -> AsyncIterator[Vendor]:
    async with serving(imitation) as port:
        yield Vendor(imitation, port)


def _cfg(vendor: Vendor, **changes: Any) -> HttpProviderConfig:
    fields: dict[str, Any] = {
        "name": "camara",
        "type": "camara",
        "base_url": vendor.base_url,
        "api_key": DEMO_CLIENT_ID,
        "api_secret": DEMO_CLIENT_SECRET,
        "scope": "device-roaming-status:read device-reachability-status:read",
        "tps": 1000,
        "request_timeout_s": 2,
    }
    fields.update(changes)
    return HttpProviderConfig(**fields)


@asynccontextmanager
async def camara(
    vendor: Vendor, clock: Clock | None = None, **changes: Any
) -> AsyncIterator[tuple[HttpProvider, Camara]]:
    cfg = _cfg(vendor, **changes)
    adapter = Camara(cfg, clock=clock or Clock())
    provider = HttpProvider(cfg, adapter)
    async with started(provider):
        yield provider, adapter


def _result(number: str, answer: HlrAnswer) -> LookupResult:
    return seen(number, answer, "camara")


async def _failure(provider: HttpProvider, number: str) -> ProviderError:
    with pytest.raises(ProviderError) as err:
        await provider.lookup(number, "l1")
    assert number not in str(err.value)
    return err.value


# -- every answer family, through the imitation --------------------------------------


async def test_each_scenario_status_becomes_hlrds_answer(vendor: Vendor) -> None:
    async with camara(vendor) as (provider, _):
        answers = {n: await provider.lookup(n, "l1") for n in (AT_HOME, GERMANY, EGYPT, ABSENT)}
        home, germany, egypt, absent = (_result(n, a) for n, a in answers.items())
        barred = _result(BARRED, await provider.lookup(BARRED, "l2"))
        data_only = _result(NOT_PROVISIONED, await provider.lookup(NOT_PROVISIONED, "l3"))
    assert (home.outcome, home.reachability, home.roaming) == (
        Outcome.OK,
        Reachability.CONNECTED,
        RoamingStatus.NOT_ROAMING,
    )
    assert (germany.roaming, germany.visited_country) == (RoamingStatus.ROAMING, "DE")
    assert (egypt.roaming, egypt.visited_country) == (RoamingStatus.ROAMING, "EG")
    assert germany.reachability is egypt.reachability is Reachability.CONNECTED
    # Not attached: reachability says absent, and where it was last is not told.
    assert (absent.outcome, absent.reachability, absent.roaming) == (
        Outcome.OK,
        Reachability.ABSENT,
        RoamingStatus.UNKNOWN,
    )
    assert answers[ABSENT].map_error == MapError.ABSENT_SUBSCRIBER
    # CAMARA cannot see barring or a missing SMS teleservice: attached is reachable.
    assert barred.reachability is data_only.reachability is Reachability.CONNECTED
    # Nothing CAMARA does not tell is made up.
    for a in answers.values():
        assert (a.imsi, a.msc, a.mccmnc, a.serving_mccmnc, a.ported) == (None,) * 5
    assert vendor.imitation.refused == 0


async def test_a_number_the_operator_does_not_serve_fails_for_the_next_provider(
    vendor: Vendor,
) -> None:
    """404 IDENTIFIER_NOT_FOUND: another operator's customer, not an invalid number."""
    async with camara(vendor) as (provider, _):
        error = await _failure(provider, UNKNOWN_SUBSCRIBER)
    assert isinstance(error, NotACustomer) and error.outcome == "failed"
    assert "not a customer of this operator" in str(error)
    assert "IDENTIFIER_NOT_FOUND" in str(error)


async def test_the_operator_saying_not_a_customer_decides_over_other_failures(
    vendor: Vendor,
) -> None:
    """One call disowns the number, the other fails otherwise: the lookup fails as
    "not a customer", which is what tells the next provider is worth asking."""
    vendor.imitation.faults["roaming"].append("server_error")
    async with camara(vendor, max_attempts=1) as (provider, _):
        error = await _failure(provider, UNKNOWN_SUBSCRIBER)
    assert isinstance(error, NotACustomer)


async def test_an_operator_failure_is_retried_then_fails_the_lookup(vendor: Vendor) -> None:
    async with camara(vendor, max_attempts=2) as (provider, _):
        error = await _failure(provider, SYSTEM_FAILURE)
    assert error.outcome == "failed" and "HTTP 503" in str(error)
    assert vendor.imitation.requests == {"roaming": 2, "reachability": 2}


# -- the two calls -------------------------------------------------------------------


async def test_the_two_apis_are_asked_at_the_same_time(vendor: Vendor) -> None:
    """The imitation holds each request until the other API has been asked: one after
    the other, the first would never be answered and the lookup would time out."""
    vendor.imitation.hold_until_both = True
    async with camara(vendor, max_attempts=1) as (provider, _):
        result = _result(GERMANY, await provider.lookup(GERMANY, "l1"))
    assert (result.outcome, result.visited_country) == (Outcome.OK, "DE")
    assert vendor.imitation.requests == {"roaming": 1, "reachability": 1}


async def test_each_call_carries_its_own_correlator_never_the_lookup_id(vendor: Vendor) -> None:
    async with camara(vendor) as (provider, _):
        await provider.lookup(AT_HOME, "lookup-" + AT_HOME)
    sent = vendor.imitation.correlators
    assert len(sent) == 2 and len(set(sent)) == 2
    assert all(UUID.match(c) for c in sent)


@pytest.mark.parametrize("failing", ["roaming", "reachability"])
async def test_one_api_failing_leaves_a_partial_answer(vendor: Vendor, failing: str) -> None:
    vendor.imitation.faults[failing].append("server_error")
    async with camara(vendor, max_attempts=1) as (provider, _):
        answer = await provider.lookup(GERMANY, "l1")
    result = _result(GERMANY, answer)
    assert result.outcome is Outcome.PARTIAL
    if failing == "reachability":
        assert answer.delivered is None
        assert (result.reachability, result.visited_country) == (Reachability.UNKNOWN, "DE")
    else:
        assert answer.delivered is True and answer.serving_country is None
        assert (result.reachability, result.roaming) == (
            Reachability.CONNECTED,
            RoamingStatus.UNKNOWN,
        )


async def test_a_service_not_applicable_to_one_api_is_a_partial_answer(vendor: Vendor) -> None:
    vendor.imitation.faults["roaming"].append("not_applicable")
    async with camara(vendor) as (provider, _):
        answer = await provider.lookup(AT_HOME, "l1")
    assert (answer.delivered, answer.serving_country) == (True, None)
    assert vendor.imitation.requests["roaming"] == 1  # a 422 is not retried


# -- the token -----------------------------------------------------------------------


async def test_one_token_serves_many_lookups_asked_at_once(vendor: Vendor) -> None:
    async with camara(vendor) as (provider, adapter):
        numbers = [AT_HOME, GERMANY, EGYPT, ABSENT] * 5
        answers = await asyncio.gather(*(provider.lookup(n, "l") for n in numbers))
    assert len(answers) == 20
    assert vendor.imitation.tokens_issued == 1 and adapter.tokens.fetches == 1
    assert vendor.imitation.token_requests == 1
    assert vendor.imitation.scopes == ["device-roaming-status:read device-reachability-status:read"]


async def test_the_token_is_renewed_before_it_expires(vendor: Vendor) -> None:
    """By the adapter's own clock, before the operator would refuse it (no 401)."""
    clock = Clock()
    async with camara(vendor, clock) as (provider, adapter):
        await provider.lookup(AT_HOME, "l1")
        clock.now += 3600 - 29  # within the 30 s margin of expires_in 3600
        await provider.lookup(AT_HOME, "l2")
        await provider.lookup(AT_HOME, "l3")
        assert adapter.tokens.fetches == 2
        clock.now += 1000  # still young: kept
        await provider.lookup(AT_HOME, "l4")
    assert vendor.imitation.tokens_issued == 2 and vendor.imitation.refused == 0


async def test_a_token_the_operator_revoked_is_fetched_again_once(vendor: Vendor) -> None:
    """Both calls are refused with 401; they share one new token, and succeed."""
    async with camara(vendor) as (provider, adapter):
        await provider.lookup(AT_HOME, "l1")
        vendor.imitation.revoke_tokens()
        result = _result(GERMANY, await provider.lookup(GERMANY, "l2"))
        vendor.imitation.expire_tokens()
        again = _result(AT_HOME, await provider.lookup(AT_HOME, "l3"))
    assert result.visited_country == "DE" and again.outcome is Outcome.OK
    assert vendor.imitation.refused == 4  # two calls, twice
    assert vendor.imitation.tokens_issued == 3 and adapter.tokens.fetches == 3


async def test_an_api_that_refuses_every_token_fails_after_one_new_one(demo: Scenario) -> None:
    imitation = CamaraImitation(demo, token_ttl_s=0)  # born expired
    async with _serving(imitation) as v, camara(v) as (provider, _):
        error = await _failure(provider, AT_HOME)
    assert error.outcome == "failed" and "refused the access token" in str(error)
    assert imitation.tokens_issued == 2  # the first, and one shared new one
    assert imitation.refused == 4


async def test_a_wrong_client_secret_is_refused_once_and_fails_the_lookup(vendor: Vendor) -> None:
    async with camara(vendor, api_secret="not-the-secret") as (provider, _):
        error = await _failure(provider, AT_HOME)
    assert error.outcome == "failed" and "client credentials" in str(error)
    assert "not-the-secret" not in str(error)
    assert vendor.imitation.tokens_refused == 1  # one fetch for both calls, not retried
    assert vendor.imitation.requests == {"roaming": 0, "reachability": 0}


async def test_a_throttled_token_endpoint_is_retried(vendor: Vendor) -> None:
    vendor.imitation.retry_after = "0"
    vendor.imitation.token_faults.append("throttle")
    async with camara(vendor) as (provider, _):
        answer = await provider.lookup(AT_HOME, "l1")
    assert answer.delivered is True and vendor.imitation.token_requests == 2


async def test_a_token_endpoint_that_never_answers_times_the_lookup_out(vendor: Vendor) -> None:
    vendor.imitation.token_faults.append("hang")
    async with camara(vendor, request_timeout_s=0.2, max_attempts=1) as (provider, _):
        error = await _failure(provider, AT_HOME)
    assert error.outcome == "timeout"


async def test_a_private_key_jwt_client_is_taken(demo: Scenario) -> None:
    """The CAMARA profile's client authentication: an assertion signed by the client's
    key, for the token endpoint's URL; a key the operator does not know is refused."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    other = ec.generate_private_key(ec.SECP256R1())
    other_pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    imitation = CamaraImitation(demo, client_public_key=public)
    async with _serving(imitation) as v:
        async with camara(v, api_secret="", private_key=pem) as (provider, _):
            answer = await provider.lookup(AT_HOME, "l1")
        async with camara(v, api_secret="", private_key=other_pem) as (provider, _):
            error = await _failure(provider, AT_HOME)
    assert answer.delivered is True
    assert "client credentials" in str(error) and imitation.tokens_refused == 1


def test_a_private_key_that_is_not_one_is_refused_at_start(vendor: Vendor) -> None:
    with pytest.raises(ValueError, match="not a PEM private key") as err:
        Camara(_cfg(vendor, private_key="-----BEGIN PRIVATE KEY-----\nnope\n"))
    assert "nope" not in str(err.value)


# -- the failures a real provider has ------------------------------------------------


async def test_throttling_and_server_errors_are_retried_to_an_answer(vendor: Vendor) -> None:
    vendor.imitation.retry_after = "0"
    vendor.imitation.add_faults("throttle", "server_error")
    async with camara(vendor) as (provider, _):
        result = _result(EGYPT, await provider.lookup(EGYPT, "l1"))
    assert (result.outcome, result.visited_country) == (Outcome.OK, "EG")
    assert vendor.imitation.requests == {"roaming": 3, "reachability": 3}


async def test_throttling_to_the_end_is_a_throttled_lookup(vendor: Vendor) -> None:
    """TOO_MANY_REQUESTS is a rate: retried by the client, then throttled."""
    vendor.imitation.retry_after = "0"
    vendor.imitation.add_faults(*["throttle"] * 3)
    async with camara(vendor, max_attempts=3) as (provider, _):
        error = await _failure(provider, AT_HOME)
    assert error.outcome == "throttled"
    assert vendor.imitation.requests == {"roaming": 3, "reachability": 3}


async def test_a_quota_used_up_is_throttled_at_once_without_retries(vendor: Vendor) -> None:
    """QUOTA_EXCEEDED is a 429 too, but a quota does not come back in seconds:
    retrying would only spend requests the operator counts."""
    vendor.imitation.retry_after = "0"
    vendor.imitation.add_faults(*["quota"] * 3)
    async with camara(vendor, max_attempts=3) as (provider, _):
        error = await _failure(provider, AT_HOME)
    assert error.outcome == "throttled" and "QUOTA_EXCEEDED" in str(error)
    assert vendor.imitation.requests == {"roaming": 1, "reachability": 1}


async def test_a_vendor_that_never_answers_times_the_lookup_out(vendor: Vendor) -> None:
    vendor.imitation.add_faults("hang")
    async with camara(vendor, request_timeout_s=0.2, max_attempts=1) as (provider, _):
        error = await _failure(provider, AT_HOME)
    assert error.outcome == "timeout"


@pytest.mark.parametrize("fault", ["malformed", "partial", "other_number", "wrong_correlator"])
async def test_a_body_that_is_not_our_answer_fails_the_lookup_cleanly(
    vendor: Vendor, fault: str
) -> None:
    vendor.imitation.add_faults(fault)
    async with camara(vendor) as (provider, _):
        error = await _failure(provider, AT_HOME)
        again = await provider.lookup(AT_HOME, "l2")  # the provider still works
    assert error.outcome == "failed" and str(error).startswith("camara")
    expected = {
        "malformed": "not JSON",
        "partial": "without reachable",
        "other_number": "another number",
        "wrong_correlator": "another request",
    }[fault]
    assert expected in str(error)
    assert again.delivered is True


async def test_an_answer_to_another_request_in_one_api_leaves_the_other(vendor: Vendor) -> None:
    vendor.imitation.faults["reachability"].append("wrong_correlator")
    async with camara(vendor) as (provider, _):
        answer = await provider.lookup(GERMANY, "l1")
    assert (answer.delivered, answer.serving_country) == (None, "DE")


async def test_a_correlator_the_operator_refuses_fails_the_lookup(vendor: Vendor) -> None:
    cfg = _cfg(vendor)
    provider = HttpProvider(cfg, Camara(cfg, correlator=lambda: "not a valid one"))
    await provider.start()
    try:
        error = await _failure(provider, AT_HOME)
    finally:
        await provider.stop()
    assert "refused the request as invalid (HTTP 400 INVALID_ARGUMENT)" in str(error)


# -- the spec's own bodies -----------------------------------------------------------

# Verbatim examples of device-roaming-status.yaml / device-reachability-status.yaml
# (camaraproject r1.2, v1.1.0).
SPEC_ROAMING = {
    b'{"lastStatusTime": "2024-02-20T10:41:38.657Z", "roaming": false}': (False, None),
    b'{"lastStatusTime": "2024-02-20T10:41:38.657Z", "roaming": true, "countryCode": 262,'
    b' "countryName": ["DE"]}': (True, "DE"),
    b'{"device": {"phoneNumber": "+123456789"}, "lastStatusTime": "2024-02-20T10:41:38.657Z",'
    b' "roaming": true, "countryCode": 262, "countryName": ["DE"]}': (True, "DE"),
    b'{"lastStatusTime": "2024-02-20T10:41:38.657Z", "roaming": true, "countryCode": 901,'
    b' "countryName": []}': (True, None),
    b'{"lastStatusTime": "2024-02-20T10:41:38.657Z", "roaming": true, "countryCode": 340,'
    b' "countryName": ["BL", "GF", "GP", "MF", "MQ"]}': (True, None),
}
SPEC_REACHABILITY = {
    b'{"lastStatusTime": "2024-02-20T10:41:38.657Z", "reachable": true,'
    b' "connectivity": ["SMS"]}': True,
    b'{"device": {"phoneNumber": "+123456789"}, "lastStatusTime": "2024-02-20T10:41:38.657Z",'
    b' "reachable": true, "connectivity": ["SMS"]}': True,
    b'{"lastStatusTime": "2024-02-20T10:41:38.657Z", "reachable": true,'
    b' "connectivity": ["DATA"]}': True,
    b'{"lastStatusTime": "2024-02-20T10:41:38.657Z", "reachable": true,'
    b' "connectivity": ["DATA", "SMS"]}': True,
    b'{"lastStatusTime": "2024-02-20T10:41:38.657Z", "reachable": false}': False,
}
SPEC_NUMBER = "123456789"


@pytest.mark.parametrize(("body", "expected"), SPEC_ROAMING.items())
def test_the_specs_roaming_examples(body: bytes, expected: tuple[bool, str | None]) -> None:
    r = read_answer(ROAMING, 200, body, SPEC_NUMBER, read_roaming)
    assert (r.roaming, r.country) == expected


@pytest.mark.parametrize(("body", "expected"), SPEC_REACHABILITY.items())
def test_the_specs_reachability_examples(body: bytes, expected: bool) -> None:
    r = read_answer(REACHABILITY, 200, body, SPEC_NUMBER, read_reachability)
    assert r.reachable is expected


def test_a_visited_country_only_told_by_its_mcc_is_taken_from_it() -> None:
    body = b'{"lastStatusTime": "2024-02-20T10:41:38.657Z", "roaming": true, "countryCode": 602}'
    assert read_answer(ROAMING, 200, body, SPEC_NUMBER, read_roaming).country == "EG"


def test_the_answers_combine_into_hlrds() -> None:
    from hlrd.upstream.http.camara import Reachability as Reach
    from hlrd.upstream.http.camara import Roaming

    assert answer_of(AT_HOME, Roaming(False, None), Reach(True)).serving_country == "PL"
    assert answer_of(AT_HOME, Roaming(True, "DE"), Reach(True)).serving_country == "DE"
    assert answer_of(AT_HOME, Roaming(True, "DE"), None).serving_country == "DE"
    absent = answer_of(AT_HOME, Roaming(True, "DE"), Reach(False))
    assert (absent.delivered, absent.map_error, absent.serving_country) == (
        False,
        MapError.ABSENT_SUBSCRIBER,
        None,
    )
    assert answer_of(AT_HOME, None, Reach(True)).serving_country is None
    roaming_somewhere = _result(AT_HOME, answer_of(AT_HOME, Roaming(True, None), Reach(True)))
    assert (roaming_somewhere.outcome, roaming_somewhere.roaming) == (
        Outcome.PARTIAL,
        RoamingStatus.UNKNOWN,
    )


# Verbatim ErrorInfo examples of the v1.1 specs -> what the lookup's error says.
SPEC_ERRORS = [
    (400, "INVALID_ARGUMENT", "Client specified an invalid argument, request body or query param."),
    (401, "UNAUTHENTICATED", "Request not authenticated due to missing, invalid, or expired"),
    (403, "PERMISSION_DENIED", "Client does not have sufficient permissions to perform this."),
    (404, "NOT_FOUND", "The specified resource is not found."),
    (404, "IDENTIFIER_NOT_FOUND", "The phone number provided is not associated with a customer"),
    (422, "SERVICE_NOT_APPLICABLE", "The service is not available for the provided identifier."),
    (422, "MISSING_IDENTIFIER", "The device cannot be identified."),
    (422, "UNSUPPORTED_IDENTIFIER", "The identifier provided is not supported."),
    (422, "UNNECESSARY_IDENTIFIER", "The device is already identified by the access token."),
    (429, "QUOTA_EXCEEDED", "Out of resource quota."),
    (429, "TOO_MANY_REQUESTS", "Rate limit reached."),
    (503, "UNAVAILABLE", "Network issue"),
]


@pytest.mark.parametrize(("status", "code", "message"), SPEC_ERRORS)
def test_each_error_of_the_spec_fails_naming_its_code(status: int, code: str, message: str) -> None:
    body = f'{{"status": {status}, "code": "{code}", "message": "{message} +{AT_HOME}"}}'
    with pytest.raises(ProviderError) as err:
        read_answer(ROAMING, status, body.encode(), AT_HOME, read_roaming)
    text = str(err.value)
    assert f"HTTP {status} {code}" in text and text.startswith("camara device-roaming-status")
    assert AT_HOME not in text and message not in text  # the free text is never quoted
    assert isinstance(err.value, NotACustomer) == (code == "IDENTIFIER_NOT_FOUND")


def test_an_unknown_error_code_is_not_quoted() -> None:
    body = f'{{"status": 418, "code": "X{AT_HOME}", "message": "?"}}'.encode()
    with pytest.raises(ProviderError) as err:
        read_answer(ROAMING, 418, body, AT_HOME, read_roaming)
    assert str(err.value) == "camara device-roaming-status answered HTTP 418"


@pytest.mark.parametrize(
    "body",
    [
        b'{"reachabilityStatus": "CONNECTED_DATA"}',  # the pre-v1 DeviceStatus shape
        b'{"reachable": "true"}',
        b'{"reachable": true, "connectivity": "DATA"}',
        b'{"reachable": true, "lastStatusTime": 1708425698}',
        b'[{"reachable": true}]',
        b'{"device": {"phoneNumber": "+48600000002"}, "reachable": true}',
        b'{"device": {"ipv4Address": {"publicAddress": "84.125.93.10"}}, "reachable": true}',
    ],
)
def test_a_reachability_body_that_is_not_v1_1_about_us_is_refused(body: bytes) -> None:
    with pytest.raises(ProviderError):
        read_answer(REACHABILITY, 200, body, AT_HOME, read_reachability)


@pytest.mark.parametrize(
    "body",
    [
        b'{"roaming": "yes"}',
        b'{"roaming": true, "countryCode": "262"}',
        b'{"roaming": true, "countryName": "DE"}',
        b'{"roaming": true, "countryCode": true}',
    ],
)
def test_a_roaming_body_that_is_not_v1_1_is_refused(body: bytes) -> None:
    with pytest.raises(ProviderError, match=r"v1\.1"):
        read_answer(ROAMING, 200, body, AT_HOME, read_roaming)


# -- secrets and numbers -------------------------------------------------------------


async def test_no_secret_token_or_number_reaches_the_log_or_an_error(vendor: Vendor) -> None:
    """Start, a partial answer (logged), a refused secret, a refused token: the client
    secret, the access tokens and the number appear nowhere."""
    out = io.StringIO()
    configure_logging("json", "DEBUG", out, cache=False)
    errors: list[str] = []
    try:
        vendor.imitation.faults["roaming"].append("server_error")
        async with camara(vendor, max_attempts=1) as (provider, _):
            partial = await provider.lookup(GERMANY, "l1")
            vendor.imitation.revoke_tokens()
            await provider.lookup(GERMANY, "l2")
        async with camara(vendor, api_secret="wrong-" + DEMO_CLIENT_SECRET) as (provider, _):
            errors.append(str(await _failure(provider, GERMANY)))
        vendor.imitation.add_faults("other_number", "other_number")
        async with camara(vendor) as (provider, _):
            errors.append(str(await _failure(provider, GERMANY)))
        flush_logs()
    finally:
        structlog.reset_defaults()
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
    text = out.getvalue() + "\n".join(errors)
    assert partial.delivered is True
    assert "upstream.camara_partial" in text  # the partial answer was logged
    assert vendor.imitation.tokens_issued >= 3
    for secret in (
        DEMO_CLIENT_SECRET,
        "wrong-" + DEMO_CLIENT_SECRET,
        GERMANY,
        *vendor.imitation.issued,
    ):
        assert secret not in text


# -- the token endpoint's answers, without a network ----------------------------------


class TokenEndpoint:
    """An exchange that answers every request with one token endpoint answer."""

    def __init__(self, status: int, body: bytes) -> None:
        self.answer = HttpAnswer(status, {}, body, 1)
        self.seen: list[Request] = []

    async def __call__(self, request: Request) -> HttpAnswer:
        self.seen.append(request)
        return self.answer


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [
        (401, b"", "refused the client credentials (HTTP 401)"),
        (400, b'{"error": "invalid_client"}', "refused the client credentials (invalid_client)"),
        (400, b'{"error": "invalid_scope"}', "HTTP 400 (invalid_scope): check scope"),
        (400, b'{"error": ["x"]}', "answered HTTP 400"),
        (400, b'{"error": "secret-in-here"}', "answered HTTP 400"),
        (200, b"not json", "not a token"),
        (200, b'{"token_type": "Bearer"}', "without a usable access_token"),
        (200, b'{"access_token": "a b", "token_type": "Bearer"}', "without a usable"),
        (200, b'{"access_token": "abc", "token_type": "DPoP"}', "not Bearer"),
    ],
)
async def test_a_token_answer_that_is_not_a_bearer_token_fails(
    status: int, body: bytes, says: str
) -> None:
    tokens = ClientCredentials("https://op.example/token", "id", "s3cret", vendor="camara")
    with pytest.raises(ProviderError) as err:
        await tokens.token(TokenEndpoint(status, body))
    assert says in str(err.value) and err.value.outcome == "failed"
    assert "s3cret" not in str(err.value) and "secret-in-here" not in str(err.value)


async def test_the_token_request_is_rfc_6749_client_credentials() -> None:
    """Basic over the form-encoded id and secret (2.3.1), the scope in the form; and
    expires_in as a string of digits is read, not ignored."""
    clock = Clock()
    tokens = ClientCredentials(
        "https://op.example/token", "id:1", "s é", scope="a:read b:read", clock=clock
    )
    endpoint = TokenEndpoint(
        200, b'{"access_token": "t-1", "token_type": "bearer", "expires_in": "120"}'
    )
    assert await tokens.token(endpoint) == "t-1"
    (sent,) = endpoint.seen
    assert (sent.method, sent.path) == ("POST", "https://op.example/token")
    assert sent.body == b"grant_type=client_credentials&scope=a%3Aread+b%3Aread"
    headers = sent.headers()
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"id%3A1:s+%C3%A9").decode()
    clock.now += 89  # 120 s, renewed 30 s early
    await tokens.token(endpoint)
    assert len(endpoint.seen) == 1
    clock.now += 1
    await tokens.token(endpoint)
    assert len(endpoint.seen) == 2


async def test_a_refused_token_is_dropped_only_while_it_is_the_current_one() -> None:
    tokens = ClientCredentials("https://op.example/token", "id", "s")
    endpoint = TokenEndpoint(200, b'{"access_token": "t", "token_type": "Bearer"}')
    await tokens.token(endpoint)
    tokens.refused("an-older-one")
    await tokens.token(endpoint)
    assert tokens.fetches == 1
    tokens.refused("t")
    await tokens.token(endpoint)
    assert tokens.fetches == 2
