"""The OpenAPI document against the running daemon: valid, complete, and true.

Valid: the served /openapi.json passes openapi-spec-validator as OpenAPI 3.1. Complete:
every route the daemon's application serves is a path of the document and the other
way round. True: real answers of a daemon bound to the simulator (and of one with no
provider, with tokens, at its connection cap, shutting down) fit the document's
statuses, media types, schemas and headers. schemathesis fuzzes the same document in
test_schemathesis.py.
"""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from hlrd.config import parse_config
from hlrd.daemon import Daemon
from hlrd.domain.numbers import normalize
from hlrd.frontends import openapi
from simulator.controller import Simulator

from .daemon_harness import config_for, running_daemon
from .data_dirs import DATA_ENV
from .openapi_contract import Contract, ContractError
from .test_http_hostile import Answer, exchange, get, read_answer

PACKAGED = Path(openapi.__file__).with_name("openapi.json")
CONTRACT = Contract()
TOKEN = "tok-openapi-Zq"
LOOKUP = "/v1/lookup/{number}"
CHECK = "/v1/check/{number}"


async def fits(
    http: aiohttp.ClientSession,
    path: str,
    url: str,
    method: str = "GET",
    operation: str = "GET",
    **kw: Any,
) -> tuple[int, bytes, CIMultiDict[str]]:
    """Requests `url` and checks the answer against operation `operation path` (a
    method the path has no operation for is described on the path's operations)."""
    async with http.request(method, url, **kw) as r:
        body = await r.read()
        headers = CIMultiDict(r.headers)
    CONTRACT.check(path, operation, r.status, headers, body)
    return r.status, body, headers


def fits_raw(path: str, answer: Answer) -> None:
    CONTRACT.check(path, "GET", answer.status, answer.headers, answer.body)


async def test_the_served_document_is_valid_openapi_3_1_and_the_packaged_file(
    sim: Simulator,
) -> None:
    async with running_daemon(sim) as (_, http), http.get("/openapi.json") as r:
        assert r.status == 200
        assert r.content_type == "application/json"
        served = await r.read()
    assert served == PACKAGED.read_bytes()
    spec = json.loads(served)
    assert spec["openapi"].startswith("3.1.")
    validate(spec)  # raises on an invalid document


def test_the_validator_refuses_a_broken_document() -> None:
    """The validity check above can fail: a dangling $ref and a bad status key."""
    spec = copy.deepcopy(CONTRACT.spec)
    spec["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ] = {"$ref": "#/components/schemas/Nothing"}
    with pytest.raises(Exception):  # noqa: B017 - the validator's own error types vary
        validate(spec)
    spec = copy.deepcopy(CONTRACT.spec)
    spec["paths"]["/healthz"]["get"]["responses"]["2xx0"] = {"description": "x"}
    with pytest.raises(OpenAPIValidationError):
        validate(spec)


async def test_every_route_is_in_the_document_and_every_path_is_served(sim: Simulator) -> None:
    async with running_daemon(sim) as (daemon, _):
        assert daemon.http is not None
        routes = {
            (r.method, r.resource.canonical)
            for r in daemon.http.app.router.routes()
            if r.resource is not None
        }
    documented = {
        (method.upper(), path) for path, item in CONTRACT.spec["paths"].items() for method in item
    }
    # aiohttp adds HEAD beside each GET; the document says so once, in its description.
    heads = {(m, p) for m, p in routes if m == "HEAD"}
    assert heads == {("HEAD", p) for m, p in routes if m == "GET"}
    assert "HEAD" in CONTRACT.spec["info"]["description"]
    assert routes - heads == documented


def test_every_example_in_the_document_fits_its_schema() -> None:
    examples = list(CONTRACT.examples())
    assert len(examples) > 50  # parameters' and responses' named examples, all of them
    wrong = {label: CONTRACT.errors(at, value) for label, at, value in examples}
    assert {label: errors for label, errors in wrong.items() if errors} == {}


def test_the_example_numbers_are_mobile_numbers_of_the_demo_scenario() -> None:
    """The docs' example numbers are the ones the simulator's demo scenario answers."""
    for path in (LOOKUP, CHECK):
        param = CONTRACT.spec["paths"][path]["get"]["parameters"][0]
        for example in param["examples"].values():
            assert normalize(example["value"], "PL", True).e164.startswith("4860000000")


def test_the_contract_check_refuses_an_answer_the_document_does_not_describe() -> None:
    """The checks of real answers below can fail."""
    example = CONTRACT.spec["paths"][LOOKUP]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["examples"]["roaming_non_eea"]["value"]
    ok = {"Content-Type": "application/json; charset=utf-8", "X-Lookup-Id": example["lookup_id"]}
    CONTRACT.check(LOOKUP, "GET", 200, ok, json.dumps(example).encode())
    wrong: list[tuple[int, dict[str, str], object]] = [
        (200, ok, {**example, "outcome": "maybe"}),
        (200, ok, {**example, "extra": 1}),
        (200, {"Content-Type": "application/json"}, example),  # no X-Lookup-Id
        (200, {**ok, "Content-Type": "text/html"}, example),
        (418, ok, example),
        (400, ok, {"error": {"code": "invalid_number", "message": "x"}}),  # no field/reason
    ]
    for status, headers, body in wrong:
        with pytest.raises(ContractError):
            CONTRACT.check(LOOKUP, "GET", status, headers, json.dumps(body).encode())
    with pytest.raises(ContractError):
        CONTRACT.check(CHECK, "GET", 200, {**ok, "Content-Type": "text/plain"}, b"2")


async def test_answers_of_a_daemon_bound_to_the_simulator_fit_the_document(
    sim: Simulator,
) -> None:
    async with running_daemon(sim) as (daemon, http):
        for number in ("+48600000001", "+48600000003", "0048600000005", "48600000009"):
            status, body, headers = await fits(http, LOOKUP, f"/v1/lookup/{number}")
            assert status == 200
            assert json.loads(body)["lookup_id"] == headers["X-Lookup-Id"]
            status, body, headers = await fits(http, CHECK, f"/v1/check/{number}")
            assert status == 200
            assert json.loads(body)["lookup"]["cache"]["hit"]  # the lookup's answer, cached
            assert "Age" in headers
        assert (await fits(http, CHECK, "/v1/check/+48600000003?format=digit"))[1] == b"1"
        assert (await fits(http, CHECK, "/v1/check/+48600000002?format=digit"))[1] == b"0"
        status, body, headers = await fits(http, LOOKUP, "/v1/lookup/+48600000002?fresh=1")
        assert (status, json.loads(body)["cache"]["hit"], "Age" in headers) == (200, False, False)
        ids = {"X-Request-Id": "dialer-42", "x-correlator": "c-1"}
        _, _, headers = await fits(http, CHECK, "/v1/check/+48600000002?max_age=0", headers=ids)
        assert (headers["X-Request-Id"], headers["x-correlator"]) == ("dialer-42", "c-1")
        for url, status, code in [
            ("/v1/lookup/hello", 400, "invalid_number"),
            ("/v1/check/+48221234567", 400, "invalid_number"),
            ("/v1/check/+48600000003?format=xml", 400, "invalid_parameter"),
            ("/v1/check/+48600000003?max_age=1h", 400, "invalid_parameter"),
            ("/v1/lookup/+48600000003?fresh=yes", 400, "invalid_parameter"),
            ("/v1/check/", 404, "not_found"),
            ("/v1/lookup/48600000003/", 404, "not_found"),
        ]:
            path = LOOKUP if "lookup" in url else CHECK
            got, body, _ = await fits(http, path, url)
            assert (got, json.loads(body)["error"]["code"]) == (status, code), url
            if "format=" not in url:
                digit_url = url + ("&" if "?" in url else "?") + "format=digit"
                assert (await fits(http, path, digit_url))[:2] == (status, b"1")
        got, _, headers = await fits(http, LOOKUP, "/v1/lookup/48600000003", method="POST")
        assert (got, headers["Allow"]) == (405, "GET,HEAD")
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/v1/cache"):
            assert (await fits(http, path, path))[0] == 200
            assert (await fits(http, path, path, method="PUT"))[0] == 405
        for url, status in [
            ("/v1/cache/+48600000001", 200),
            ("/v1/cache/hello", 400),
            ("/v1/cache?all=1", 200),
            ("/v1/cache?older_than=60", 200),
            ("/v1/cache", 400),  # neither: no typo empties the cache
            ("/v1/cache?all=1&older_than=60", 400),
            ("/v1/cache?all=yes&older_than=60", 400),
        ]:
            path = "/v1/cache/{number}" if url.startswith("/v1/cache/") else "/v1/cache"
            got, _, _ = await fits(http, path, url, method="DELETE", operation="DELETE")
            assert got == status, url
        got, _, _ = await fits(http, "/v1/cache/{number}", "/v1/cache/1", operation="DELETE")
        assert got == 405
        port = daemon.http_port
        # What the parser refuses, answered by http_server.py: 400, 414, 431.
        fits_raw(CHECK, await exchange(port, b"GET /v1/check/48 600 000 003 HTTP/1.1\r\n\r\n"))
        answer = await exchange(port, b"GET /v1/check/48 600?format=digit HTTP/1.1\r\n\r\n")
        fits_raw(CHECK, answer)
        assert (answer.status, answer.body) == (400, b"1")
        answer = await exchange(port, get("/v1/lookup/" + "4" * 9000))
        fits_raw(LOOKUP, answer)
        assert answer.status == 414
        answer = await exchange(port, get("/healthz", "X-Big: " + "x" * 9000))
        fits_raw("/healthz", answer)
        assert answer.status == 431


async def test_answers_with_tokens_configured_fit_the_document(sim: Simulator) -> None:
    async with running_daemon(sim, http={"auth_tokens": [TOKEN]}) as (_, http):
        status, body, headers = await fits(http, CHECK, "/v1/check/+48600000003")
        assert status == 401
        assert json.loads(body)["error"]["code"] == "unauthorized"
        assert headers["WWW-Authenticate"] == 'Bearer realm="hlrd"'
        assert (await fits(http, CHECK, "/v1/check/+48600000003?format=digit"))[:2] == (401, b"1")
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert (await fits(http, LOOKUP, "/v1/lookup/+48600000003", headers=bearer))[0] == 200
        url = f"/v1/check/+48600000003?format=digit&access_token={TOKEN}"
        assert (await fits(http, CHECK, url))[:2] == (200, b"1")
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
            assert (await fits(http, path, path))[0] == 200  # open without a token
        assert (await fits(http, "/v1/cache", "/v1/cache"))[0] == 401
        url = "/v1/cache/+48600000003"
        got, _, _ = await fits(
            http, url.replace("+48600000003", "{number}"), url, "DELETE", "DELETE"
        )
        assert got == 401


async def test_answers_with_no_provider_bound_fit_the_document(sim: Simulator) -> None:
    """Nothing listens on port 1: the provider never binds; lookups fail after
    lookup.bind_wait_s with 502, and /v1/check answers 200 `unknown` (do not call)."""
    closed = {"port": 1}
    async with running_daemon(sim, provider=closed, lookup={"bind_wait_s": 0.05}) as (_, http):
        status, body, _ = await fits(http, LOOKUP, "/v1/lookup/+48600000003")
        result = json.loads(body)
        assert (status, result["outcome"], result["provider"]) == (502, "failed", "none")
        status, body, _ = await fits(http, CHECK, "/v1/check/+48600000003")
        check = json.loads(body)
        assert (status, check["decision"], check["call"]) == (200, "unknown", False)
        assert check["reasons"] == ["lookup_failed"]
        assert (await fits(http, CHECK, "/v1/check/+48600000003?format=digit"))[1] == b"1"
        status, body, _ = await fits(http, "/readyz", "/readyz")
        assert (status, json.loads(body)) == (
            503,
            {"status": "not_ready", "providers": {"sim": "down"}},
        )


async def test_too_many_connections_fits_the_document(sim: Simulator) -> None:
    async with running_daemon(sim, http={"max_connections_per_ip": 1}) as (daemon, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", daemon.http_port)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: hlrd\r\n\r\n")
            first = await asyncio.wait_for(read_answer(reader), 10)
            assert first is not None and first.status == 200  # admitted, and kept open
            # Written at accept, before a request is read: the same for every operation.
            for path in ("/healthz", LOOKUP, "/readyz"):
                answer = await exchange(daemon.http_port, get(path.replace("{number}", "1")))
                assert answer.status == 503
                assert answer.headers["retry-after"] == "1"
                fits_raw(path, answer)
        finally:
            writer.close()


async def test_shutting_down_fits_the_document(sim: Simulator) -> None:
    """While stop() gives lookups in flight their grace, a new one is refused with 503."""
    config = config_for(sim, provider={"result_timeout_s": 0.5}, lookup={"shutdown_grace_s": 5})
    daemon = Daemon(parse_config(config, env=DATA_ENV()))
    await daemon.start()
    stopping: asyncio.Task[None] | None = None
    try:
        # The simulator never answers 48600000090: this lookup holds the grace open
        # until the provider gives up on it (result_timeout_s).
        in_flight = daemon.service.begin(daemon.service.normalize("48600000090"))
        async with aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
            stopping = asyncio.create_task(daemon.stop())
            await asyncio.sleep(0)  # one loop turn: stop() runs up to its first wait
            assert not daemon.service.accepting
            status, body, _ = await fits(http, LOOKUP, "/v1/lookup/+48600000003")
            assert (status, json.loads(body)["error"]["code"]) == (503, "shutting_down")
            url = "/v1/check/+48600000003?format=digit"
            assert (await fits(http, CHECK, url))[:2] == (503, b"1")
        assert (await in_flight).outcome == "timeout"
    finally:
        await (stopping if stopping is not None else daemon.stop())
