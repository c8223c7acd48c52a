"""Routes and failover: which provider a number is asked of, and what happens when
that provider stops answering in the middle of a campaign."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest

from hlrd.config import ConfigError, Route, parse_config
from hlrd.daemon import Daemon
from hlrd.upstream.router import Router
from simulator.controller import Simulator
from simulator.vendors.hlr_lookups import DEMO_KEY, DEMO_SECRET

from .conftest import DEMO, ROOT
from .daemon_harness import config_for
from .data_dirs import DATA_ENV


@dataclass(frozen=True)
class P:
    name: str


A, B, C = P("a"), P("b"), P("c")


def test_the_longest_prefix_wins_then_the_country_then_every_provider_in_order() -> None:
    router = Router(
        [A, B, C],
        [
            Route("de", ("b", "a"), countries=("DE",)),
            Route("de-vodafone", ("c",), prefixes=("4917",)),
            Route("de-vodafone-172", ("a",), prefixes=("49172",)),
        ],
    )
    assert router.route("4915112345678", "DE") == ("de", [B, A])
    assert router.route("4917012345678", "DE") == ("de-vodafone", [C])
    assert router.route("4917212345678", "DE") == ("de-vodafone-172", [A])
    assert router.route("48600000001", "PL") == ("default", [A, B, C])


def _routes_config(*routes: dict[str, Any]) -> dict[str, Any]:
    return {
        "upstream": {
            "providers": [{"name": "a"}, {"name": "b"}],
            "routes": list(routes),
        }
    }


@pytest.mark.parametrize(
    ("route", "fragment"),
    [
        ({"countries": ["DE"], "providers": ["x"]}, "providers: no provider named 'x'"),
        ({"countries": ["DE"], "providers": []}, "providers: at least one provider"),
        ({"countries": ["DE"], "providers": ["a", "a"]}, "a provider listed twice"),
        ({"countries": ["XX"], "providers": ["a"]}, "'XX' is not an ISO 3166"),
        ({"prefixes": ["49-17"], "providers": ["a"]}, "'49-17' is not an E.164 prefix"),
        ({"providers": ["a"]}, "a route needs countries or prefixes"),
        ({"countries": ["DE"], "providers": ["a"], "weight": 1}, "weight: unknown key"),
    ],
)
def test_a_route_that_cannot_work_is_named_precisely(route: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_routes_config(route))
    assert fragment in str(err.value)


def test_a_country_in_two_routes_is_refused_rather_than_left_to_their_order() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(
            _routes_config(
                {"countries": ["DE"], "providers": ["a"]},
                {"countries": ["AT", "de"], "providers": ["b"]},
            )
        )
    assert "upstream.routes[1]: 'DE' is already in upstream.routes[0]" in str(err.value)


def test_prefixes_are_taken_with_or_without_a_plus() -> None:
    cfg = parse_config(_routes_config({"prefixes": ["+4917"], "providers": ["b", "a"]}))
    assert cfg.routes == (Route("route0", ("b", "a"), (), ("4917",)),)


# -- through a daemon: the SMPP simulator and the hlr-lookups imitation ---------------


def _vendor(port: int, **changes: Any) -> dict[str, Any]:
    return {
        "name": "hlrl",
        "type": "hlr_lookups",
        "base_url": f"http://127.0.0.1:{port}/api/v2",
        "api_key": DEMO_KEY,
        "api_secret": DEMO_SECRET,
        "tps": 1000,
        "request_timeout_s": 2,
        **changes,
    }


async def test_each_number_goes_to_its_routes_first_provider(demo: Any) -> None:
    async with Simulator(demo, http_port=0) as sim:
        assert sim.http_port is not None
        data = config_for(sim, cache={"enabled": False})
        data["upstream"]["providers"].append(_vendor(sim.http_port))
        data["upstream"]["routes"] = [
            {"name": "egypt-roamers", "prefixes": ["48600000003"], "providers": ["hlrl", "sim"]},
            {"name": "germany", "countries": ["DE"], "providers": ["hlrl"]},
        ]
        daemon = Daemon(parse_config(data, env=DATA_ENV()))
        await daemon.start()
        try:
            for p in daemon.service.providers:
                await p.wait_ready()
            results = {
                n: await daemon.service.lookup(daemon.service.normalize(n))
                for n in ("48600000001", "48600000003", "4915112345678")
            }
        finally:
            await daemon.stop()
    providers = {n: r.provider for n, r in results.items()}
    assert providers == {"48600000001": "sim", "48600000003": "hlrl", "4915112345678": "hlrl"}
    assert results["48600000003"].visited_country == "EG"


# -- real processes: the vendor is killed in the middle of the load ------------------

LOAD = 240
KILL_AFTER = 60  # answers, then the vendor's process is killed


@contextmanager
def _process(args: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def _event(stream: IO[str], name: str) -> dict[str, Any]:
    """The first log event of this name (json lines); the process's own words. The
    rest of its log is drained in the background: a full pipe would stop it."""
    for line in stream:
        if line.startswith("{"):
            event: dict[str, Any] = json.loads(line)
            if event.get("event") == name:
                threading.Thread(target=stream.read, daemon=True).start()
                return event
    raise AssertionError(f"the process ended before logging {name}")


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


DAEMON_CONFIG = """
[http]
host = "127.0.0.1"
port = 0

[logging]
format = "json"
level = "INFO"

[lookup]
shutdown_grace_s = 1

[cache]
enabled = false

[upstream.breaker]
failures = 3
cooldown_s = 3600

[[upstream.providers]]
name = "hlrl"
type = "hlr_lookups"
base_url = "http://127.0.0.1:{vendor_port}/api/v2"
api_key = "{key}"
api_secret = "{secret}"
tps = 1000
request_timeout_s = 2
max_attempts = 2

[[upstream.providers]]
name = "sim"
port = {smpp_port}
password = "secret"
binds = 2

[[upstream.routes]]
name = "poland"
countries = ["PL"]
providers = ["hlrl", "sim"]
"""


async def test_a_vendor_killed_mid_load_loses_no_lookup_they_go_to_the_next_provider(
    sim: Simulator, tmp_path: Path
) -> None:
    vendor_args = ["--smpp-port", "0", "--http-port", "0", "--log-format", "json"]
    with _process(["-m", "simulator", "--scenario", str(DEMO), *vendor_args]) as vendor:
        assert vendor.stderr is not None
        listening = await asyncio.to_thread(_event, vendor.stderr, "sim.listening")
        config = tmp_path / "hlrd.toml"
        config.write_text(
            DAEMON_CONFIG.format(
                vendor_port=_port(listening["http"]),
                key=DEMO_KEY,
                secret=DEMO_SECRET,
                smpp_port=sim.smpp_port,
            )
        )
        with _process(["-m", "hlrd", "run", "--config", str(config)]) as daemon:
            assert daemon.stderr is not None
            started = await asyncio.to_thread(_event, daemon.stderr, "hlrd.started")
            base = f"http://127.0.0.1:{_port(started['http'])}"
            answers = await _load(base, vendor)
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/metrics") as r:
                    metrics = await r.text()
    outcomes = Counter(a["outcome"] for a in answers)
    assert len(answers) == LOAD
    assert set(outcomes) <= {"ok", "partial"}, outcomes  # none lost: failed/timeout absent
    by = Counter(a["provider"] for a in answers)
    assert by["hlrl"] >= KILL_AFTER and by["sim"] >= LOAD - KILL_AFTER - 48, by
    assert 'hlrd_upstream_circuit_opened_total{provider="hlrl"} 1.0' in metrics
    assert 'hlrd_upstream_circuit_state{provider="hlrl"} 2.0' in metrics


async def _load(base: str, vendor: subprocess.Popen[str]) -> list[dict[str, Any]]:
    """LOAD distinct Polish numbers, 16 at a time; the vendor dies after KILL_AFTER."""
    numbers = iter(f"4860{i:07d}" for i in range(1000, 1000 + LOAD))
    answers: list[dict[str, Any]] = []

    async def worker(http: aiohttp.ClientSession) -> None:
        for number in numbers:
            async with http.get(f"{base}/v1/lookup/{number}") as r:
                answers.append(await r.json())
            if len(answers) == KILL_AFTER:
                vendor.kill()

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(worker(http) for _ in range(16)))
    return answers


async def test_a_vendor_back_on_its_feet_is_probed_and_taken_back(
    sim: Simulator, tmp_path: Path
) -> None:
    """Open, a failed probe, then the vendor restarts on its port: the next probe
    closes the circuit and the route's first provider answers again."""
    vendor_args = ["--smpp-port", "0", "--log-format", "json"]
    sim_args = ["-m", "simulator", "--scenario", str(DEMO), *vendor_args]
    with _process([*sim_args, "--http-port", "0"]) as first:
        assert first.stderr is not None
        port = _port((await asyncio.to_thread(_event, first.stderr, "sim.listening"))["http"])
    config = tmp_path / "hlrd.toml"
    text = DAEMON_CONFIG.format(
        vendor_port=port, key=DEMO_KEY, secret=DEMO_SECRET, smpp_port=sim.smpp_port
    )
    config.write_text(
        text.replace("failures = 3", "failures = 1").replace("cooldown_s = 3600", "cooldown_s = 0")
    )
    with _process(["-m", "hlrd", "run", "--config", str(config)]) as daemon:
        assert daemon.stderr is not None
        started = await asyncio.to_thread(_event, daemon.stderr, "hlrd.started")
        base = f"http://127.0.0.1:{_port(started['http'])}"
        async with aiohttp.ClientSession() as http:

            async def ask(number: str) -> tuple[str, str]:
                async with http.get(f"{base}/v1/lookup/{number}") as r:
                    answer = await r.json()
                async with http.get(f"{base}/metrics") as r:
                    states = [x for x in (await r.text()).splitlines() if "circuit_state" in x]
                hlrl = next(x for x in states if 'provider="hlrl"' in x)
                return answer["provider"], hlrl.rsplit(" ", 1)[1]

            opened = await ask("48600000001")  # refused connection: opens (failures = 1)
            probe_failed = await ask("48600000002")  # cool-down 0: a probe, which fails
            with _process([*sim_args, "--http-port", str(port)]) as second:
                assert second.stderr is not None
                await asyncio.to_thread(_event, second.stderr, "sim.listening")
                closed = await ask("48600000003")
    assert opened == ("sim", "2.0")
    assert probe_failed == ("sim", "2.0")
    assert closed == ("hlrl", "0.0")
