"""The HTTP provider client against a real server on 127.0.0.1 that answers what the
test scripts: retried when worth it, at once when not, never past the deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from hlrd.upstream.http.client import MAX_ANSWER_BYTES, HttpCallFailed, ProviderClient
from hlrd.upstream.http.retry import RetryPolicy


class Scripted:
    """Answers each request with the next (status, headers, body) of its script."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str], bytes]] = []
        self.seen: list[dict[str, str]] = []
        self.hang = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(dict(request.headers))
        if not self.script:
            await self.hang.wait()  # never set: the client's timeout must end it
        status, headers, body = self.script.pop(0)
        return web.Response(status=status, headers=headers, body=body)


@pytest.fixture
async def server() -> AsyncIterator[tuple[Scripted, str]]:
    scripted = Scripted()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", scripted.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield scripted, f"http://127.0.0.1:{port}"
    scripted.hang.set()
    await runner.cleanup()


class Slept:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


_started: list[ProviderClient] = []


@pytest.fixture(autouse=True)
async def _stop_clients() -> AsyncIterator[None]:
    yield
    while _started:
        await _started.pop().stop()


async def _client(base_url: str, slept: Slept, **kw: Any) -> ProviderClient:
    client = ProviderClient(
        base_url,
        tps=10_000,
        policy=RetryPolicy(attempts=3, base_delay_s=0.2, max_delay_s=2.0),
        sleep=slept,
        rand=lambda: 1.0,
        clock=lambda: 1_790_000_000.0,
        **kw,
    )
    await client.start()
    _started.append(client)
    return client


def _deadline(seconds: float = 30.0) -> float:
    return asyncio.get_running_loop().time() + seconds


async def test_a_429_waits_what_retry_after_says_then_succeeds(
    server: tuple[Scripted, str],
) -> None:
    scripted, url = server
    scripted.script = [(429, {"Retry-After": "3"}, b""), (200, {}, b'{"ok":true}')]
    slept = Slept()
    client = await _client(url, slept)
    signed = iter(range(100))
    answer = await client.call(
        "POST", "/x", b"{}", lambda: {"X-Sig": str(next(signed))}, _deadline()
    )
    await client.stop()
    assert (answer.status, answer.body, answer.attempts) == (200, b'{"ok":true}', 2)
    assert slept.waits == [3.0]
    assert [h["X-Sig"] for h in scripted.seen] == ["0", "1"]  # signed anew each time
    assert client.rate.current < client.rate.configured  # the provider said slow down


async def test_server_errors_are_retried_then_fail_with_the_last_status(
    server: tuple[Scripted, str],
) -> None:
    scripted, url = server
    scripted.script = [(503, {}, b"down")] * 3
    slept = Slept()
    client = await _client(url, slept)
    with pytest.raises(HttpCallFailed) as err:
        await client.call("GET", "/x", None, dict, _deadline())
    await client.stop()
    assert (err.value.outcome, err.value.status, err.value.attempts) == ("failed", 503, 3)
    assert slept.waits == [0.2, 0.4]  # full jitter at its top (rand = 1)


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 422])
async def test_an_answer_about_the_request_comes_back_at_once(
    server: tuple[Scripted, str], status: int
) -> None:
    scripted, url = server
    scripted.script = [(status, {"Content-Type": "application/json"}, b'{"error":"x"}')]
    slept = Slept()
    client = await _client(url, slept)
    answer = await client.call("POST", "/x", b"{}", dict, _deadline())
    await client.stop()
    assert (answer.status, answer.attempts, slept.waits) == (status, 1, [])


async def test_nothing_listening_is_retried_then_fails_without_a_status() -> None:
    slept = Slept()
    client = await _client("http://127.0.0.1:1", slept)
    with pytest.raises(HttpCallFailed) as err:
        await client.call("GET", "/x", None, dict, _deadline())
    await client.stop()
    assert (err.value.outcome, err.value.status, err.value.attempts) == ("failed", None, 3)


async def test_a_provider_that_never_answers_times_out_within_the_deadline(
    server: tuple[Scripted, str],
) -> None:
    _, url = server  # an empty script: every request hangs
    slept = Slept()
    client = await _client(url, slept, request_timeout_s=0.05)
    with pytest.raises(HttpCallFailed) as err:
        await client.call("GET", "/x", None, dict, _deadline())
    await client.stop()
    assert (err.value.outcome, err.value.attempts) == ("timeout", 3)


async def test_no_backoff_is_slept_past_the_lookups_deadline(
    server: tuple[Scripted, str],
) -> None:
    scripted, url = server
    scripted.script = [(429, {"Retry-After": "20"}, b"")]
    slept = Slept()
    client = await _client(url, slept)
    with pytest.raises(HttpCallFailed) as err:
        await client.call("GET", "/x", None, dict, _deadline(5.0))
    await client.stop()
    assert (err.value.outcome, err.value.attempts, slept.waits) == ("throttled", 1, [])


async def test_an_answer_too_large_to_be_one_fails_the_call(
    server: tuple[Scripted, str],
) -> None:
    scripted, url = server
    scripted.script = [(200, {}, b"x" * (MAX_ANSWER_BYTES + 1))]
    slept = Slept()
    client = await _client(url, slept)
    with pytest.raises(HttpCallFailed) as err:
        await client.call("GET", "/x", None, dict, _deadline())
    await client.stop()
    assert (err.value.outcome, err.value.status) == ("failed", 200)
