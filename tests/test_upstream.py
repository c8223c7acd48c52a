"""The SMPP upstream under the conditions a real provider creates."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from hlrd.domain.result import Outcome
from hlrd.upstream.smpp_provider import SmppProvider
from simulator.controller import Simulator
from simulator.scenario import Latency, Rule, Scenario

from .daemon_harness import running_daemon
from .data_dirs import DATA_ENV


async def test_concurrent_lookups_of_one_number_share_one_upstream_query(sim: Simulator) -> None:
    async with running_daemon(sim) as (daemon, _):
        svc = daemon.service
        number = svc.normalize("48600000003")
        results = await asyncio.gather(*(svc.lookup(number) for _ in range(10)))
    assert sim.stats.submits == 1
    assert {r.roaming.value for r in results} == {"ROAMING"}
    assert len({r.lookup_id for r in results}) == 10  # each caller keeps its own id


async def test_a_caller_that_gives_up_does_not_cancel_the_shared_query(sim: Simulator) -> None:
    """An HTTP client that disconnects cancels its own wait, not the lookup others share."""
    submitted = asyncio.Event()
    assert sim.smsc is not None
    sim.smsc.submit_listeners.append(lambda _: submitted.set())
    async with running_daemon(sim) as (daemon, _):
        svc = daemon.service
        number = svc.normalize("48600000011")  # slow HLR: 40-60 ms
        first = asyncio.create_task(svc.lookup(number))
        second = asyncio.create_task(svc.lookup(number))
        await submitted.wait()
        first.cancel()
        result = await second
    assert first.cancelled()
    assert result.outcome is Outcome.OK
    assert sim.stats.submits == 1


async def test_receipt_that_overtakes_its_submit_resp_is_matched(sim: Simulator) -> None:
    async with running_daemon(sim) as (daemon, _):
        svc = daemon.service
        result = await svc.lookup(svc.normalize("48600000091"))
    assert result.outcome is Outcome.OK
    assert result.visited_country == "DE"


async def test_decimal_receipt_ids_are_matched_to_hex_submit_ids(demo: Scenario) -> None:
    async with Simulator(demo.with_smpp(receipt_id_format="decimal")) as sim:
        async with running_daemon(sim) as (daemon, _):
            svc = daemon.service
            result = await svc.lookup(svc.normalize("48600000002"))
    assert result.outcome is Outcome.OK
    assert result.visited_country == "DE"


async def test_a_receipt_never_answers_another_lookup_whose_id_reads_alike(demo: Scenario) -> None:
    """Ids 0x0A and 0x10: "10" read as decimal is hex "a". A receipt for 0x10 that
    overtakes its submit_sm_resp must not answer the lookup still waiting as 0x0A."""
    silent = Rule(prefix="48600000201", status="live", fault="no_receipt")
    scenario = replace(demo, rules=(*demo.rules, silent))
    submitted = asyncio.Event()
    async with Simulator(scenario) as sim:
        assert sim.smsc is not None
        sim.smsc.submit_listeners.append(lambda n: submitted.set() if n == silent.prefix else None)
        async with running_daemon(sim, provider={"result_timeout_s": 3}) as (daemon, _):
            svc = daemon.service
            for i in range(9):  # message ids 01..09
                await svc.lookup(svc.normalize(f"486000003{i:02d}"))
            waiting = asyncio.create_task(svc.lookup(svc.normalize(silent.prefix)))  # id 0A
            await submitted.wait()
            for i in range(5):  # ids 0B..0F
                await svc.lookup(svc.normalize(f"486000004{i:02d}"))
            result = await svc.lookup(svc.normalize("48600000091"))  # id 10, receipt first
            assert not waiting.done()  # still waiting for its own receipt
            waiting.cancel()
    assert result.outcome is Outcome.OK
    assert result.visited_country == "DE"


async def test_no_receipt_times_out_with_a_clear_outcome(sim: Simulator) -> None:
    async with running_daemon(sim, provider={"result_timeout_s": 0.2}) as (_, http):
        async with http.get("/v1/lookup/48600000090") as r:
            status, body = r.status, await r.json()
        async with http.get("/v1/check/48600000090", params={"format": "digit"}) as r:
            digit = await r.text()
    assert status == 504
    assert body["outcome"] == "timeout"
    assert "no receipt" in body["error"]
    assert digit == "1"  # fail closed


async def test_the_overall_lookup_deadline_wins_over_a_slower_provider(sim: Simulator) -> None:
    """lookup.timeout_s shorter than the provider's result timeout still bounds a lookup."""
    async with running_daemon(
        sim, lookup={"timeout_s": 0.2}, provider={"result_timeout_s": 30}
    ) as (_, http):
        async with http.get("/v1/lookup/48600000090") as r:
            status, body = r.status, await r.json()
    assert status == 504
    assert body["outcome"] == "timeout"
    assert body["error"] == "lookup timed out"


async def test_throttling_from_the_provider_slows_down_and_loses_nothing(demo: Scenario) -> None:
    async with Simulator(demo.with_smpp(tps=50)) as sim:
        async with running_daemon(sim, provider={"tps": 400}) as (daemon, _):
            svc = daemon.service
            numbers = [svc.normalize(f"486000001{i:02d}") for i in range(80)]
            results = await asyncio.gather(*(svc.lookup(n) for n in numbers))
            metrics = daemon.metrics.render().decode()
            provider = daemon.providers[0]
            assert isinstance(provider, SmppProvider)
            rate_now = provider.rate.current
    assert sim.stats.throttled > 0
    assert all(r.outcome in (Outcome.OK, Outcome.PARTIAL) for r in results)
    assert 'hlrd_upstream_throttled_total{provider="sim"}' in metrics
    assert rate_now < 400  # slowed down after ESME_RTHROTTLED


async def test_a_bind_killed_mid_flight_loses_no_lookup(demo: Scenario) -> None:
    # Every subscriber answers after 40-60 ms, so all lookups are in flight when the
    # links die.
    slow = replace(demo, default_latency=Latency(40.0, 60.0))
    arrived = asyncio.Event()
    seen: set[str] = set()

    def on_submit(number: str) -> None:
        seen.add(number)
        if len(seen) == 20:
            arrived.set()

    async with Simulator(slow) as sim:
        assert sim.smsc is not None
        sim.smsc.submit_listeners.append(on_submit)
        async with running_daemon(sim) as (daemon, _):
            svc = daemon.service
            await svc.wait_ready()
            numbers = [svc.normalize(f"4860010{i:04d}") for i in range(20)]
            lookups = asyncio.gather(*(svc.lookup(n) for n in numbers))
            async with asyncio.timeout(30):  # a guard against hanging, not a measurement
                await arrived.wait()
            for conn in list(sim.smsc.connections):
                conn.abort()
            results = await lookups
            metrics = daemon.metrics.render().decode()
    assert [r.outcome for r in results if r.outcome not in (Outcome.OK, Outcome.PARTIAL)] == []
    assert 'hlrd_upstream_retries_total{provider="sim"}' in metrics


async def test_transmitter_receiver_pair_mode(sim: Simulator) -> None:
    async with running_daemon(sim, provider={"bind_mode": "tx_rx", "binds": 1}) as (daemon, _):
        svc = daemon.service
        result = await svc.lookup(svc.normalize("48600000002"))
    assert result.outcome is Outcome.OK
    assert result.visited_country == "DE"
    assert sim.stats.binds == 2


async def test_failover_to_the_next_provider(sim: Simulator, demo: Scenario) -> None:
    dead = Simulator(demo)
    await dead.start()
    dead_port = dead.smpp_port
    await dead.stop()
    providers = {
        "upstream": {
            "providers": [
                {
                    "name": "down",
                    "port": dead_port,
                    "password": "secret",
                    "result_timeout_s": 1,
                    "reconnect_min_s": 0.01,
                    "reconnect_max_s": 0.05,
                },
                {"name": "sim", "port": sim.smpp_port, "password": "secret"},
            ]
        }
    }
    from hlrd.config import parse_config
    from hlrd.daemon import Daemon

    from .daemon_harness import config_for

    data = config_for(sim)
    data.update(providers)
    daemon = Daemon(parse_config(data, env=DATA_ENV()))
    await daemon.start()
    try:
        await daemon.service.wait_ready()
        result = await daemon.service.lookup(daemon.service.normalize("48600000003"))
    finally:
        await daemon.stop()
    assert result.provider == "sim"
    assert result.outcome is Outcome.OK


async def test_graceful_shutdown_answers_every_request_in_flight(sim: Simulator) -> None:
    submitted = asyncio.Event()
    assert sim.smsc is not None
    sim.smsc.submit_listeners.append(lambda _: submitted.set())
    async with running_daemon(sim, lookup={"shutdown_grace_s": 0.1}) as (daemon, http):
        pending = asyncio.create_task(http.get("/v1/check/48600000090"))  # never answered
        await submitted.wait()
        stopping = asyncio.create_task(daemon.stop())
        resp = await pending
        body = await resp.json()
        await stopping
    assert resp.status == 200
    assert body["decision"] == "unknown"
    assert body["call"] is False
    assert body["lookup"]["outcome"] == "failed"
    assert "shutting down" in body["lookup"]["error"]
    assert not daemon.service.accepting


async def test_a_daemon_stopped_while_its_binds_open_stops(sim: Simulator) -> None:
    """SIGTERM right after start: stop() comes while the binds are still opening. Its
    cancel of a bind task could be lost in connect() (Python 3.11's wait_for returns
    a connection that is ready) and the bind, opened after stop() closed the links,
    was waited for forever."""
    async with asyncio.timeout(10):
        for mode in ("transceiver", "tx_rx"):
            async with running_daemon(sim, provider={"bind_mode": mode}):
                pass
    assert sim.stats.binds > 0  # the binds were under way when stop() came
