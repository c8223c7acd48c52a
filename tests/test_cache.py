"""The result cache as a dialer meets it: repeated checks answered without a paid
lookup, for as long as each kind of answer stays true, and never older than asked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from hlrd.daemon import Daemon
from simulator.controller import Simulator

from .daemon_harness import running_daemon
from .scrape import scrape

AT_HOME = "48600000001"
EGYPT = "48600000003"
ABSENT = "48600000005"
UNKNOWN_SUBSCRIBER = "48600000006"
NEVER_ANSWERS = "48600000090"


class FakeClock:
    """Wall-clock seconds the test moves by hand: TTLs without waiting."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def cached_daemon(
    sim: Simulator, **sections: dict[str, Any]
) -> AsyncIterator[tuple[Daemon, aiohttp.ClientSession, FakeClock]]:
    async with running_daemon(sim, **sections) as (daemon, http):
        clock = FakeClock()
        daemon.cache.clock = clock
        yield daemon, http, clock


async def _get(http: aiohttp.ClientSession, path: str) -> tuple[int, dict[str, Any], str | None]:
    async with http.get(path) as r:
        return r.status, await r.json(), r.headers.get("Age")


def _submits(sim: Simulator) -> int:
    assert sim.smsc is not None
    return sim.smsc.stats.submits


async def test_a_repeated_check_is_answered_from_the_cache(sim: Simulator) -> None:
    async with cached_daemon(sim) as (_, http, clock):
        status1, first, age1 = await _get(http, f"/v1/lookup/{EGYPT}")
        clock.now += 30
        status2, again, age2 = await _get(http, "/v1/lookup/+48 600 000 003")
        async with http.get(f"/v1/check/{EGYPT}?format=digit") as r:
            digit, digit_age = await r.text(), r.headers.get("Age")
    assert (status1, status2) == (200, 200)
    assert first["cache"] == {"hit": False, "age_s": 0.0, "stale": False} and age1 is None
    assert again["cache"] == {"hit": True, "age_s": 30.0, "stale": False}
    assert age2 == "30" and digit_age == "30" and digit == "1"
    assert again["visited_country"] == "EG" and again["msisdn"] == EGYPT

    def answer(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k not in ("lookup_id", "cache", "timings")}

    assert answer(again) == answer(first)  # the very answer, every field of it
    assert again["lookup_id"] != first["lookup_id"]
    assert again["timings"]["upstream_ms"] is None  # nothing was sent
    assert _submits(sim) == 1


async def test_each_kind_of_answer_lives_its_own_time(sim: Simulator) -> None:
    """Defaults: absent 10 min, connected 2 h, unknown subscriber 3 days."""
    async with cached_daemon(sim) as (_, http, clock):
        for n in (ABSENT, AT_HOME, UNKNOWN_SUBSCRIBER):
            await _get(http, f"/v1/lookup/{n}")
        clock.now += 601
        hits = {
            n: (await _get(http, f"/v1/lookup/{n}"))[1]["cache"]["hit"] for n in (ABSENT, AT_HOME)
        }
        clock.now += 2 * 3600
        home_later = (await _get(http, f"/v1/lookup/{AT_HOME}"))[1]["cache"]
        clock.now += 2 * 86400
        unknown_later = (await _get(http, f"/v1/lookup/{UNKNOWN_SUBSCRIBER}"))[1]["cache"]
    assert hits == {ABSENT: False, AT_HOME: True}
    assert home_later["hit"] is False  # 2 h 10 min: looked up again
    assert unknown_later["hit"] is True and unknown_later["age_s"] > 2 * 86400


async def test_max_age_and_fresh_are_the_callers_say(sim: Simulator) -> None:
    async with cached_daemon(sim) as (_, http, clock):
        await _get(http, f"/v1/lookup/{AT_HOME}")
        clock.now += 100
        young = (await _get(http, f"/v1/lookup/{AT_HOME}?max_age=50"))[1]["cache"]
        clock.now += 10
        old_enough = (await _get(http, f"/v1/lookup/{AT_HOME}?max_age=50"))[1]["cache"]
        forced = (await _get(http, f"/v1/lookup/{AT_HOME}?fresh=1"))[1]["cache"]
    assert young["hit"] is False  # 100 s > 50: asked the provider again
    assert old_enough == {"hit": True, "age_s": 10.0, "stale": False}  # the new answer
    assert forced["hit"] is False
    assert _submits(sim) == 3


async def test_a_bad_max_age_or_fresh_is_refused_naming_it(sim: Simulator) -> None:
    async with running_daemon(sim) as (_, http):
        answers = []
        for query in ("max_age=-1", "max_age=1.5", "max_age=x", "fresh=maybe"):
            async with http.get(f"/v1/lookup/{AT_HOME}?{query}") as r:
                answers.append((r.status, (await r.json())["error"]["field"]))
        async with http.get(f"/v1/check/{AT_HOME}?format=digit&max_age=-1") as r:
            digit = (r.status, await r.text())
    assert answers == [
        (400, "max_age"),
        (400, "max_age"),
        (400, "max_age"),
        (400, "fresh"),
    ]
    assert digit == (400, "1")


async def test_a_dead_number_does_not_hammer_the_provider(sim: Simulator) -> None:
    """A lookup that timed out is remembered for a minute: the dialer's retries in
    that minute get the same "do not call" at once, and no submit_sm."""
    lookup = {"timeout_s": 0.3}
    async with cached_daemon(sim, lookup=lookup) as (_, http, clock):
        s1, first, _ = await _get(http, f"/v1/lookup/{NEVER_ANSWERS}")
        clock.now += 30
        s2, retry, _ = await _get(http, f"/v1/lookup/{NEVER_ANSWERS}")
        sent_before_expiry = _submits(sim)
        clock.now += 31
        s3, later, _ = await _get(http, f"/v1/lookup/{NEVER_ANSWERS}")
    assert (s1, s2, s3) == (504, 504, 504)
    assert first["cache"]["hit"] is False and retry["cache"]["hit"] is True
    assert later["cache"]["hit"] is False
    assert sent_before_expiry == 1 and _submits(sim) == 2


async def test_concurrent_misses_share_one_query(sim: Simulator) -> None:
    async with cached_daemon(sim) as (_, http, _clock):
        answers = await asyncio.gather(*(_get(http, f"/v1/lookup/{EGYPT}") for _ in range(10)))
    assert {a[1]["visited_country"] for a in answers} == {"EG"}
    assert _submits(sim) == 1


async def test_cost_spent_and_saved_are_counted(sim: Simulator) -> None:
    provider = {"price": 0.012, "currency": "EUR"}
    async with cached_daemon(sim, provider=provider) as (_, http, _clock):
        await _get(http, f"/v1/lookup/{AT_HOME}")
        for _ in range(3):
            await _get(http, f"/v1/lookup/{AT_HOME}")
        m = await scrape(http)
    spent = m.value("hlrd_cost_spent_total", provider="sim", currency="EUR")
    saved = m.value("hlrd_cost_saved_total", provider="sim", currency="EUR")
    assert spent is not None and abs(spent - 0.012) < 1e-9
    assert saved is not None and abs(saved - 0.036) < 1e-9
    assert m.value("hlrd_cache_lookups_total", result="memory") == 3
    assert m.value("hlrd_cache_lookups_total", result="miss") == 1


async def test_a_stale_answer_is_served_only_when_allowed_and_marked(demo: Any) -> None:
    """serve_stale_s on: the provider gone, an expired answer comes back marked stale.
    Off (the default): the dialer hears the failure."""
    async with Simulator(demo) as sim:
        for stale_s, expected in ((0, None), (86400, "EG")):
            cache = {"serve_stale_s": stale_s}
            async with cached_daemon(sim, cache=cache) as (d, http, clock):
                await _get(http, f"/v1/lookup/{EGYPT}")
                clock.now += 5 * 3600  # past the roaming answer's 4 h
                await d.providers[0].stop()  # every lookup now fails at once
                _, answer, _ = await _get(http, f"/v1/lookup/{EGYPT}")
            assert answer["visited_country"] == expected
            if expected:
                assert answer["cache"]["stale"] is True and answer["cache"]["hit"] is True
                assert answer["outcome"] == "ok"
