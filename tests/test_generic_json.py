"""generic_json: any JSON HLR API described in TOML. The docs' first example is run
against the simulator's generic API, the second against a vendor of this file's
own with a nested answer and each style of credentials."""

from __future__ import annotations

import base64
import copy
import io
import json
import logging
import re
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import web

from hlrd.config import HttpProviderConfig
from hlrd.domain.derive import reachability_of
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
from hlrd.upstream.http.generic_json import GenericJson, vendor, walk
from hlrd.upstream.http.json_mapping import JsonMapping, parse_mapping
from hlrd.upstream.http.provider import HttpProvider
from simulator.scenario import Answer, Scenario, msisdn_of
from simulator.vendors.base import Imitation

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

DOCS = Path(__file__).resolve().parent.parent / "docs" / "vendors" / "generic-json.md"

KEY = "acme-key-3f9c1e"
SECRET = "acme-secret-b71d0a"

# number -> (reachability, roaming, visited country, outcome), for both shapes.
FAMILIES: dict[str, tuple[Reachability, RoamingStatus, str | None, Outcome]] = {
    AT_HOME: (Reachability.CONNECTED, RoamingStatus.NOT_ROAMING, None, Outcome.OK),
    GERMANY: (Reachability.CONNECTED, RoamingStatus.ROAMING, "DE", Outcome.OK),
    EGYPT: (Reachability.CONNECTED, RoamingStatus.ROAMING, "EG", Outcome.OK),
    PORTED: (Reachability.CONNECTED, RoamingStatus.NOT_ROAMING, None, Outcome.OK),
    ABSENT: (Reachability.ABSENT, RoamingStatus.UNKNOWN, None, Outcome.OK),
    UNKNOWN_SUBSCRIBER: (Reachability.INVALID, RoamingStatus.UNKNOWN, None, Outcome.OK),
    BARRED: (Reachability.RESTRICTED, RoamingStatus.UNKNOWN, None, Outcome.OK),
    NOT_PROVISIONED: (Reachability.RESTRICTED, RoamingStatus.UNKNOWN, None, Outcome.OK),
    SYSTEM_FAILURE: (Reachability.UNKNOWN, RoamingStatus.UNKNOWN, None, Outcome.PARTIAL),
}


def docs_examples() -> list[dict[str, Any]]:
    """The docs' TOML blocks, parsed as an operator's configuration would be."""
    blocks = re.findall(r"```toml\n(.*?)```", DOCS.read_text(), re.DOTALL)
    return [tomllib.loads(b) for b in blocks]


def example_mapping(i: int) -> dict[str, Any]:
    raw: dict[str, Any] = docs_examples()[i]["upstream"]["providers"][0]["mapping"]
    return raw


def seen_as(number: str, answer: HlrAnswer) -> LookupResult:
    return seen(number, answer, "acme")


@asynccontextmanager
async def provider(
    port: int,
    mapping: JsonMapping,
    prefix: str = "",
    key: str = KEY,
    secret: str = SECRET,
    **changes: Any,
) -> AsyncIterator[HttpProvider]:
    settings: dict[str, Any] = {"tps": 1000, "request_timeout_s": 2.0}
    settings.update(changes)
    cfg = HttpProviderConfig(
        name="acme",
        type="generic_json",
        base_url=f"http://127.0.0.1:{port}{prefix}",
        api_key=key,
        api_secret=secret,
        **settings,
    )
    p = HttpProvider(cfg, vendor(cfg, mapping))
    async with started(p):
        yield p


# -- example 1: the simulator's generic API ---------------------------------------------


@pytest.fixture
async def generic_api(demo: Scenario) -> AsyncIterator[int]:
    """The simulator's HTTP app: its generic API is there whatever vendors it serves."""
    async with serving(NestedVendor(demo)) as port:
        yield port


def test_the_docs_examples_are_whole_provider_entries() -> None:
    first, second = docs_examples()
    assert [e["upstream"]["providers"][0]["type"] for e in (first, second)] == [
        "generic_json",
        "generic_json",
    ]
    assert parse_mapping(example_mapping(0)).secrets_used == frozenset()
    assert parse_mapping(example_mapping(1)).secrets_used == {"api_key"}


@pytest.mark.parametrize("number", FAMILIES)
async def test_docs_example_1_reads_every_family_of_the_simulators_generic_api(
    generic_api: int, number: str
) -> None:
    async with provider(generic_api, parse_mapping(example_mapping(0))) as p:
        result = seen_as(number, await p.lookup(number, "l1"))
    assert (result.reachability, result.roaming, result.visited_country, result.outcome) == (
        FAMILIES[number]
    )


async def test_docs_example_1_keeps_networks_porting_imsi_and_zone(generic_api: int) -> None:
    async with provider(generic_api, parse_mapping(example_mapping(0))) as p:
        ported = await p.lookup(PORTED, "l1")
        egypt = seen_as(EGYPT, await p.lookup(EGYPT, "l2"))
        germany = seen_as(GERMANY, await p.lookup(GERMANY, "l3"))
    assert (ported.mccmnc, ported.home_mccmnc, ported.ported, ported.imsi) == (
        "26003",
        "26001",
        True,
        "260030000000004",
    )
    assert seen_as(PORTED, ported).ported is True
    assert (egypt.serving_msc, egypt.zone, germany.zone) == ("201000000100", Zone.NON_EEA, Zone.EEA)


async def test_docs_example_1_reads_the_simulators_400_as_an_invalid_number(
    generic_api: int,
) -> None:
    async with provider(generic_api, parse_mapping(example_mapping(0))) as p:
        answer = await p.lookup("12345", "l1")  # too short for the simulator
    assert reachability_of(answer) is Reachability.INVALID
    assert answer.map_error == MapError.UNKNOWN_SUBSCRIBER


# -- example 2: a nested answer behind credentials --------------------------------------

_NESTED_REACH = {
    "live": ("yes", None),
    "absent": ("no", "27"),
    "unknown": ("no", "1"),
    "barred": ("no", "13"),
    "not_provisioned": ("no", "11"),
    "system_failure": ("unknown", "34"),
}


def nested_answer(a: Answer) -> dict[str, Any]:
    """Example 2's shape: flags as strings, a masked IMSI, the MAP error as text."""
    reach, code = _NESTED_REACH[a.status]
    location: dict[str, Any] = {"roaming": "unknown"}
    if a.status == "live":
        location = {"roaming": "true" if a.roaming else "false"}
        if a.roaming_country:
            location["country"] = a.roaming_country.lower()
    return {
        "data": {
            "results": [
                {
                    "id": "lk-7f3a",
                    "subscriber": {
                        "e164": "+" + a.msisdn,
                        "reachability": reach,
                        "imsi": a.imsi[:6] + "*" * 9 if a.imsi else None,
                        "ported": "unknown" if a.ported is None else str(a.ported).lower(),
                    },
                    "error": {"code": code} if code else None,
                    "network": {
                        "subscription": {"mccmnc": a.subscription_mccmnc},
                        "origin": {"mccmnc": a.home_mccmnc},
                    },
                    "location": location,
                }
            ]
        }
    }


AUTHS = ("bearer", "own_header", "basic", "query")


class NestedVendor(Imitation):
    """A vendor unlike any written adapter: `POST /<auth>/v2/lookups`, each prefix
    taking one style of credentials only, so no style passes by another's check.
    `faults` as the imitations': throttle, server_error, hang, malformed, partial,
    other_number."""

    def __init__(self, scenario: Scenario, key: str = KEY, secret: str = SECRET) -> None:
        super().__init__(scenario)
        self.key = key
        self.secret = secret
        self.retry_after = "0"
        self.asked: list[str] = []
        self.content_types: list[str] = []

    def add_routes(self, app: web.Application) -> None:
        for auth in AUTHS:
            app.router.add_post(f"/{auth}/v2/lookups", self._handler(auth))

    def _handler(self, auth: str) -> Any:
        async def lookup(request: web.Request) -> web.StreamResponse:
            return await self.lookup(auth, request)

        return lookup

    def authentic(self, auth: str, request: web.Request) -> bool:
        pair = base64.b64encode(f"{self.key}:{self.secret}".encode()).decode()
        expected = {
            "bearer": request.headers.get("Authorization") == f"Bearer {self.key}",
            "own_header": request.headers.get("X-Api-Key") == self.key,
            "basic": request.headers.get("Authorization") == f"Basic {pair}",
            "query": request.query.get("key") == self.key,
        }
        return expected[auth]

    async def lookup(self, auth: str, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if not self.authentic(auth, request):
            self.refused += 1
            return web.json_response({"error": {"code": "unauthorized"}}, status=401)
        fault = self.next_fault()
        if fault == "throttle":
            return web.json_response({}, status=429, headers={"Retry-After": self.retry_after})
        if fault == "server_error":
            return web.json_response({}, status=503)
        if fault == "hang":
            await self.hang()
        self.content_types.append(request.content_type)
        try:
            asked = (await request.json())["phone"]["e164"]
        except (ValueError, KeyError, TypeError):
            return web.json_response({"errors": [{"code": "BAD_REQUEST"}]}, status=400)
        self.asked.append(asked)
        digits = msisdn_of(asked) if isinstance(asked, str) and asked.startswith("+") else None
        if digits is None:
            return web.json_response({"errors": [{"code": "INVALID_NUMBER"}]}, status=422)
        if fault == "other_number":
            digits = GERMANY if digits != GERMANY else AT_HOME
        result = nested_answer(await self.answer(digits))
        if fault == "malformed":
            return web.Response(body=json.dumps(result).encode()[:40])
        if fault == "partial":
            del result["data"]["results"][0]["subscriber"]["reachability"]
            result["data"]["results"][0]["error"] = None
        return web.json_response(result)


def nested_mapping(auth: str) -> JsonMapping:
    """Docs example 2, its credentials in the style `auth`."""
    raw = copy.deepcopy(example_mapping(1))
    request = raw["request"]
    for key in ("auth_header", "auth_value"):
        del request[key]
    if auth == "bearer":
        request.update(auth="header", auth_header="Authorization", auth_value="Bearer {api_key}")
    elif auth == "own_header":
        request.update(auth="header", auth_header="X-Api-Key", auth_value="{api_key}")
    elif auth == "basic":
        request.update(auth="basic")
    else:
        request.update(auth="query", auth_param="key")
    return parse_mapping(raw)


@pytest.fixture
async def nested(demo: Scenario) -> AsyncIterator[tuple[NestedVendor, int]]:
    imit = NestedVendor(demo)
    async with serving(imit) as port:
        yield imit, port


@pytest.mark.parametrize("auth", AUTHS)
async def test_docs_example_2_reads_every_family_with_each_style_of_credentials(
    nested: tuple[NestedVendor, int], auth: str
) -> None:
    imit, port = nested
    async with provider(port, nested_mapping(auth), f"/{auth}") as p:
        results = {n: seen_as(n, await p.lookup(n, "l1")) for n in FAMILIES}
    for number, result in results.items():
        assert (
            result.reachability,
            result.roaming,
            result.visited_country,
            result.outcome,
        ) == FAMILIES[number], number
    assert imit.refused == 0
    assert imit.asked == ["+" + n for n in FAMILIES]
    assert set(imit.content_types) == {"application/json"}


async def test_the_nested_shape_keeps_porting_and_drops_the_masked_imsi(
    nested: tuple[NestedVendor, int],
) -> None:
    _, port = nested
    async with provider(port, nested_mapping("bearer"), "/bearer") as p:
        ported = await p.lookup(PORTED, "l1")
        home = await p.lookup(AT_HOME, "l2")
    assert (ported.mccmnc, ported.home_mccmnc, ported.ported) == ("26003", "26001", True)
    assert (home.imsi, home.message_id, home.ported) == (None, "lk-7f3a", False)
    # "roaming": "false" and nothing else: served at home, as hlrd's compare needs it
    assert (home.serving_mccmnc, home.serving_country) == ("26001", "PL")


@pytest.mark.parametrize("auth", AUTHS)
async def test_a_wrong_credential_is_refused_once_and_fails_the_lookup(
    nested: tuple[NestedVendor, int], auth: str
) -> None:
    imit, port = nested
    wrong = {"key": "wrong-" + KEY} if auth != "basic" else {"secret": "wrong-" + SECRET}
    async with provider(port, nested_mapping(auth), f"/{auth}", max_attempts=3, **wrong) as p:
        with pytest.raises(ProviderError) as err:
            await p.lookup(AT_HOME, "l1")
    assert err.value.outcome == "failed"
    assert str(err.value) == (
        "acme refused the credentials (HTTP 401): check api_key, api_secret and the mapping's auth"
    )
    assert imit.refused == 1 and imit.requests == 1  # not retried


async def test_credentials_of_another_style_are_refused(
    nested: tuple[NestedVendor, int],
) -> None:
    imit, port = nested
    async with provider(port, nested_mapping("query"), "/bearer") as p:
        with pytest.raises(ProviderError):
            await p.lookup(AT_HOME, "l1")
    assert imit.refused == 1


async def test_the_vendors_422_invalid_number_is_an_invalid_number(
    nested: tuple[NestedVendor, int],
) -> None:
    _, port = nested
    async with provider(port, nested_mapping("bearer"), "/bearer") as p:
        answer = await p.lookup("12345", "l1")
    assert reachability_of(answer) is Reachability.INVALID


async def test_throttling_and_server_errors_are_retried_to_an_answer(
    nested: tuple[NestedVendor, int],
) -> None:
    imit, port = nested
    imit.faults.extend(["throttle", "server_error"])
    async with provider(port, nested_mapping("bearer"), "/bearer") as p:
        result = seen_as(AT_HOME, await p.lookup(AT_HOME, "l1"))
    assert result.reachability is Reachability.CONNECTED
    assert imit.requests == 3


@pytest.mark.parametrize(
    ("fault", "outcome"), [("throttle", "throttled"), ("server_error", "failed")]
)
async def test_retries_run_out(nested: tuple[NestedVendor, int], fault: str, outcome: str) -> None:
    imit, port = nested
    imit.faults.extend([fault] * 3)
    async with provider(port, nested_mapping("bearer"), "/bearer", max_attempts=3) as p:
        with pytest.raises(ProviderError) as err:
            await p.lookup(AT_HOME, "l1")
    assert err.value.outcome == outcome
    assert imit.requests == 3


async def test_a_vendor_that_never_answers_times_the_lookup_out(
    nested: tuple[NestedVendor, int],
) -> None:
    imit, port = nested
    imit.faults.append("hang")
    mapping = nested_mapping("bearer")
    async with provider(port, mapping, "/bearer", request_timeout_s=0.2, max_attempts=1) as p:
        with pytest.raises(ProviderError) as err:
            await p.lookup(AT_HOME, "l1")
    assert err.value.outcome == "timeout"


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("malformed", "acme answered something that is not JSON"),
        ("partial", "acme answered without reachable or map_error"),
        ("other_number", "acme answered about another number"),
    ],
)
async def test_a_body_that_is_not_the_answer_fails_the_lookup_cleanly(
    nested: tuple[NestedVendor, int], fault: str, message: str
) -> None:
    imit, port = nested
    imit.faults.append(fault)
    async with provider(port, nested_mapping("bearer"), "/bearer") as p:
        with pytest.raises(ProviderError) as err:
            await p.lookup(AT_HOME, "l1")
        again = await p.lookup(AT_HOME, "l2")  # the provider still works
    assert (err.value.outcome, str(err.value)) == ("failed", message)
    assert reachability_of(again) is Reachability.CONNECTED


# -- reading answers ---------------------------------------------------------------------


def simulator_vendor() -> GenericJson:
    return GenericJson(parse_mapping(example_mapping(0)), name="sim")


def generic_body(**changes: Any) -> bytes:
    d: dict[str, Any] = {
        "msisdn": AT_HOME,
        "status": "live",
        "map_error": 0,
        "imsi": "260010000000001",
        "mccmnc": "26001",
        "home_mccmnc": "26001",
        "serving_mccmnc": "26001",
        "msc": "48601000100",
        "roaming": False,
        "roaming_country": None,
        "ported": False,
    }
    d.update(changes)
    return json.dumps(d).encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "sim answered something that is not JSON"),
        (b"<html>busy</html>", "sim answered something that is not JSON"),
        (b"\xff\xfe", "sim answered something that is not JSON"),
        (b"[" * 100_000, "sim answered something that is not JSON"),
        (b"null", "sim answered without status or map_error"),
        (b"[1, 2]", "sim answered without status or map_error"),
        (b'"live"', "sim answered without status or map_error"),
        (b"{}", "sim answered without status or map_error"),
        (generic_body(status=None, map_error=None), "sim answered without status or map_error"),
        (generic_body(status="zombie"), "sim answered a status 'zombie' the mapping does not list"),
        (generic_body(status=7), "sim answered a status '7' the mapping does not list"),
        (generic_body(status=AT_HOME), "sim answered a status the mapping does not list"),
        (generic_body(status={"a": 1}), "sim answered a status the mapping does not list"),
        (generic_body(msisdn=GERMANY), "sim answered about another number"),
        (generic_body(msisdn="+" + GERMANY), "sim answered about another number"),
        (generic_body(msisdn=True), "sim answered about another number"),
        (generic_body(msisdn=""), "sim answered about another number"),
    ],
)
def test_odd_bodies_fail_with_a_provider_error_only(body: bytes, message: str) -> None:
    with pytest.raises(ProviderError) as err:
        simulator_vendor().read(200, body, AT_HOME)
    assert (err.value.outcome, str(err.value)) == ("failed", message)


def test_the_number_may_come_with_a_plus_spaces_or_as_a_json_integer() -> None:
    v = simulator_vendor()
    for number in ("+48600000001", "+48 600-000-001", 48600000001):
        assert v.read(200, generic_body(msisdn=number), AT_HOME).delivered is True
    assert v.read(200, generic_body(msisdn=None), AT_HOME).delivered is True  # not given


def test_masked_and_malformed_values_are_dropped_not_guessed() -> None:
    body = generic_body(
        imsi="26001********01",
        mccmnc="260",
        msc="4860100010012345678",
        serving_mccmnc="2620X",
        roaming=True,
        roaming_country="Deutschland",
        ported="maybe",
    )
    a = simulator_vendor().read(200, body, AT_HOME)
    assert (a.imsi, a.mccmnc, a.msc, a.serving_mccmnc, a.serving_country, a.ported) == ((None,) * 6)
    assert seen_as(AT_HOME, a).roaming is RoamingStatus.UNKNOWN  # roaming, but where?


def test_a_nonzero_map_error_decides_over_the_status() -> None:
    a = simulator_vendor().read(200, generic_body(status="absent", map_error=6), AT_HOME)
    assert (a.delivered, a.map_error) == (False, 6)
    assert seen_as(AT_HOME, a).reachability is Reachability.ABSENT


def test_a_map_error_of_zero_alone_says_connected() -> None:
    mapping = parse_mapping(
        {"request": {"path": "/x/{msisdn}"}, "fields": {"map_error": {"path": "err"}}}
    )
    v = GenericJson(mapping, name="v")
    assert v.read(200, b'{"err": "0"}', AT_HOME).delivered is True
    assert v.read(200, b'{"err": 27}', AT_HOME).map_error == 27
    with pytest.raises(ProviderError, match="without map_error"):
        v.read(200, b'{"err": 300}', AT_HOME)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, (True, None)),
        ("TRUE", (True, None)),
        (False, (False, 27)),
        ("false", (False, 27)),
        ("unknown", (None, None)),
    ],
)
def test_reachable_reads_booleans_and_their_strings(
    raw: Any, expected: tuple[bool | None, int | None]
) -> None:
    mapping = parse_mapping({"request": {"path": "/x"}, "fields": {"reachable": {"path": "r.0"}}})
    a = GenericJson(mapping, name="v").read(200, json.dumps({"r": [raw]}).encode(), AT_HOME)
    assert (a.delivered, a.map_error) == expected


def test_a_roaming_subscriber_is_served_in_the_roaming_country_unless_not_roaming() -> None:
    v = simulator_vendor()
    abroad = generic_body(msc=None, serving_mccmnc=None, roaming=True, roaming_country="eg")
    assert v.read(200, abroad, AT_HOME).serving_country == "EG"
    contradicting = generic_body(msc=None, serving_mccmnc=None, roaming_country="EG")
    home = v.read(200, contradicting, AT_HOME)  # roaming false: the country is not taken
    assert (home.serving_country, home.serving_mccmnc) == ("PL", "26001")
    assert seen_as(AT_HOME, home).roaming is RoamingStatus.NOT_ROAMING


def test_an_unreachable_subscriber_is_served_nowhere() -> None:
    a = simulator_vendor().read(
        200, generic_body(status="absent", map_error=27, roaming_country="DE"), AT_HOME
    )
    assert (a.msc, a.serving_mccmnc, a.serving_country) == (None, None, None)


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (400, b'{"error": "bad_request"}', "sim answered HTTP 400"),
        (400, b"not json", "sim answered HTTP 400"),
        (401, b"{}", "sim refused the credentials (HTTP 401)"),
        (403, b"{}", "sim refused the credentials (HTTP 403)"),
        (404, b"{}", "sim has no such endpoint (HTTP 404): check base_url and request.path"),
        (422, b'{"error": "invalid_msisdn"}', "sim answered HTTP 422"),
        (500, b"{}", "sim answered HTTP 500"),
        (302, b"", "sim answered HTTP 302"),
    ],
)
def test_refusals_fail_with_the_status_only(status: int, body: bytes, message: str) -> None:
    with pytest.raises(ProviderError) as err:
        simulator_vendor().read(status, body, AT_HOME)
    assert err.value.outcome == "failed" and str(err.value).startswith(message)


def test_a_listed_status_without_a_body_rule_is_an_invalid_number() -> None:
    raw = copy.deepcopy(example_mapping(0))
    raw["invalid_number"] = {"statuses": [400, 404]}
    v = GenericJson(parse_mapping(raw), name="sim")
    assert v.read(404, b"", AT_HOME).map_error == MapError.UNKNOWN_SUBSCRIBER


def test_paths_walk_objects_and_lists_only() -> None:
    doc = {"a": [{"b": "x"}, None], "0": "zero"}
    assert walk(doc, ("a", "0", "b")) == "x"
    assert walk(doc, ("0",)) == "zero"  # an object's key, even when it looks like an index
    for path in [("a", "2"), ("a", "1", "b"), ("a", "-1"), ("a", "b"), ("a", "0", "b", "c")]:
        assert walk(doc, path) is None
    assert walk(doc, ("a", "9" * 40)) is None


# -- the request -------------------------------------------------------------------------


def _request_mapping(**request: Any) -> JsonMapping:
    return parse_mapping({"request": request, "fields": {"status": {"path": "s"}}})


def test_placeholders_are_quoted_for_the_url_and_escaped_for_json() -> None:
    m = _request_mapping(
        method="POST",
        path="/lookup?n={e164}&d={msisdn}",
        body='{"n": "{e164}", "k": "{api_key}", "raw": {msisdn}}',
        headers={"X-Secret": "{api_secret}", "accept": "application/vnd.acme+json"},
    )
    key = 'k"\\{msisdn}'
    req = GenericJson(m, key, "s-1").request(AT_HOME, "l1")
    assert (req.method, req.path) == ("POST", "/lookup?n=%2B48600000001&d=48600000001")
    assert isinstance(req.body, bytes)  # written at once: nothing waits for a slot
    assert json.loads(req.body) == {"n": "+48600000001", "k": key, "raw": 48600000001}
    assert req.headers() == {
        "Content-Type": "application/json",
        "X-Secret": "s-1",
        "accept": "application/vnd.acme+json",
    }


@pytest.mark.parametrize(
    ("request_", "path", "headers"),
    [
        ({"auth": "none"}, "/v/48600000001", {}),
        (
            {
                "auth": "header",
                "auth_header": "X-Key",
                "auth_value": "Token {api_key}/{api_secret}",
            },
            "/v/48600000001",
            {"X-Key": "Token k&1/s 2"},
        ),
        (
            {"auth": "basic"},
            "/v/48600000001",
            {"Authorization": "Basic " + base64.b64encode(b"k&1:s 2").decode()},
        ),
        ({"auth": "query", "auth_param": "key"}, "/v/48600000001?key=k%261", {}),
    ],
)
def test_each_auth_style_puts_the_credentials_where_it_says(
    request_: dict[str, Any], path: str, headers: dict[str, str]
) -> None:
    req = GenericJson(_request_mapping(path="/v/{msisdn}", **request_), "k&1", "s 2").request(
        AT_HOME, "l1"
    )
    assert req.path == path and req.body is None
    assert req.headers() == {"Accept": "application/json", **headers}


def test_query_auth_joins_a_query_the_path_already_has() -> None:
    m = _request_mapping(path="/v?n={e164}", auth="query")
    assert GenericJson(m, "k").request(AT_HOME, "l1").path == "/v?n=%2B48600000001&api_key=k"


def test_a_credential_no_header_can_carry_is_refused_without_being_shown() -> None:
    m = _request_mapping(path="/v", auth="header")
    with pytest.raises(ValueError) as err:
        GenericJson(m, KEY + "\n", name="acme")
    assert KEY not in str(err.value) and "line break" in str(err.value)
    GenericJson(_request_mapping(path="/v", auth="query"), KEY + "\n")  # quoted in the URL


def test_the_factory_function_needs_a_mapping() -> None:
    cfg = HttpProviderConfig(name="acme", type="generic_json", base_url="http://x", api_key=KEY)
    with pytest.raises(ValueError, match=r"acme: .*\[upstream.providers.mapping\]"):
        vendor(cfg, None)


def test_which_credentials_a_mapping_uses() -> None:
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"path": "/v"}, set()),
        ({"path": "/v", "auth": "basic"}, {"api_key", "api_secret"}),
        ({"path": "/v", "auth": "query"}, {"api_key"}),
        ({"path": "/v", "auth": "header", "auth_value": "{api_secret}"}, {"api_secret"}),
        ({"path": "/v", "headers": {"X-A": "{api_key}"}}, {"api_key"}),
        ({"method": "POST", "path": "/v", "body": '{"s": "{api_secret}"}'}, {"api_secret"}),
    ]
    for request, used in cases:
        assert _request_mapping(**request).secrets_used == used


# -- the mapping's errors ----------------------------------------------------------------


def _m(request: Any = None, fields: Any = None, **top: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "request": {"path": "/v/{msisdn}"} if request is None else request,
        "fields": {"status": {"path": "status"}} if fields is None else fields,
    }
    raw.update(top)
    return raw


def _status(**spec: Any) -> dict[str, Any]:
    return {"status": {"path": "status", **spec}}


@pytest.mark.parametrize(
    ("raw", "prefix"),
    [
        ([], ": must be a table"),
        ({"fields": {}}, "request: required"),
        ({"request": {"path": "/v"}}, "fields: required"),
        (_m(colour="blue"), "colour: unknown key; known: fields, invalid_number, request"),
        (_m(request="GET /v"), "request: must be a table"),
        (_m(request={"path": "/v", "methd": "GET"}), "request.methd: unknown key"),
        (_m(request={"path": "/v", "method": "PUT"}), "request.method: one of GET, POST"),
        (_m(request={"method": "GET"}), "request.path: required"),
        (_m(request={"path": ""}), "request.path: must be a non-empty string"),
        (_m(request={"path": "v/{msisdn}"}), "request.path: below base_url"),
        (_m(request={"path": "/v/{msidsn}"}), "request.path: unknown placeholder {msidsn}"),
        (_m(request={"path": "/v?k={api_key}"}), "request.path: unknown placeholder {api_key}"),
        (_m(request={"path": "/v#x"}), "request.path: below base_url"),
        (_m(request={"path": "/" + "v" * 2000}), "request.path: at most 2000 characters"),
        (_m(request={"path": "/v", "body": "{}"}), 'request.body: only with method = "POST"'),
        (
            _m(request={"method": "POST", "path": "/v", "body": '{"n": {e164}}'}),
            "request.body: must be JSON once its placeholders are filled in",
        ),
        (
            _m(request={"method": "POST", "path": "/v", "body": '{"n": "{number}"}'}),
            "request.body: unknown placeholder {number}",
        ),
        (
            _m(request={"method": "POST", "path": "/v", "body": '"' + "x" * 2000 + '"'}),
            "request.body: at most 2000 characters",
        ),
        (_m(request={"path": "/v", "auth": "oauth"}), "request.auth: one of none, header, basic"),
        (
            _m(request={"path": "/v", "auth_param": "k"}),
            'request.auth_param: only with auth = "query"',
        ),
        (
            _m(request={"path": "/v", "auth": "query", "auth_value": "{api_key}"}),
            'request.auth_value: only with auth = "header"',
        ),
        (
            _m(request={"path": "/v", "auth": "header", "auth_header": "X Key"}),
            "request.auth_header: a header name",
        ),
        (
            _m(request={"path": "/v", "auth": "header", "auth_value": "Bearer xyz"}),
            "request.auth_value: must carry {api_key} or {api_secret}",
        ),
        (
            _m(request={"path": "/v", "auth": "query", "auth_param": "k&x"}),
            "request.auth_param: a query parameter name",
        ),
        (_m(request={"path": "/v", "headers": ["X-A"]}), "request.headers: must be a table"),
        (
            _m(request={"path": "/v", "headers": {f"X-{i}": "v" for i in range(33)}}),
            "request.headers: at most 32",
        ),
        (_m(request={"path": "/v", "headers": {"X A": "v"}}), "request.headers.X A: not a header"),
        (
            _m(request={"path": "/v", "headers": {"X-A": "a\r\nX-B: b"}}),
            "request.headers.X-A: no line breaks",
        ),
        (
            _m(request={"path": "/v", "headers": {"X-A": "{msisdn}"}}),
            "request.headers.X-A: unknown placeholder {msisdn}",
        ),
        (
            _m(request={"path": "/v", "headers": {"X-A": "1", "x-a": "2"}}),
            "request.headers.x-a: given twice",
        ),
        (
            _m(request={"path": "/v", "auth": "basic", "headers": {"authorization": "x"}}),
            'request.headers.authorization: set by auth = "basic"',
        ),
        (_m(fields=[]), "fields: must be a table"),
        (_m(fields={f"f{i}": {} for i in range(33)}), "fields: at most 32"),
        (_m(fields={"colour": {"path": "c"}}), "fields.colour: not a field hlrd reads"),
        (_m(fields={"imsi": {"path": "imsi"}}), "fields: name at least one of status"),
        (_m(fields={"status": "status"}), "fields.status: must be a table"),
        (_m(fields=_status(where="x")), "fields.status.where: unknown key"),
        (_m(fields={"status": {}}), "fields.status.path: required"),
        (_m(fields={"reachable": {"path": ""}}), "fields.reachable.path: a dotted path"),
        (_m(fields={"reachable": {"path": "a..b"}}), "fields.reachable.path: an empty or overlong"),
        (
            _m(fields={"reachable": {"path": ".".join("a" * 17)}}),
            "fields.reachable.path: at most 16 steps deep",
        ),
        (
            _m(fields={"reachable": {"path": "r", "type": "string"}}),
            'fields.reachable.type: reachable is read as bool; give type = "bool"',
        ),
        (_m(fields=_status(map={})), "fields.status.map: a table"),
        (
            _m(fields=_status(map={"live": "reachable"})),
            "fields.status.map.live: one of connected, absent",
        ),
        (
            _m(fields=_status(map={str(i): "absent" for i in range(257)})),
            "fields.status.map: at most 256 values",
        ),
        (
            _m(fields={"reachable": {"path": "r", "map": {"yes": "true"}}}),
            'fields.reachable.map.yes: true, false or "unknown"',
        ),
        (
            _m(fields={"map_error": {"path": "e", "map": {"ABS": 256}}}),
            "fields.map_error.map.ABS: a MAP error code 0-255",
        ),
        (
            _m(fields={**_status(), "mccmnc": {"path": "n", "map": {"Orange": 26003}}}),
            "fields.mccmnc.map.Orange: a string of digits",
        ),
        (
            _m(fields={**_status(), "roaming_country": {"path": "c", "map": {"x": "DEU"}}}),
            "fields.roaming_country.map.x: an ISO 3166 alpha-2",
        ),
        (
            _m(fields={**_status(), "number": {"path": "n", "map": {"a": "1"}}}),
            "fields.number.map: the number is compared",
        ),
        (_m(invalid_number=[400]), "invalid_number: must be a table"),
        (_m(invalid_number={"status": [400]}), "invalid_number.status: unknown key"),
        (_m(invalid_number={"statuses": [200]}), "invalid_number.statuses: HTTP statuses 400-499"),
        (_m(invalid_number={"statuses": ["400"]}), "invalid_number.statuses: HTTP statuses"),
        (
            _m(invalid_number={"statuses": [401]}),
            "invalid_number.statuses: 401 is about credentials or rate",
        ),
        (_m(invalid_number={"statuses": 400}), "invalid_number.statuses: a list"),
        (
            _m(invalid_number={"statuses": [400], "path": "error"}),
            "invalid_number.path: give path and values together",
        ),
        (
            _m(invalid_number={"path": "error", "values": ["x"]}),
            "invalid_number.statuses: required with path and values",
        ),
        (
            _m(invalid_number={"statuses": [400], "path": "error", "values": []}),
            "invalid_number.values: a list of 1-32 strings",
        ),
        (
            _m(invalid_number={"statuses": [400], "path": "", "values": ["x"]}),
            "invalid_number.path: a dotted path",
        ),
    ],
)
def test_a_wrong_mapping_is_refused_naming_its_key(raw: Any, prefix: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_mapping(raw)
    assert str(err.value).startswith(prefix), str(err.value)


def test_the_mapping_module_does_not_import_the_configuration() -> None:
    """hlrd.config imports it to check mappings at load: a cycle otherwise."""
    code = "import sys, hlrd.upstream.http.json_mapping; sys.exit('hlrd.config' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# -- secrets -----------------------------------------------------------------------------


@pytest.mark.parametrize("auth", AUTHS)
async def test_the_credentials_and_the_number_never_reach_the_log_or_an_error(
    nested: tuple[NestedVendor, int], auth: str
) -> None:
    """Every failure path: a log shipped to a SIEM, or an error shown to a dialer,
    must not hand out the account or the subscriber."""
    imit, port = nested
    out = io.StringIO()
    configure_logging("json", "DEBUG", out, cache=False)
    errors: list[str] = []
    try:
        for creds, faults in [
            ({"key": "wrong-" + KEY, "secret": "wrong-" + SECRET}, []),
            ({}, ["throttle"] * 3),
            ({}, ["server_error"] * 3),
            ({}, ["malformed"]),
            ({}, ["partial"]),
            ({}, ["other_number"]),
        ]:
            imit.faults.extend(faults)
            async with provider(port, nested_mapping(auth), f"/{auth}", **creds) as p:
                with pytest.raises(ProviderError) as err:
                    await p.lookup(AT_HOME, "l1")
                errors.append(str(err.value))
        async with provider(port, nested_mapping(auth), f"/{auth}") as p:
            answered = await p.lookup(GERMANY, "l2")
        flush_logs()
    finally:
        structlog.reset_defaults()
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
    assert answered.serving_country == "DE" and len(errors) == 6
    text = out.getvalue() + "\n".join(errors)
    for secret in (KEY, SECRET, "wrong-" + KEY, AT_HOME, GERMANY, "260010"):
        assert secret not in text


# -- as the configuration loads it ------------------------------------------------


def _provider_config(**provider: Any) -> dict[str, Any]:
    base = {"name": "acme", "type": "generic_json", "base_url": "https://api.acme.example"}
    return {"upstream": {"providers": [{**base, **provider}]}}


def test_the_documented_examples_load_as_an_operator_writes_them() -> None:
    from hlrd.config import parse_config

    first = parse_config(docs_examples()[0]).providers[0]
    assert isinstance(first, HttpProviderConfig) and first.mapping is not None
    assert first.api_key == ""  # auth = "none": no key asked for


@pytest.mark.parametrize(
    ("provider", "fragment"),
    [
        ({}, "mapping: generic_json needs [upstream.providers.mapping]"),
        ({"mapping": []}, "upstream.providers[0].mapping: must be a table"),
        (
            {"mapping": {**example_mapping(0), "fields": {"reachable": {"path": ""}}}},
            "upstream.providers[0].mapping.fields.reachable.path:",
        ),
        (
            {"type": "tyntec", "api_key": "k", "mapping": {}},
            'mapping: only for type = "generic_json"',
        ),
        ({"mapping": example_mapping(1)}, "api_key: the vendor's API key"),
    ],
)
def test_a_generic_provider_that_cannot_work_is_named_precisely(
    provider: dict[str, Any], fragment: str
) -> None:
    from hlrd.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as err:
        parse_config(_provider_config(**provider))
    assert fragment in str(err.value)
