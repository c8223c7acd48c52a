"""The HTTP front end against peers no dialer would be: raw sockets on 127.0.0.1.

Each test is one finding of issue #9 ("never down because of one bad peer"): what a
peer sends may cost it an error, never us a 5xx, a traceback, a full number in a log
line or error body, or a descriptor held past its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import select
import socket
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from hlrd.config import HttpConfig
from hlrd.daemon import Daemon, LoopErrorLog
from hlrd.fd_limits import ConnectionCaps, fit_connection_caps
from hlrd.frontends.http_api import make_app
from hlrd.frontends.http_server import HttpServer
from simulator.controller import Simulator

from .daemon_harness import running_daemon

NUMBER = "48600000003"
# The number's digits with anything short between them: "+48 600-000.003", "48%20600...".
NUMBER_ANYHOW = re.compile(r"\D{0,3}".join(NUMBER))
Logs = list[MutableMapping[str, Any]]
TIMEOUT = 10.0  # upper bound on any wait for the daemon; a pass never comes near it


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def error(self) -> dict[str, Any]:
        assert self.headers["content-type"].startswith("application/json"), self
        detail: dict[str, Any] = json.loads(self.body)["error"]
        return detail


async def read_answer(reader: asyncio.StreamReader) -> Answer | None:
    """One HTTP response (by its Content-Length); None if the server closed first."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    except ConnectionResetError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Answer(int(lines[0].split()[1]), headers, body)


async def connect(
    port: int, source: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def exchange(port: int, raw: bytes, source: str = "127.0.0.1") -> Answer:
    reader, writer = await connect(port, source)
    try:
        writer.write(raw)
        answer = await asyncio.wait_for(read_answer(reader), TIMEOUT)
    finally:
        writer.close()
    assert answer is not None, "closed without an answer"
    return answer


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent until it closed the connection."""
    try:
        return await asyncio.wait_for(reader.read(), TIMEOUT)
    except ConnectionResetError:
        return b""


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Close our side and wait for the server to close its own, so its connection
    count has dropped when this returns (it closes the socket after forgetting it)."""
    writer.write_eof()
    await closed_by_server(reader)
    writer.close()


def get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: hlrd", *headers, "Connection: close", "", ""]
    return "\r\n".join(lines).encode()


def metric(daemon: Daemon, line_start: str) -> float:
    for line in daemon.metrics.render().decode().splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def logs() -> Iterator[Logs]:
    """Our log events as logged, before any masking: what code hands the logger."""
    with capture_logs() as captured:
        yield captured
    assert not [e for e in captured if NUMBER_ANYHOW.search(repr(e))], "a number was logged"


# -- 1. Authorization that is not UTF-8 -------------------------------------------------


@pytest.mark.parametrize(
    ("query", "digit"), [("", False), ("?format=digit", True)], ids=["json", "digit"]
)
async def test_non_utf8_authorization_is_401_not_500(
    sim: Simulator, logs: Logs, query: str, digit: bool
) -> None:
    raw = get(f"/v1/check/{NUMBER}{query}", "Authorization: Bearer ").replace(
        b"Bearer ", b"Bearer \xff\xfe\xc3(s3cret"
    )
    async with running_daemon(sim, http={"auth_tokens": ["s3cret"]}) as (daemon, _):
        answer = await exchange(daemon.http_port, raw)
    assert answer.status == 401
    if digit:
        assert answer.body == b"1"
    else:
        assert answer.error()["code"] == "unauthorized"
    assert sim.stats.submits == 0


# -- 2. Requests aiohttp's parser refuses ---------------------------------------------

REFUSED = [
    pytest.param(b"GET /v1/check/+48 600 000 003 HTTP/1.1\r\nHost: h\r\n\r\n", 400, id="space"),
    pytest.param(get("/v1/check/" + NUMBER * 800), 414, id="long-path"),
    pytest.param(get(f"/v1/check/{NUMBER}", "X-Long: " + NUMBER * 800), 431, id="long-header"),
    pytest.param(
        get(f"/v1/check/{NUMBER}", *(f"X-{i}: {NUMBER}" for i in range(200))), 431, id="headers"
    ),
    pytest.param(get(f"/v1/check/{NUMBER}", "X-Bad: a\x00b"), 400, id="nul-in-header"),
    pytest.param(get(f"/v1/check/{NUMBER}", "X\x01Bad: a"), 400, id="ctl-in-name"),
    pytest.param(get(f"/v1/check/{NUMBER}").replace(b"HTTP/1.1", b"HTTP/9.9"), 400, id="ver"),
    pytest.param(get(f"/v1/check/{NUMBER}").replace(b"GET", b"G(T"), 400, id="method"),
    pytest.param(b"GET /v1/check/\xff\xfe" + NUMBER.encode() + b" HTTP/1.1\r\n\r\n", 400, id="u"),
    pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, 400, id="tls"),
]


@pytest.mark.parametrize(("raw", "status"), REFUSED)
async def test_refused_requests_answer_json_without_echo_or_traceback(
    sim: Simulator, logs: Logs, raw: bytes, status: int
) -> None:
    async with running_daemon(sim) as (daemon, _):
        answer = await exchange(daemon.http_port, raw)
        alive = await exchange(daemon.http_port, get("/healthz"))
    assert answer.status == status
    error = answer.error()
    assert error["code"] == "bad_request"
    assert NUMBER[-6:] not in answer.body.decode()  # nothing of the request echoed
    assert alive.status == 200
    http = [e for e in logs if e["event"].startswith("http.")]
    assert [e["event"] for e in http] == ["http.bad_request"]
    assert http[0]["status"] == status
    assert not [e for e in logs if "exc_info" in e or e["log_level"] == "error"]


async def test_a_refused_digit_request_line_still_answers_1(sim: Simulator) -> None:
    """A dialer that does not encode the spaces of a number must still fail closed."""
    raw = b"GET /v1/check/+48 600 000 003?format=digit HTTP/1.1\r\nHost: h\r\n\r\n"
    async with running_daemon(sim) as (daemon, _):
        answer = await exchange(daemon.http_port, raw)
    assert (answer.status, answer.body) == (400, b"1")


async def test_refused_requests_are_logged_once_per_budget_with_a_count(
    sim: Simulator, logs: Logs
) -> None:
    bad = get("/v1/check/x").replace(b"HTTP/1.1", b"HTTP/9.9")
    async with running_daemon(sim) as (daemon, _):
        answers = [await exchange(daemon.http_port, bad) for _ in range(50)]
    assert {a.status for a in answers} == {400}
    assert len([e for e in logs if e["event"] == "http.bad_request"]) == 5  # the burst


# -- 3. Every error JSON with a code (or "1"), never a 5xx for client input -----------


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (get("/v1/nothing/here"), 404, "not_found"),
        (get(f"/v1/{NUMBER[:2]}.{NUMBER[2:5]}.{NUMBER[5:8]}.{NUMBER[8:]}"), 404, "not_found"),
        (get("/nothing"), 404, "not_found"),
        (get(f"/v1/check/{NUMBER}").replace(b"GET", b"POST"), 405, "method_not_allowed"),
        (get(f"/v1/check/{NUMBER}").replace(b"GET", b"DELETE"), 405, "method_not_allowed"),
        (get(f"/v1/check/{NUMBER}?format=xml"), 400, "invalid_parameter"),
        (get("/v1/check/%00%ff%fe"), 400, "invalid_number"),
        (get("/v1/lookup/" + "9" * 300), 400, "invalid_number"),
    ],
)
async def test_v1_errors_are_json_with_a_code_and_1_in_digit_mode(
    sim: Simulator, logs: Logs, raw: bytes, status: int, code: str
) -> None:
    path = raw.split(b" ")[1]
    digit = raw.replace(path, path + (b"&" if b"?" in path else b"?") + b"format=digit", 1)
    if b"format=xml" in raw:  # the first format wins: no digit mode with a bad format
        digit = get("/v1/check/x?format=digit")
    async with running_daemon(sim) as (daemon, _):
        answer = await exchange(daemon.http_port, raw)
        digit_answer = await exchange(daemon.http_port, digit)
    assert answer.status == status
    assert answer.error()["code"] == code
    if status == 405:
        assert answer.headers["allow"] == "GET,HEAD"
    assert (digit_answer.status, digit_answer.body) == (status if b"xml" not in raw else 400, b"1")
    assert digit_answer.headers["content-type"].startswith("text/plain")


async def _broken(request: web.Request) -> web.Response:
    raise KeyError(f"no subscriber {request.match_info['number']}")


async def _silent(request: web.Request) -> web.Response:
    return None  # type: ignore[return-value]  # the bug under test


@pytest.mark.parametrize("route", ["broken", "silent"])
async def test_an_unexpected_handler_failure_is_json_500_logged_without_the_number(
    sim: Simulator, logs: Logs, route: str
) -> None:
    async with running_daemon(sim) as (daemon, _):
        app = make_app(daemon.service, daemon.metrics, ())
        app.router.add_get("/v1/broken/{number}", _broken)
        app.router.add_get("/v1/silent/{number}", _silent)
        server = HttpServer(app, HttpConfig(port=0), daemon.metrics, 10)
        await server.start()
        try:
            answer = await exchange(server.port, get(f"/v1/{route}/{NUMBER}"))
            digit = await exchange(server.port, get(f"/v1/{route}/{NUMBER}?format=digit"))
        finally:
            await server.stop()
    assert answer.status == 500
    assert answer.error()["code"] == "internal_error"
    assert (digit.status, digit.body) == (500, b"1")
    errors = [e for e in logs if e["log_level"] == "error"]
    assert errors and all("exc_info" not in e for e in errors)
    assert errors[0]["error"] in ("KeyError", "AttributeError")


# -- 4. Deadlines and connection caps -------------------------------------------------

FAST_DEADLINES = {"header_timeout_s": 0.2, "idle_timeout_s": 0.2}
HEADER_TIMEOUTS = 'hlrd_client_connections_closed_total{frontend="http",reason="header_timeout"}'


async def test_a_silent_connection_is_closed_at_the_header_deadline(sim: Simulator) -> None:
    async with running_daemon(sim, http=FAST_DEADLINES) as (daemon, _):
        reader, writer = await connect(daemon.http_port)
        got = await closed_by_server(reader)
        writer.close()
        closed = metric(
            daemon, 'hlrd_client_connections_closed_total{frontend="http",reason="header_timeout"}'
        )
    assert got == b""
    assert closed == 1


async def test_a_slowloris_head_is_closed_at_the_deadline(sim: Simulator) -> None:
    head = get(f"/v1/check/{NUMBER}", "X-Slow: " + "s" * 200)
    async with running_daemon(sim, http=FAST_DEADLINES) as (daemon, _):
        reader, writer = await connect(daemon.http_port)
        closed = asyncio.ensure_future(closed_by_server(reader))
        sent = 0
        while not closed.done() and sent < len(head):  # a byte per 20 ms: 5 s for all
            writer.write(head[sent : sent + 1])
            sent += 1
            await asyncio.wait([closed], timeout=0.02)  # the attacker's pace, not a wait
        got = await closed
        writer.close()
        count = metric(daemon, HEADER_TIMEOUTS)
    assert sent < len(head)  # closed before the head was complete
    assert got == b""  # and never answered
    assert count == 1
    assert sim.stats.submits == 0


async def test_keep_alive_idle_and_half_sent_heads_are_closed(sim: Simulator) -> None:
    request = f"GET /v1/check/{NUMBER}?format=digit HTTP/1.1\r\nHost: h\r\n\r\n".encode()
    async with running_daemon(sim, http=FAST_DEADLINES) as (daemon, _):
        idle_reader, idle = await connect(daemon.http_port)
        half_reader, half = await connect(daemon.http_port)
        for w in (idle, half):
            w.write(request + request)  # two answers on one connection: keep-alive works
        answers = [await read_answer(r) for r in (idle_reader, half_reader) for _ in range(2)]
        half.write(b"GET /v1/check/486")  # the next head, never finished
        after = [await closed_by_server(r) for r in (idle_reader, half_reader)]
        idle.close()
        half.close()
        rendered = daemon.metrics.render().decode()
    assert [(a.status, a.body) for a in answers if a] == [(200, b"1")] * 4
    assert after == [b"", b""]
    assert 'reason="idle_timeout"} 1.0' in rendered
    assert 'reason="header_timeout"} 1.0' in rendered


async def test_deadlines_spare_a_request_being_answered(sim: Simulator) -> None:
    """The head deadline is for heads: a slow HLR (40-60 ms) outlasts a 20 ms deadline."""
    deadlines = {"header_timeout_s": 0.02, "idle_timeout_s": 0.02}
    async with running_daemon(sim, http=deadlines) as (daemon, _):
        await daemon.service.wait_ready()
        answer = await exchange(daemon.http_port, get("/v1/check/48600000012?format=digit"))
    assert (answer.status, answer.body) == (200, b"0")


def _pipeline_without_reading(port: int) -> int:
    """Send thousands of pipelined requests, read nothing; the poll events that end it."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
        s.settimeout(TIMEOUT)
        s.connect(("127.0.0.1", port))
        with contextlib.suppress(OSError):  # the server may drop us mid-send: the point
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n" * 5000)
        poller = select.poll()
        poller.register(s, select.POLLRDHUP)  # not POLLIN: data is waiting, unread
        return sum(event for _, event in poller.poll(TIMEOUT * 1000))


async def test_a_client_that_stops_reading_is_dropped(sim: Simulator) -> None:
    """Answers a client never reads must not pin its connection (and their memory)."""
    async with running_daemon(sim, http=FAST_DEADLINES) as (daemon, _):
        events = await asyncio.to_thread(_pipeline_without_reading, daemon.http_port)
        count = metric(
            daemon, 'hlrd_client_connections_closed_total{frontend="http",reason="send_timeout"}'
        )
    assert events & (select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    assert count == 1


async def admitted(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A keep-alive connection, known to be admitted: it got an answer."""
    reader, writer = await connect(port, source)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
    answer = await asyncio.wait_for(read_answer(reader), TIMEOUT)
    assert answer is not None and answer.status == 200
    return reader, writer


async def test_connection_caps_per_address_and_in_total(sim: Simulator) -> None:
    caps = {"max_connections": 3, "max_connections_per_ip": 2}
    async with running_daemon(sim, http=caps) as (daemon, _):
        port = daemon.http_port
        held = [await admitted(port, "127.0.0.1"), await admitted(port, "127.0.0.1")]
        refused_ip = await exchange(port, get("/healthz"), "127.0.0.1")
        held.append(await admitted(port, "127.0.0.2"))
        refused_total = await exchange(port, get("/healthz"), "127.0.0.3")
        gauge = metric(daemon, 'hlrd_client_connections{frontend="http"}')
        await hang_up(*held.pop())
        fresh = await exchange(port, get(f"/v1/check/{NUMBER}?format=digit"), "127.0.0.3")
        for reader, writer in held:
            await hang_up(reader, writer)
        rendered = daemon.metrics.render().decode()
    assert (refused_ip.status, refused_ip.error()["code"]) == (503, "too_many_connections")
    assert refused_total.status == 503
    assert gauge == 3
    assert (fresh.status, fresh.body) == (200, b"1")
    assert 'connections_refused_total{frontend="http",reason="per_ip"} 1.0' in rendered
    assert 'connections_refused_total{frontend="http",reason="total"} 1.0' in rendered
    assert 'hlrd_client_connections{frontend="http"} 0.0' in rendered


def test_connection_caps_are_fitted_under_the_descriptor_limit() -> None:
    assert fit_connection_caps(1000, 200, 20_000, 128) == ConnectionCaps(1000, 200)
    fitted = fit_connection_caps(1000, 200, 256, 128)
    assert fitted == ConnectionCaps(106, 22)
    assert fitted.http + fitted.smpp <= 256 - 128
    assert fit_connection_caps(1000, 0, 256, 128) == ConnectionCaps(128, 0)


async def test_loop_errors_are_logged_once_per_interval_without_traceback() -> None:
    """A descriptor-exhausted accept() reports per attempt; the log gets one line."""
    loop = asyncio.get_running_loop()
    handler = LoopErrorLog(interval_s=3600)
    try:
        raise OSError(24, "Too many open files")
    except OSError as exc:
        emfile = exc
    with capture_logs() as logs:
        for _ in range(1000):
            handler(
                loop, {"message": "socket.accept() out of system resource", "exception": emfile}
            )
        handler(loop, {"message": f"Exception in callback f('{NUMBER}')", "exception": emfile})
    assert [(e["kind"], e["errno"], e["suppressed"]) for e in logs] == [
        ("socket.accept() out of system resource", 24, 0),
        ("Exception in callback", 24, 0),
    ]
    assert logs[0]["where"].startswith("test_http_hostile.py:")
    assert NUMBER not in repr(logs)
