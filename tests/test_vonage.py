"""Vonage Identity Insights adapter: the application JWT as Vonage checks it, and each
insight's status code read on its own."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import io
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hlrd.config import HttpProviderConfig
from hlrd.domain.derive import derive
from hlrd.domain.map_errors import MapError
from hlrd.domain.numbers import Msisdn
from hlrd.domain.result import (
    HlrAnswer,
    LookupResult,
    Outcome,
    Reachability,
    RoamingStatus,
    Timings,
)
from hlrd.logging_setup import configure_logging, flush_logs
from hlrd.upstream.base import ProviderError
from hlrd.upstream.http.provider import HttpProvider
from hlrd.upstream.http.vonage import (
    INSIGHTS,
    PATH,
    TOKEN_RENEW_S,
    TOKEN_TTL_S,
    AppToken,
    Vonage,
)
from simulator.scenario import Scenario
from simulator.vendors.vonage import (
    DEMO_APPLICATION_ID,
    DEMO_PRIVATE_KEY,
    VonageImitation,
    public_key_of,
)

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

T0 = 1_790_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def other_key() -> str:
    """An RSA key that is not the application's."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@dataclass
class Running:
    imitation: VonageImitation
    base_url: str
    clock: Clock


@pytest.fixture
async def vendor(demo: Scenario) -> AsyncIterator[Running]:
    clock = Clock()
    imitation = VonageImitation(demo, clock=clock)
    async with serving(imitation) as port:
        yield Running(imitation, f"http://127.0.0.1:{port}", clock)


@asynccontextmanager
async def provider_for(
    running: Running, adapter: Vonage | None = None, **changes: Any
) -> AsyncIterator[HttpProvider]:
    settings: dict[str, Any] = {"tps": 1000, "request_timeout_s": 2.0, **changes}
    cfg = HttpProviderConfig(
        name="vonage",
        type="vonage",
        base_url=running.base_url,
        api_key=DEMO_APPLICATION_ID,
        private_key=DEMO_PRIVATE_KEY,
        **settings,
    )
    provider = HttpProvider(
        cfg, adapter or Vonage(cfg.api_key, cfg.private_key, clock=running.clock)
    )
    async with started(provider):
        yield provider


def _derive(number: str, answer: HlrAnswer) -> LookupResult:
    return seen(number, answer, "vonage")


async def _look_up(provider: HttpProvider, number: str) -> LookupResult:
    return _derive(number, await provider.lookup(number, "l1"))


# -- the application JWT ----------------------------------------------------------------


def test_the_token_is_rs256_with_the_claims_vonage_sdks_set() -> None:
    token = AppToken(DEMO_APPLICATION_ID, DEMO_PRIVATE_KEY, Clock()).bearer()
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT"}
    claims = jwt.decode(
        token,
        public_key_of(DEMO_PRIVATE_KEY),
        algorithms=["RS256"],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert set(claims) == {"application_id", "iat", "jti", "exp"}
    assert claims["application_id"] == DEMO_APPLICATION_ID
    assert (claims["iat"], claims["exp"]) == (int(T0), int(T0) + TOKEN_TTL_S)
    assert uuid.UUID(claims["jti"]).version == 4


def test_one_token_serves_until_shortly_before_it_expires() -> None:
    clock = Clock()
    token = AppToken(DEMO_APPLICATION_ID, DEMO_PRIVATE_KEY, clock)
    first = token.bearer()
    clock.now = T0 + TOKEN_TTL_S - TOKEN_RENEW_S - 1
    assert token.bearer() == first
    clock.now = T0 + TOKEN_TTL_S - TOKEN_RENEW_S
    renewed = token.bearer()
    assert renewed != first
    assert jwt.decode(renewed, options={"verify_signature": False})["exp"] == int(
        clock.now + TOKEN_TTL_S
    )


def test_the_request_asks_the_documented_shape() -> None:
    request = Vonage(DEMO_APPLICATION_ID, DEMO_PRIVATE_KEY, clock=Clock()).request(AT_HOME, "l1")
    assert (request.method, request.path) == ("POST", PATH)
    assert isinstance(request.body, bytes) and json.loads(request.body) == {
        "phone_number": "+48600000001",
        "purpose": "FraudPreventionAndDetection",
        "insights": {
            "format": {},
            "original_carrier": {},
            "current_carrier": {},
            "roaming": {},
            "reachability": {},
        },
    }
    headers = request.headers()
    assert headers["Content-Type"] == "application/json"
    assert headers["Authorization"].startswith("Bearer ey")


async def test_lookups_share_a_token_until_it_is_renewed(vendor: Running) -> None:
    async with provider_for(vendor) as provider:
        await provider.lookup(AT_HOME, "l1")
        await provider.lookup(EGYPT, "l2")
        vendor.clock.now += TOKEN_TTL_S - TOKEN_RENEW_S
        await provider.lookup(AT_HOME, "l3")
    first, second, third = vendor.imitation.token_ids
    assert first == second != third


# -- what each answer means -------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "reachability", "roaming", "visited"),
    [
        (AT_HOME, Reachability.CONNECTED, RoamingStatus.NOT_ROAMING, None),
        (GERMANY, Reachability.CONNECTED, RoamingStatus.ROAMING, "DE"),
        (EGYPT, Reachability.CONNECTED, RoamingStatus.ROAMING, "EG"),
        (PORTED, Reachability.CONNECTED, RoamingStatus.NOT_ROAMING, None),
        # Vonage has no word for barring or a missing SMS service: the device is on the
        # network, and that is all it says.
        (BARRED, Reachability.CONNECTED, RoamingStatus.NOT_ROAMING, None),
        (NOT_PROVISIONED, Reachability.CONNECTED, RoamingStatus.NOT_ROAMING, None),
    ],
)
async def test_each_reachable_subscriber_becomes_hlrds_answer(
    vendor: Running,
    number: str,
    reachability: Reachability,
    roaming: RoamingStatus,
    visited: str | None,
) -> None:
    async with provider_for(vendor) as provider:
        result = await _look_up(provider, number)
    assert (result.outcome, result.reachability, result.roaming, result.visited_country) == (
        Outcome.OK,
        reachability,
        roaming,
        visited,
    )
    assert vendor.imitation.refused == 0


async def test_a_number_ported_to_another_network_is_ported(vendor: Running) -> None:
    async with provider_for(vendor) as provider:
        ported = await _look_up(provider, PORTED)
        home = await _look_up(provider, AT_HOME)
    assert (ported.ported, ported.subscription_network.mccmnc, ported.home_network.mccmnc) == (
        True,
        "26003",
        "26001",
    )
    assert (home.ported, home.subscription_network.mccmnc) == (False, "26001")


async def test_an_unreachable_device_is_absent_with_no_serving_network(vendor: Running) -> None:
    async with provider_for(vendor) as provider:
        answer = await provider.lookup(ABSENT, "l1")
    result = _derive(ABSENT, answer)
    assert (answer.delivered, answer.map_error) == (False, int(MapError.ABSENT_SUBSCRIBER))
    assert (result.reachability, result.roaming) == (Reachability.ABSENT, RoamingStatus.UNKNOWN)


@pytest.mark.parametrize(
    ("number", "code"),
    [(UNKNOWN_SUBSCRIBER, "NOT_FOUND"), (SYSTEM_FAILURE, "SUPPLIER_ERROR")],
)
async def test_an_answer_without_reachability_or_roaming_fails_and_names_the_codes(
    vendor: Running, number: str, code: str
) -> None:
    """Carriers alone answer nothing hlrd is asked: the next provider should be."""
    async with provider_for(vendor) as provider:
        with pytest.raises(ProviderError) as err:
            await provider.lookup(number, "l1")
    assert err.value.outcome == "failed"
    assert f"reachability={code}" in str(err.value) and f"roaming={code}" in str(err.value)
    assert vendor.imitation.requests == 1  # an answer, not retried


async def test_a_purpose_the_application_may_not_use_is_reported(vendor: Running) -> None:
    adapter = Vonage(DEMO_APPLICATION_ID, DEMO_PRIVATE_KEY, "Marketing", clock=vendor.clock)
    async with provider_for(vendor, adapter) as provider:
        with pytest.raises(ProviderError, match="reachability=INVALID_PURPOSE"):
            await provider.lookup(AT_HOME, "l1")


@pytest.mark.parametrize(
    ("insight", "code", "reachability", "roaming"),
    [
        ("roaming", "NO_COVERAGE", Reachability.CONNECTED, RoamingStatus.UNKNOWN),
        ("reachability", "SUPPLIER_ERROR", Reachability.UNKNOWN, RoamingStatus.ROAMING),
    ],
)
async def test_one_failed_insight_leaves_only_its_part_unknown(
    vendor: Running, insight: str, code: str, reachability: Reachability, roaming: RoamingStatus
) -> None:
    """The failed insight keeps its data, as in Vonage's own example (NO_COVERAGE with
    is_swapped): data under a code that is not OK is not taken."""
    vendor.imitation.failing_insight, vendor.imitation.failing_code = insight, code
    vendor.imitation.faults.append("insight_error")
    async with provider_for(vendor) as provider:
        result = await _look_up(provider, GERMANY)
    assert (result.outcome, result.reachability, result.roaming) == (
        Outcome.PARTIAL,
        reachability,
        roaming,
    )


async def test_status_codes_in_lower_case_mean_the_same(vendor: Running) -> None:
    vendor.imitation.faults.append("lowercase")
    async with provider_for(vendor) as provider:
        lower = await _look_up(provider, EGYPT)
        upper = await _look_up(provider, EGYPT)
    assert (lower.outcome, lower.reachability, lower.visited_country) == (
        Outcome.OK,
        Reachability.CONNECTED,
        "EG",
    )
    assert lower.to_dict() == upper.to_dict()


# -- refused credentials ----------------------------------------------------------------


@pytest.mark.parametrize("wrong", ["key", "application_id", "expired"])
async def test_a_token_vonage_would_refuse_fails_the_lookup_once(
    vendor: Running, other_key: str, wrong: str
) -> None:
    app_id, key, clock = DEMO_APPLICATION_ID, DEMO_PRIVATE_KEY, vendor.clock
    if wrong == "key":
        key = other_key
    elif wrong == "application_id":
        app_id = str(uuid.UUID(int=1))
    else:
        clock = Clock(T0 - TOKEN_TTL_S)  # minted so long ago it expired just now
    async with provider_for(vendor, Vonage(app_id, key, clock=clock)) as provider:
        with pytest.raises(ProviderError) as err:
            await provider.lookup(AT_HOME, "l1")
    assert err.value.outcome == "failed" and "credentials" in str(err.value)
    assert "[unauthorized]" in str(err.value)
    assert (vendor.imitation.requests, vendor.imitation.refused) == (1, 1)  # not retried


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _forged(alg: str, claims: dict[str, Any]) -> str:
    signed = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(claims)}"
    if alg == "none":
        return signed + "."
    # The classic confusion: the public key, known to anyone, used as an HMAC secret.
    public = public_key_of(DEMO_PRIVATE_KEY).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    mac = hmac.new(public, signed.encode(), hashlib.sha256).digest()
    return signed + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


CLAIMS = {"application_id": DEMO_APPLICATION_ID, "iat": int(T0), "jti": "j", "exp": int(T0) + 300}
NO_JTI = {k: v for k, v in CLAIMS.items() if k != "jti"}


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Basic ZGVtbzpkZW1v",
        "Bearer ",
        "Bearer " + _forged("none", CLAIMS),
        "Bearer " + _forged("HS256", CLAIMS),
        "Bearer " + jwt.encode(NO_JTI, DEMO_PRIVATE_KEY, algorithm="RS256"),
        "Bearer " + jwt.encode(CLAIMS, DEMO_PRIVATE_KEY, algorithm="RS256") + "x",
    ],
    ids=["none", "basic", "empty", "alg-none", "hs256", "no-jti", "bad-signature"],
)
async def test_the_imitation_refuses_what_vonage_refuses(
    vendor: Running, authorization: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with aiohttp.ClientSession() as session:
        async with session.post(
            vendor.base_url + PATH, json={"phone_number": "+" + AT_HOME}, headers=headers
        ) as resp:
            body = await resp.json(content_type=None)
    assert resp.status == 401 and resp.content_type == "application/problem+json"
    assert set(body) == {"type", "title", "detail", "instance"}
    assert vendor.imitation.refused == 1


async def test_a_key_that_is_no_rsa_pem_fails_before_anything_is_sent(vendor: Running) -> None:
    adapter = Vonage(DEMO_APPLICATION_ID, "-----BEGIN PRIVATE KEY-----\nnope\n-----END")
    async with provider_for(vendor, adapter) as provider:
        with pytest.raises(ProviderError, match="private_key") as err:
            await provider.lookup(AT_HOME, "l1")
    assert err.value.outcome == "failed" and vendor.imitation.requests == 0


# -- failures of the vendor -------------------------------------------------------------


async def test_throttling_and_server_errors_are_retried_to_an_answer(vendor: Running) -> None:
    vendor.imitation.retry_after = "0"
    vendor.imitation.faults.extend(["throttle", "server_error"])
    async with provider_for(vendor) as provider:
        result = await _look_up(provider, AT_HOME)
    assert result.reachability is Reachability.CONNECTED
    assert vendor.imitation.requests == 3


async def test_throttling_to_the_last_attempt_is_throttled(vendor: Running) -> None:
    vendor.imitation.retry_after = "0"
    vendor.imitation.faults.extend(["throttle"] * 3)
    async with provider_for(vendor, max_attempts=3) as provider:
        with pytest.raises(ProviderError) as err:
            await provider.lookup(AT_HOME, "l1")
    assert err.value.outcome == "throttled" and vendor.imitation.requests == 3


async def test_a_vendor_that_never_answers_times_the_lookup_out(vendor: Running) -> None:
    vendor.imitation.faults.append("hang")
    async with provider_for(vendor, request_timeout_s=0.2, max_attempts=1) as provider:
        with pytest.raises(ProviderError) as err:
            await provider.lookup(AT_HOME, "l1")
    assert err.value.outcome == "timeout"


@pytest.mark.parametrize("fault", ["malformed", "partial"])
async def test_a_body_that_is_not_an_answer_fails_the_lookup_cleanly(
    vendor: Running, fault: str
) -> None:
    vendor.imitation.faults.append(fault)
    async with provider_for(vendor) as provider:
        with pytest.raises(ProviderError) as err:
            await provider.lookup(AT_HOME, "l1")
        again = await _look_up(provider, AT_HOME)  # the provider still works
    assert err.value.outcome == "failed" and str(err.value).startswith("vonage answered")
    assert again.reachability is Reachability.CONNECTED


# -- answers read straight from Vonage's published examples ----------------------------

US = "14040000000"


@functools.cache
def _reader() -> Vonage:
    """One adapter for every read: loading an RSA key checks it, which takes a while."""
    return Vonage("app", DEMO_PRIVATE_KEY, clock=Clock())


def _read(body: dict[str, Any] | bytes, number: str = US, status: int = 200) -> HlrAnswer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return _reader().read(status, raw, number)


# The Node SDK's fixture (packages/identity-insights/__tests__/__dataSets__/post.ts), in
# the snake_case wire form the SDK converts from.
ROAMING_IN_SPAIN: dict[str, Any] = {
    "request_id": "00000000-0000-0000-0000-000000000000",
    "insights": {
        "roaming": {
            "latest_status_at": "2025-10-11T08:23:23.456",
            "is_roaming": True,
            "country_codes": ["ES"],
            "status": {"code": "OK", "message": "Success"},
        },
        "reachability": {
            "latest_status_at": "2025-10-11T08:23:23.456",
            "is_reachable": True,
            "connectivity": ["DATA"],
            "status": {"code": "OK", "message": "Success"},
        },
    },
}


@pytest.mark.parametrize("code", ["OK", "ok", "PARTIAL_SUCCESS"])
def test_the_sdk_fixture_is_a_reachable_subscriber_roaming_in_spain(code: str) -> None:
    body = json.loads(json.dumps(ROAMING_IN_SPAIN))
    for insight in body["insights"].values():
        insight["status"]["code"] = code
    answer = _read(body)
    result = derive(
        Msisdn(US, "US", True),
        answer,
        False,
        lookup_id="l1",
        provider="vonage",
        transport="http",
        timings=Timings(),
    )
    assert answer.message_id == "00000000-0000-0000-0000-000000000000"
    assert (result.outcome, result.reachability, result.roaming, result.visited_country) == (
        Outcome.OK,
        Reachability.CONNECTED,
        RoamingStatus.ROAMING,
        "ES",
    )


def test_data_under_a_code_that_is_not_ok_is_not_taken() -> None:
    """Vonage's "Using Multiple Insights" example pairs NO_COVERAGE with data."""
    body = json.loads(json.dumps(ROAMING_IN_SPAIN))
    body["insights"]["roaming"]["status"] = {"code": "NO_COVERAGE", "message": "Success"}
    answer = _read(body)
    assert (answer.delivered, answer.serving_country) == (True, None)


def test_carriers_of_the_sdk_models_give_the_networks_and_porting() -> None:
    body = {
        "insights": {
            "original_carrier": {
                "name": "Plus",
                "network_type": "MOBILE",
                "country_code": "PL",
                "network_code": "26001",
                "status": {"code": "OK", "message": "Success"},
            },
            "current_carrier": {
                "name": "Orange",
                "network_type": "MOBILE",
                "country_code": "PL",
                "network_code": "26003",
                "status": {"code": "OK", "message": "Success"},
            },
            "roaming": {"is_roaming": False, "status": {"code": "OK"}},
        }
    }
    answer = _read(body, PORTED)
    assert (answer.mccmnc, answer.home_mccmnc, answer.ported, answer.serving_country) == (
        "26003",
        "26001",
        True,
        "PL",
    )


@pytest.mark.parametrize(
    "body",
    [
        # Example 3 of the reference notes: roaming NOT_FOUND alone.
        {
            "request_id": "7e190c2f-22aa-4732-b44e-3794de3fa035",
            "insights": {"roaming": {"status": {"code": "NOT_FOUND", "message": "Not found."}}},
        },
        # Vonage's Python SDK fixture tests/data/nullable_response.json.
        {
            "request_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
            "insights": {
                "format": {"status": {"code": "OK"}},
                "original_carrier": {"status": {"code": "OK", "message": "Success"}},
            },
        },
    ],
)
def test_an_answer_that_says_nothing_about_reachability_or_roaming_fails(
    body: dict[str, Any],
) -> None:
    with pytest.raises(ProviderError, match="neither reachability nor roaming") as err:
        _read(body)
    assert err.value.outcome == "failed"


def test_a_number_of_invalid_format_is_no_subscriber() -> None:
    body = {
        "insights": {
            "format": {"is_format_valid": False, "status": {"code": "OK"}},
            "reachability": {"status": {"code": "INVALID_NUMBER_FORMAT"}},
        }
    }
    answer = _read(body)
    assert (answer.delivered, answer.map_error) == (False, int(MapError.UNKNOWN_SUBSCRIBER))


@pytest.mark.parametrize(
    ("number", "codes", "visited"),
    [
        ("447700900123", ["GB", "JE"], "JE"),  # abroad: not the number's own country
        (AT_HOME, ["GB", "JE"], "GB"),
        (AT_HOME, ["eg"], "EG"),
        (AT_HOME, [], None),  # roaming, but where is not said
        (AT_HOME, ["EGY", 818], None),
    ],
)
def test_the_roaming_country_of_several_is_the_first_abroad(
    number: str, codes: list[Any], visited: str | None
) -> None:
    body = {
        "insights": {
            "roaming": {"is_roaming": True, "country_codes": codes, "status": {"code": "OK"}},
            "reachability": {"is_reachable": True, "status": {"code": "OK"}},
        }
    }
    assert _read(body, number).serving_country == visited


def test_an_answer_about_another_number_is_not_taken() -> None:
    body = json.loads(json.dumps(ROAMING_IN_SPAIN))
    body["insights"]["format"] = {
        "number_international": "+48600000002",
        "is_format_valid": True,
        "status": {"code": "OK"},
    }
    with pytest.raises(ProviderError, match="another number"):
        _read(body, AT_HOME)
    body["insights"]["format"]["number_international"] = "+48600000001"
    assert _read(body, AT_HOME).delivered is True


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, "vonage refused the request (HTTP 400) [invalid-json]"),
        (401, "vonage refused the credentials (HTTP 401)"),
        (403, "vonage refused the application (HTTP 403)"),
        (422, "vonage refused the request as invalid (HTTP 422)"),
        (405, "vonage answered HTTP 405"),
    ],
)
def test_problem_details_are_named_by_status_and_type(status: int, expected: str) -> None:
    # Vonage's Python SDK fixture tests/data/insight_error.json
    body = {
        "title": "Malformed JSON",
        "type": "https://developer.vonage.com/api-errors#invalid-json",
        "instance": "868cf2e9-bd6d-4bac-96ba-2b08120d8cf9",
        "detail": "Malformed JSON payload",
    }
    with pytest.raises(ProviderError) as err:
        _read(body, status=status)
    assert str(err.value).startswith(expected) and err.value.outcome == "failed"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xff\xfe",
        b"[" * 100_000,
        b"[]",
        b'{"insights": []}',
        b'{"insights": {"reachability": "yes"}}',
        b'{"insights": {"reachability": {"is_reachable": true}}}',
        b'{"insights": {"reachability": {"is_reachable": true, "status": {"code": 1}}}}',
        b'{"insights": {"reachability": {"is_reachable": "yes", "status": {"code": "OK"}}}}',
        b'{"insights": {"roaming": {"is_roaming": true, "country_codes": "ES",'
        b' "status": {"code": "OK"}}}}',
    ],
)
def test_bodies_that_are_not_the_documented_shape_fail_cleanly(body: bytes) -> None:
    with pytest.raises(ProviderError) as err:
        _read(body)
    assert err.value.outcome == "failed"


def test_a_carrier_code_that_is_no_mccmnc_is_no_network() -> None:
    body = json.loads(json.dumps(ROAMING_IN_SPAIN))
    body["insights"]["current_carrier"] = {"network_code": "26A01", "status": {"code": "OK"}}
    body["insights"]["original_carrier"] = {"network_code": 26001, "status": {"code": "OK"}}
    answer = _read(body)
    assert (answer.mccmnc, answer.home_mccmnc, answer.ported) == (None, None, None)


# -- secrets and the number -------------------------------------------------------------


async def test_neither_secrets_nor_the_number_reach_errors_or_the_log(
    vendor: Running, other_key: str
) -> None:
    """Every way a lookup fails: the error text is logged and returned to callers, so
    it holds neither the application's credentials, the token, nor the number (not
    even when the vendor writes the number into a code or a problem's detail)."""
    out = io.StringIO()
    configure_logging("json", "DEBUG", out, cache=False)
    errors: list[str] = []
    adapter = Vonage(DEMO_APPLICATION_ID, DEMO_PRIVATE_KEY, clock=vendor.clock)
    token = adapter.request(AT_HOME, "l0").headers()["Authorization"].removeprefix("Bearer ")
    try:
        vendor.imitation.retry_after = "0"
        vendor.imitation.failing_insight = "reachability"
        vendor.imitation.failing_code = "NOT FOUND: +" + UNKNOWN_SUBSCRIBER
        vendor.imitation.faults.extend(
            ["malformed", "partial", *["server_error"] * 3, "insight_error"]
        )
        async with provider_for(vendor, adapter) as provider:
            for number in (AT_HOME, AT_HOME, AT_HOME, SYSTEM_FAILURE, UNKNOWN_SUBSCRIBER):
                try:
                    await provider.lookup(number, "l1")
                except ProviderError as exc:
                    errors.append(str(exc))
        async with provider_for(vendor, Vonage(DEMO_APPLICATION_ID, other_key)) as provider:
            try:
                await provider.lookup(AT_HOME, "l1")
            except ProviderError as exc:
                errors.append(str(exc))
        problem = {"type": "x#invalid-params", "title": "t", "detail": "+" + UNKNOWN_SUBSCRIBER}
        for status in (400, 422):
            try:
                _read(problem, UNKNOWN_SUBSCRIBER, status)
            except ProviderError as exc:
                errors.append(str(exc))
        flush_logs()
    finally:
        structlog.reset_defaults()
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
    assert len(errors) == 8
    assert "reachability=?, " not in errors[3] and errors[3].endswith("reachability=?")
    text = out.getvalue() + "\n".join(errors)
    pem_body = DEMO_PRIVATE_KEY.splitlines()[1]
    for secret in (DEMO_APPLICATION_ID, token, token.split(".")[2], pem_body):
        assert secret not in text
    for number in (AT_HOME, UNKNOWN_SUBSCRIBER, SYSTEM_FAILURE):
        assert number not in text


def test_the_insights_asked_are_those_the_adapter_reads() -> None:
    assert set(INSIGHTS) == {
        "format",
        "original_carrier",
        "current_carrier",
        "roaming",
        "reachability",
    }


def test_the_purpose_the_application_was_approved_for_is_sent() -> None:
    """Production applications are approved for their own purpose, not the Playground's."""
    from hlrd.config import parse_config
    from hlrd.upstream.factory import VENDORS
    from simulator.vendors import demo_provider

    provider = {**demo_provider("vonage", 1), "purpose": "CustomerCareOutreach"}
    cfg = parse_config({"upstream": {"providers": [provider]}}).providers[0]
    assert isinstance(cfg, HttpProviderConfig)
    vendor = VENDORS["vonage"](cfg)
    assert isinstance(vendor, Vonage)
    body = vendor.request(AT_HOME, "l1").body
    assert isinstance(body, bytes) and json.loads(body)["purpose"] == "CustomerCareOutreach"
