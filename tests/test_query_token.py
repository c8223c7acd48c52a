"""A token in the query string (`?access_token=`), for dialers that can set only a URL.

It authorizes like `Authorization: Bearer`, and it is never written to a log: every
line the daemon (and aiohttp, and asyncio) writes while requests carry it, valid or
not, well-formed or refused by the parser, answered or 404, failing inside a handler
or not, is scanned for it. The scan reads the rendered output, as an operator's log
file would hold it, and what reached stdout/stderr by any other way.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import aiohttp
import pytest
import structlog
from aiohttp import web

from hlrd.config import HttpConfig
from hlrd.frontends.http_api import make_app
from hlrd.frontends.http_server import HttpServer
from hlrd.logging_setup import configure_logging, flush_logs
from simulator.controller import Simulator

from .daemon_harness import running_daemon
from .test_http_hostile import exchange, get

TOKEN = "tok-Qz.Vw_Xk-Hj~Lp"  # RFC 6750 token68 characters, no digit run to be masked
NUMBER = "+48600000003"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Every log line, rendered as in production (JSON, DEBUG and up)."""
    out = io.StringIO()
    configure_logging("json", "DEBUG", out, cache=False)
    yield out
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)


def _events(out: io.StringIO) -> list[dict[str, object]]:
    flush_logs()  # lines are written every 50 ms
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_a_token_in_the_query_authorizes_like_the_bearer_header(sim: Simulator) -> None:
    async with running_daemon(sim, http={"auth_tokens": ["other", TOKEN]}) as (_, http):

        async def status(url: str, **kw: str) -> tuple[int, str]:
            async with http.get(url, headers=kw) as r:
                return r.status, await r.text()

        digit = f"/v1/check/{NUMBER}?format=digit"
        assert await status(f"{digit}&access_token={TOKEN}") == (200, "1")
        assert (await status(f"/v1/lookup/{NUMBER}?access_token={TOKEN}"))[0] == 200
        assert await status(f"{digit}&access_token=nope") == (401, "1")
        assert await status(f"{digit}&access_token=") == (401, "1")
        assert await status(f"{digit}&access_token={TOKEN[:-1]}") == (401, "1")
        assert await status(f"{digit}&token={TOKEN}") == (401, "1")  # only RFC 6750's name
        assert await status(f"{digit}&access_token=%ED%A0%80") == (401, "1")  # lone surrogate
        # Either way of sending it is enough; a wrong one beside a right one does not hurt.
        assert await status(digit, Authorization=f"Bearer {TOKEN}") == (200, "1")
        assert await status(f"{digit}&access_token={TOKEN}", Authorization="Bearer no") == (
            200,
            "1",
        )
        assert await status(f"{digit}&access_token=no&access_token={TOKEN}") == (200, "1")
        async with http.get(f"/v1/check/{NUMBER}?access_token=nope") as r:
            assert r.status == 401
            assert "access_token" in (await r.json())["error"]["message"]


async def test_the_query_token_never_reaches_a_log(
    sim: Simulator, log_output: io.StringIO, capfd: pytest.CaptureFixture[str]
) -> None:
    q = f"access_token={TOKEN}"
    async with running_daemon(sim, http={"auth_tokens": [TOKEN]}) as (daemon, http):
        for url, expected in [
            (f"/v1/check/{NUMBER}?format=digit&{q}", 200),  # valid: lookup.done is logged
            (f"/v1/check/{NUMBER}?{q}x", 401),  # invalid: http.refused
            (f"/v1/check/hello?{q}", 400),  # valid token, bad number: http.refused
            (f"/v1/nothing/{NUMBER}?{q}", 404),
            (f"/v1/check/?{q}", 404),
        ]:
            async with http.get(url) as r:
                assert r.status == expected, url
        async with http.post(f"/v1/lookup/{NUMBER}?{q}") as r:
            assert r.status == 405
        port = daemon.http_port
        # Refused by the parser (http.bad_request), the token in the line it quotes.
        for raw in [
            f"GET /v1/check/48 600 000 003?format=digit&{q} HTTP/1.1\r\n\r\n".encode(),
            get(f"/v1/check/{NUMBER}?{q}&pad=" + "x" * 9000),  # 414
            get(f"/v1/check/{NUMBER}?{q}", "X-Big: " + "x" * 9000),  # 431
            get(f"/v1/check/{NUMBER}?{q}", f"Authorization: Bearer {TOKEN}\x01"),  # bad bytes
        ]:
            answer = await exchange(port, raw)
            assert answer.status in (400, 414, 431), answer
        # An exception inside a handler whose message quotes the query.
        app = make_app(daemon.service, daemon.metrics, (TOKEN,))
        app.router.add_get("/v1/broken/{number}", _broken)
        server = HttpServer(app, HttpConfig(port=0), daemon.metrics, 10)
        await server.start()
        try:
            answer = await exchange(server.port, get(f"/v1/broken/{NUMBER}?{q}"))
        finally:
            await server.stop()
        assert answer.status == 500
    events = _events(log_output)
    logged = {str(e["event"]) for e in events}
    # The paths above were logged: a scan of an empty log would prove nothing.
    assert {"lookup.done", "http.refused", "http.bad_request", "http.internal_error"} <= logged
    captured = capfd.readouterr()
    for text in (log_output.getvalue(), captured.out, captured.err):
        assert TOKEN not in text
        assert TOKEN[:8] not in text  # not even cut short


async def _broken(request: web.Request) -> web.Response:
    raise KeyError(f"cannot serve {request.query_string}")


async def test_an_access_log_if_one_were_enabled_would_not_carry_the_token(
    log_output: io.StringIO,
) -> None:
    """hlrd runs aiohttp without its access log (paths hold numbers); were one enabled,
    its request line goes through the same scrub as every stdlib record."""

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/v1/check/{number}", ok)
    runner = web.AppRunner(app, access_log=logging.getLogger("aiohttp.access"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/v1/check/1?format=digit&access_token={TOKEN}") as r,
        ):
            assert r.status == 200
    finally:
        await runner.cleanup()
    lines = [e for e in _events(log_output) if e.get("logger") == "aiohttp.access"]
    assert lines, "the access log wrote nothing"
    assert "access_token=***" in str(lines[0]["event"])
    assert TOKEN not in log_output.getvalue()


def test_tokens_in_any_logged_text_are_redacted(log_output: io.StringIO) -> None:
    log = structlog.get_logger("t")
    log.info("x", url=f"/v1/check/1?format=digit&access_token={TOKEN}&x=1")
    log.info("y", header=f"Authorization: Bearer {TOKEN}", short=f"bearer {TOKEN}")
    try:
        raise ValueError(f"GET /v1/check/1?access_token={TOKEN} HTTP/1.1")
    except ValueError:
        log.exception("boom")
    logging.getLogger("aiohttp.server").error("Error handling %s", f"?access_token={TOKEN}")
    events = _events(log_output)
    assert TOKEN not in log_output.getvalue()
    assert events[0]["url"] == "/v1/check/1?format=digit&access_token=***&x=1"
    assert events[1]["header"] == "Authorization: Bearer ***"
    assert "access_token=***" in str(events[2]["exception"])
    assert events[3]["event"] == "Error handling ?access_token=***"
