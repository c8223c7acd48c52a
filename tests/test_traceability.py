"""From an id a caller holds to hlrd's log lines about it.

Every HTTP answer names its lookup (`X-Lookup-Id`), a caller's `X-Request-Id` or
`x-correlator` comes back and lands in the request's log lines (masked like any
value), the SMPP front end's message id is in its lookup's `lookup.done`, and a
lookup that timed out is logged as what it was, not as a refused request.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import structlog

from hlrd.logging_setup import configure_logging, flush_logs
from hlrd.smpp.pdu import SubmitSm, SubmitSmResp
from simulator.controller import Simulator

from .daemon_harness import SMPP_SERVER, running_daemon
from .esme import bound_client
from .test_http_hostile import Answer, admitted, exchange, get, hang_up

TOKEN = {"Authorization": "Bearer s3cret"}
AUTH = {"auth_tokens": ["s3cret"]}
ROAMING_EG = "48600000003"
SLOW = "48600000011"  # demo scenario: the HLR answers after 40-60 ms
NEVER_ANSWERED = "48600000090"
LOOKUP_ID = re.compile(r"[0-9a-f]{16}")


@pytest.fixture
async def log_lines() -> AsyncIterator[Callable[[], Any]]:
    """The daemon's log as written (JSON lines, masked), read on demand."""
    out = io.StringIO()
    configure_logging("json", "INFO", out, cache=False)

    async def read() -> list[dict[str, Any]]:
        flush_logs()  # lines are written every 50 ms
        return [json.loads(line) for line in out.getvalue().splitlines()]

    yield read
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)


def events(lines: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == name]


async def test_every_answer_carries_its_own_lookup_id(sim: Simulator) -> None:
    caps = {**AUTH, "max_connections_per_ip": 1}
    provider = {"result_timeout_s": 0.3}
    async with running_daemon(sim, http=caps, provider=provider) as (daemon, http):
        await daemon.service.wait_ready()
        port = daemon.http_port
        ids: dict[str, str] = {}
        async with http.get(f"/v1/lookup/{ROAMING_EG}", headers=TOKEN) as r:
            assert r.status == 200
            ids["200"] = r.headers["X-Lookup-Id"]
            looked_up = (await r.json())["lookup_id"]
        requests = {
            "digit": ("GET", f"/v1/check/{ROAMING_EG}?format=digit", TOKEN, 200),
            "timeout": ("GET", f"/v1/lookup/{NEVER_ANSWERED}", TOKEN, 504),
            "400": ("GET", "/v1/lookup/abc", TOKEN, 400),
            "401": ("GET", f"/v1/check/{ROAMING_EG}", {}, 401),
            "404": ("GET", "/v2/anything", {}, 404),
            "405": ("DELETE", "/healthz", {}, 405),
            "healthz": ("GET", "/healthz", {}, 200),
            "readyz": ("GET", "/readyz", {}, 200),
            "metrics": ("GET", "/metrics", {}, 200),
        }
        for name, (method, path, headers, status) in requests.items():
            async with http.request(method, path, headers=headers) as r:
                assert r.status == status, name
                ids[name] = r.headers["X-Lookup-Id"]
        refused = await exchange(port, get("/v1/check/+48 600 000 003"), "127.0.0.2")
        ids["parser"] = refused.headers["x-lookup-id"]
        held = await admitted(port, "127.0.0.3")
        over_cap = await exchange(port, get("/healthz"), "127.0.0.3")
        await hang_up(*held)
    assert (refused.status, over_cap.status) == (400, 503)
    ids["503"] = over_cap.headers["x-lookup-id"]
    assert ids["200"] == looked_up
    assert [name for name, i in ids.items() if not LOOKUP_ID.fullmatch(i)] == []
    assert len(set(ids.values())) == len(ids)  # a fresh one each time


async def test_a_callers_request_id_comes_back_and_is_in_its_log_lines(
    sim: Simulator, log_lines: Callable[[], Any]
) -> None:
    uuid = "b7e1c2d0-4a5f-4c3e-9d2b-1a2b3c4d5e6f"
    async with running_daemon(sim, http=AUTH) as (daemon, http):
        await daemon.service.wait_ready()
        sent = {"X-Request-Id": "dialer-run-7/abc", **TOKEN}
        async with http.get(f"/v1/check/{ROAMING_EG}", headers=sent) as r:
            check = (r.headers.get("X-Request-Id"), r.headers["X-Lookup-Id"])
        sent = {"x-correlator": uuid, **TOKEN}
        async with http.get("/v1/lookup/48600000002", headers=sent) as r:
            lookup = (r.headers.get("x-correlator"), r.headers["X-Lookup-Id"])
        both = {"X-Request-Id": "r-1", "x-correlator": "c-1"}
        async with http.get("/v1/lookup/48600000001", headers=both) as r:  # no token
            refused = (r.status, r.headers.get("X-Request-Id"), r.headers.get("x-correlator"))
        async with http.get("/healthz", headers={"X-Request-Id": "probe-1"}) as r:
            probe = r.headers.get("X-Request-Id")
    lines = await log_lines()
    done = {line["lookup_id"]: line for line in events(lines, "lookup.done")}
    assert check[0] == "dialer-run-7/abc"
    assert done[check[1]]["request_id"] == "dialer-run-7/abc"
    assert lookup[0] == uuid
    assert done[lookup[1]]["request_id"] == uuid
    assert refused == (401, "r-1", "c-1")
    [refusal] = events(lines, "http.refused")
    assert refusal["request_id"] == "r-1"  # X-Request-Id first when both come
    assert probe == "probe-1"


async def test_a_request_id_is_logged_masked_and_echoed_as_sent(
    sim: Simulator, log_lines: Callable[[], Any]
) -> None:
    """A dialer may well put the number into its id: the log gets no number from it."""
    sent = f"call-{ROAMING_EG}"
    async with running_daemon(sim) as (daemon, http):
        await daemon.service.wait_ready()
        async with http.get(f"/v1/lookup/{ROAMING_EG}", headers={"X-Request-Id": sent}) as r:
            echoed = r.headers.get("X-Request-Id")
        async with http.get(f"/v1/lookup/{ROAMING_EG}x", headers={"X-Request-Id": sent}) as r:
            assert r.status == 400
    lines = await log_lines()
    assert echoed == sent
    assert [line["request_id"] for line in events(lines, "lookup.done")] == ["call-********003"]
    assert [line["request_id"] for line in events(lines, "http.refused")] == ["call-********003"]
    assert ROAMING_EG not in json.dumps(lines)


@pytest.mark.parametrize(
    "header",
    [
        b"X-Request-Id: " + b"a" * 129,  # longer than 128
        b"X-Request-Id: caf\xc3\xa9",  # not ASCII
        b"x-correlator: tab\there",  # not printable
    ],
    ids=["too-long", "non-ascii", "control"],
)
async def test_an_unusable_request_id_is_ignored_not_refused(
    sim: Simulator, log_lines: Callable[[], Any], header: bytes
) -> None:
    raw = get(f"/v1/check/{ROAMING_EG}?format=digit", "H: x").replace(b"H: x", header)
    async with running_daemon(sim) as (daemon, _):
        await daemon.service.wait_ready()
        answer = await exchange(daemon.http_port, raw)
    lines = await log_lines()
    assert (answer.status, answer.body) == (200, b"1")  # the dialer still gets its answer
    assert "x-request-id" not in answer.headers
    assert "x-correlator" not in answer.headers
    assert [line.get("request_id") for line in events(lines, "lookup.done")] == [None]


async def test_the_smpp_message_id_leads_to_the_lookup(
    sim: Simulator, log_lines: Callable[[], Any]
) -> None:
    """A platform's message id (submit_sm_resp) finds the lookup's line, also when its
    submit joined a lookup of the same number already in flight, or was no number."""
    async with running_daemon(sim, smpp_server=SMPP_SERVER) as (daemon, _):
        await daemon.service.wait_ready()
        assert daemon.smpp_server is not None
        conn, receipts = await bound_client(daemon.smpp_server.port, "cc", "ccpass")
        submits = [
            SubmitSm(source_addr="cc", destination_addr=number, registered_delivery=1)
            for number in (ROAMING_EG, SLOW, SLOW, "not-a-number")
        ]
        resps = await asyncio.gather(*(conn.request(pdu) for pdu in submits))
        ids = [r.message_id for r in resps if isinstance(r, SubmitSmResp)]
        await asyncio.gather(*(receipts.expect(i) for i in ids))
        await conn.close()
    lines = await log_lines()
    done = {line["message_id"]: line for line in events(lines, "lookup.done")}
    [joined] = events(lines, "lookup.joined")
    [invalid] = events(lines, "smpp_server.invalid_number")
    assert len(ids) == 4
    assert set(done) == {ids[0], ids[1]}  # the third submit joined the second's lookup
    assert done[ids[0]]["msisdn"] == "********003"
    assert done[ids[1]]["msisdn"] == "********011"
    assert joined["message_id"] == ids[2]
    assert joined["joined_lookup_id"] == done[ids[1]]["lookup_id"]  # which lookup it joined
    assert invalid["message_id"] == ids[3]  # no lookup: its REJECTD receipt's line


async def test_a_lookup_that_timed_out_is_not_logged_as_refused(
    sim: Simulator, log_lines: Callable[[], Any]
) -> None:
    async with running_daemon(sim, http=AUTH, provider={"result_timeout_s": 0.2}) as (d, http):
        await d.service.wait_ready()
        async with http.get(f"/v1/lookup/{NEVER_ANSWERED}", headers=TOKEN) as r:
            timed_out = (r.status, r.headers["X-Lookup-Id"])
        async with http.get(f"/v1/lookup/{ROAMING_EG}") as r:
            assert r.status == 401  # a refusal, for contrast
    lines = await log_lines()
    assert timed_out[0] == 504
    assert [e["status"] for e in events(lines, "http.refused")] == [401]
    [done] = [e for e in events(lines, "lookup.done") if e["lookup_id"] == timed_out[1]]
    assert (done["outcome"], done["level"]) == ("timeout", "warning")


async def test_digit_mode_errors_are_still_exactly_1(sim: Simulator) -> None:
    """Ids travel in headers: a dialer reading the body still reads `1`, fail closed."""
    caller = "X-Request-Id: vici-42"
    raws = {
        "401": get(f"/v1/check/{ROAMING_EG}?format=digit", caller),
        "400": get("/v1/check/abc?format=digit", caller, "Authorization: Bearer s3cret"),
        "404": get(f"/v1/nothing/{ROAMING_EG}?format=digit", caller),
        "timeout": get(
            f"/v1/check/{NEVER_ANSWERED}?format=digit", caller, "Authorization: Bearer s3cret"
        ),
        "parser": get("/v1/check/+48 600 000 003?format=digit", caller),
    }
    answers: dict[str, Answer] = {}
    async with running_daemon(sim, http=AUTH, provider={"result_timeout_s": 0.2}) as (d, _):
        await d.service.wait_ready()
        for name, raw in raws.items():
            answers[name] = await exchange(d.http_port, raw)
    assert {n: (a.body, a.headers["content-type"]) for n, a in answers.items()} == dict.fromkeys(
        raws, (b"1", "text/plain; charset=utf-8")
    )
    assert all(LOOKUP_ID.fullmatch(a.headers["x-lookup-id"]) for a in answers.values())
    echoed = {n: a.headers.get("x-request-id") for n, a in answers.items()}
    # The parser refused the request before its headers were read: nothing to echo.
    assert echoed == {**dict.fromkeys(raws, "vici-42"), "parser": None}
