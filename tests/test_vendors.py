"""Every HTTP vendor adapter, configured as an operator would, in a real daemon in
front of its imitation on the simulator's HTTP port: the same numbers give the same
decisions whichever vendor answers (what each vendor cannot tell aside)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from hlrd.config import HTTP_PROVIDER_TYPES, parse_config
from hlrd.daemon import Daemon
from hlrd.domain.result import Outcome, Reachability, RoamingStatus
from hlrd.upstream.factory import VENDORS
from simulator.controller import Simulator
from simulator.scenario import Scenario
from simulator.vendors import demo_provider

from .conftest import ROOT
from .daemon_harness import config_for
from .data_dirs import DATA_ENV

AT_HOME, IN_GERMANY, IN_EGYPT, ABSENT = "48600000001", "48600000002", "48600000003", "48600000005"


def test_every_configurable_type_has_an_adapter_and_an_imitation() -> None:
    assert set(HTTP_PROVIDER_TYPES) == set(VENDORS)
    for kind in HTTP_PROVIDER_TYPES:
        assert demo_provider(kind, 1)["type"] == kind


def test_the_generic_json_mapping_of_the_simulators_api_is_the_documented_one() -> None:
    from simulator.http_api import GENERIC_JSON_MAPPING

    from .test_generic_json import example_mapping

    assert example_mapping(0) == GENERIC_JSON_MAPPING


def test_the_demo_configs_vonage_key_is_the_imitations() -> None:
    from simulator.vendors.vonage import DEMO_PRIVATE_KEY

    assert (ROOT / "config" / "demo-vonage-private-key.pem").read_text() == DEMO_PRIVATE_KEY


@pytest.fixture
async def vendor_sim(demo: Scenario) -> AsyncIterator[Simulator]:
    async with Simulator(demo, http_port=0) as s:
        yield s


@pytest.mark.parametrize("kind", HTTP_PROVIDER_TYPES)
async def test_each_vendor_through_the_daemon_tells_home_roaming_and_absent(
    vendor_sim: Simulator, kind: str
) -> None:
    assert vendor_sim.http_port is not None
    data = config_for(vendor_sim, cache={"enabled": False})
    data["upstream"]["providers"] = [{**demo_provider(kind, vendor_sim.http_port), "tps": 1000}]
    daemon = Daemon(parse_config(data, env=DATA_ENV()))
    await daemon.start()
    try:
        s = daemon.service
        home, germany, egypt, absent = [
            await s.lookup(s.normalize(n)) for n in (AT_HOME, IN_GERMANY, IN_EGYPT, ABSENT)
        ]
    finally:
        await daemon.stop()
    assert {r.provider for r in (home, germany, egypt, absent)} == {kind}
    assert (home.outcome, home.reachability, home.roaming) == (
        Outcome.OK,
        Reachability.CONNECTED,
        RoamingStatus.NOT_ROAMING,
    )
    assert (germany.roaming, germany.visited_country) == (RoamingStatus.ROAMING, "DE")
    assert (egypt.roaming, egypt.visited_country) == (RoamingStatus.ROAMING, "EG")
    assert absent.reachability is Reachability.ABSENT
    assert (s.decide(home).digit, s.decide(egypt).digit) == ("0", "1")


async def test_an_http_providers_rate_queue_and_throttling_are_in_the_metrics(
    vendor_sim: Simulator,
) -> None:
    """The dashboard's upstream panels are not empty for an HTTP provider: a 429 is
    counted and halves its rate."""
    assert vendor_sim.http_port is not None
    data = config_for(vendor_sim, cache={"enabled": False})
    provider = {**demo_provider("hlr_lookups", vendor_sim.http_port), "tps": 400}
    data["upstream"]["providers"] = [provider]
    vendor_sim.hlr_lookups.retry_after = "0"
    vendor_sim.hlr_lookups.faults.append("throttle")
    daemon = Daemon(parse_config(data, env=DATA_ENV()))
    await daemon.start()
    try:
        result = await daemon.service.lookup(daemon.service.normalize(AT_HOME))
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{daemon.http_port}/metrics") as r:
                text = await r.text()
    finally:
        await daemon.stop()
    assert result.outcome is Outcome.OK  # the 429 was retried
    assert 'hlrd_upstream_throttled_total{provider="hlr_lookups"} 1.0' in text
    assert 'hlrd_upstream_rate_tps{provider="hlr_lookups"} 200.0' in text
    assert 'hlrd_upstream_queue_limit{provider="hlr_lookups"} 10000.0' in text
    assert 'hlrd_upstream_queued{provider="hlr_lookups"} 0.0' in text
    assert 'hlrd_upstream_window_in_flight{provider="hlr_lookups"} 0.0' in text
