"""A seeded fuzz of the HTTP API, with a well-behaved dialer beside it.

`hlrd run` and `hlrd-sim` run as processes; hostile requests go over raw sockets
(paths, queries, headers, Authorization bytes, methods, broken request lines) while
a dialer thread keeps looking up the demo numbers and checks every answer. Nothing
hostile may get a 5xx, an error without a code (or other than "1" in digit mode), a
log line with a full number, a traceback, or the daemon killed.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .child_process import Child
from .conftest import DEMO
from .test_http_hostile import NUMBER_ANYHOW, TIMEOUT

TOKEN = "fuzz-token"
# The demo scenario's subscribers and the digit a dialer must get for each.
DIALER_CASES = [
    ("48600000003", "1"),  # roaming in Egypt
    ("+48600000001", "0"),  # at home
    ("0048600000002", "0"),  # roaming in Germany (EEA)
    ("600000005", "1"),  # switched off
]
TEST_NUMBERS = ["48600000001", "48600000002", "48600000003", "48600000005"]

CONFIG = """
[http]
host = "127.0.0.1"
port = 0
auth_tokens = ["{token}"]
header_timeout_s = 2
idle_timeout_s = 5

[logging]
format = "json"
level = "DEBUG"

[lookup]
shutdown_grace_s = 0.5

[[upstream.providers]]
name = "sim"
port = {port}
password = "secret"
binds = 2
window = 64
tps = 10000
"""


@dataclass
class Dialer:
    """A well-behaved client beside the fuzz: real lookups, every answer checked."""

    port: int
    stop: threading.Event = field(default_factory=threading.Event)
    rounds: int = 0
    wrong: list[str] = field(default_factory=list)

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        try:
            while True:  # at least one full round, however short the fuzz
                for number, digit in DIALER_CASES:
                    conn.request("GET", f"/v1/check/{number}?format=digit", headers=auth)
                    r = conn.getresponse()
                    got = (r.status, r.read().decode())
                    if got != (200, digit):
                        self.wrong.append(f"{number}: {got}")
                conn.request("GET", "/v1/lookup/48600000003", headers=auth)
                r = conn.getresponse()
                result = json.loads(r.read())
                if (r.status, result.get("visited_country")) != (200, "EG"):
                    self.wrong.append(f"lookup: {r.status} {result}")
                self.rounds += 1
                if self.stop.is_set():
                    return
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.wrong.append(f"dialer failed: {exc!r}")
        finally:
            conn.close()


@dataclass
class Stack:
    port: int
    hlrd: Child


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    sim = Child("-m", "simulator", "--scenario", str(DEMO), "--smpp-port", "0")
    try:
        smpp_port = int(sim.wait_for("sim.listening")["smpp"].rsplit(":", 1)[1])
        config = Path(tmp_path_factory.mktemp("fuzz")) / "hlrd.toml"
        config.write_text(CONFIG.format(token=TOKEN, port=smpp_port))
        hlrd = Child("-m", "hlrd", "run", "--config", str(config))
        try:
            port = int(hlrd.wait_for("hlrd.started")["http"].rsplit(":", 1)[1])
            hlrd.wait_for("hlrd.ready")
            yield Stack(port, hlrd)
        finally:
            if hlrd.proc.poll() is None:
                hlrd.proc.kill()
    finally:
        sim.stop()


# -- what hostile requests are made of ------------------------------------------------

_text = st.text(st.characters(codec="utf-8"), max_size=30)  # no lone surrogates
_segment = st.one_of(
    st.sampled_from(
        [
            "48600000003",
            "+48600000001",
            "48.600.000.003",
            "+48 600 000 003",
            "(48) 600-000-003",
            "0048600000002",
            "600000005",
            "",
            "%00",
            "%ff%fe48600000003",
            "..",
            "%2F48600000003",
            "9" * 400,
        ]
    ).map(lambda s: urllib.parse.quote(s, safe="%+().")),
    _text.map(lambda s: urllib.parse.quote(s, safe="")),
    st.from_regex(r"\A[+0-9 .\-()]{0,24}\Z").map(urllib.parse.quote),
)
_prefix = st.sampled_from(
    ["/v1/check/", "/v1/lookup/", "/v1/", "/", "/healthz/", "/readyz", "//v1/check/", "/V1/check/"]
)
_query = st.lists(
    st.tuples(
        st.sampled_from(["format", "Format", "x", "", "format[]"]),
        st.one_of(st.sampled_from(["digit", "json", "xml", "", "DIGIT", "digit "]), _text),
    ),
    max_size=3,
)
_method = st.one_of(
    st.just("GET"),
    st.just("GET"),
    st.just("GET"),
    st.sampled_from(["HEAD", "POST", "PUT", "DELETE", "OPTIONS", "get", "PRI", "CONNECT"]),
    st.from_regex(r"\A[A-Z]{1,12}\Z"),
)
_any_bytes = st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
# Bytes a header value may hold (visible ASCII, space, obs-text 0x80-0xFF: not UTF-8).
_value_bytes = st.binary(max_size=60).map(
    lambda b: bytes(c if 0x20 <= c < 0x7F or c >= 0x80 else 0x2A for c in b)
)
_header_bytes = st.one_of(_value_bytes, _value_bytes, _value_bytes, _any_bytes)
_authorization = st.one_of(
    st.none(),
    st.just(f"Bearer {TOKEN}".encode()),
    st.just(f"Bearer {TOKEN}".encode()),
    _header_bytes.map(lambda b: b"Bearer " + b),
    _header_bytes,
    st.integers(8_000, 12_000).map(lambda n: b"Bearer " + b"a" * n),
)
_header_name = st.one_of(
    st.sampled_from([b"X-A", b"Accept", b"User-Agent", b"Host", b"Content-Length", b"Cookie"]),
    st.from_regex(rb"\A[A-Za-z0-9\-]{1,20}\Z"),
    _any_bytes,
)
_headers = st.lists(
    st.tuples(
        _header_name,
        st.one_of(_header_bytes, st.integers(8_000, 12_000).map(lambda n: b"v" * n)),
    ),
    max_size=3,
)


@dataclass
class Hostile:
    raw: bytes
    method: str = "GET"
    digit: bool = False  # the query asks for the digit answer, as the server reads it
    structured: bool = True  # built as a request (not random bytes)


@st.composite
def hostile_requests(draw: st.DrawFn) -> Hostile:
    if draw(st.integers(0, 9)) == 0:  # a broken request line, or no HTTP at all
        junk = draw(
            st.one_of(
                st.binary(max_size=200),
                st.sampled_from(
                    [
                        b"GET /v1/check/+48 600 000 003?format=digit HTTP/1.1",
                        b"GET /v1/check/48600000003 HTTP/9.9",
                        b"GET /v1/check/48600000003 FOO/1.1",
                        b"G(T /v1/check/48600000003 HTTP/1.1",
                        b"GET /v1/check/\xff48600000003 HTTP/1.1",
                        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                    ]
                ),
            )
        )
        return Hostile(junk + b"\r\n\r\n", structured=False)
    method = draw(_method)
    pairs = draw(_query)
    query = urllib.parse.urlencode(pairs)
    path = draw(_prefix) + draw(_segment) + (("?" + query) if query else "")
    formats = [v for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True) if k == "format"]
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: hlrd"]
    auth = draw(_authorization)
    if auth is not None:
        lines.append(b"Authorization: " + auth)
    lines += [name + b": " + value for name, value in draw(st.one_of(st.just([]), _headers))]
    lines += [b"Connection: close", b"", b""]
    return Hostile(b"\r\n".join(lines), method, bool(formats) and formats[0] == "digit")


def _exchange(port: int, raw: bytes, head_only: bool) -> tuple[int, dict[str, str], bytes] | None:
    """One request on a fresh connection; (status, headers, body), None if closed unanswered."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        try:
            s.sendall(raw)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    return None
                data += chunk
        except ConnectionResetError:
            return None
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head_only else int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = s.recv(65536)
            assert chunk, "answer cut short"
            body += chunk
        return int(lines[0].split()[1]), headers, body


def _check(port: int, request: Hostile) -> None:
    answer = _exchange(port, request.raw, head_only=request.method == "HEAD")
    if answer is None:  # only a request the server could not read may go unanswered
        assert not request.structured or len(request.raw) > 8190, request
        return
    status, headers, body = answer
    assert status < 500, (request, answer)
    assert status < 400 or not NUMBER_ANYHOW.search(body.decode("latin-1")), (request, answer)
    if status < 400 or request.method == "HEAD":
        return
    json_error = headers.get("content-type", "").startswith("application/json")
    refused_by_parser = json_error and json.loads(body)["error"]["code"] == "bad_request"
    if request.digit and not refused_by_parser:
        assert body == b"1", (request, answer)
    elif body == b"1":  # only a broken request line that asked for the digit answer
        assert not request.structured, (request, answer)
    else:
        assert json_error, (request, answer)
        assert isinstance(json.loads(body)["error"]["code"], str), (request, answer)


def test_fuzz_beside_a_dialer(stack: Stack) -> None:
    dialer = Dialer(stack.port)
    thread = threading.Thread(target=dialer.run, daemon=True)
    thread.start()

    @settings(
        max_examples=200,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=hostile_requests())
    def fuzz(request: Hostile) -> None:
        _check(stack.port, request)

    try:
        fuzz()
    finally:
        dialer.stop.set()
        thread.join(TIMEOUT)
    healthz = _exchange(stack.port, b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n", False)
    code = stack.hlrd.stop()
    log = "".join(stack.hlrd.lines)
    assert dialer.rounds >= 1
    assert dialer.wrong == []
    assert healthz is not None and healthz[0] == 200
    assert code == 0
    assert "Traceback" not in log
    events = [json.loads(line)["event"] for line in stack.hlrd.lines]
    for bad in ("http.internal_error", "http.server_error", "loop.error"):
        assert bad not in events
    assert "http.bad_request" in events
    for number in TEST_NUMBERS:
        assert not re.search(r"\D{0,3}".join(number), log), number
