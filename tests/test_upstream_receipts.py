"""A lookup is resolved only by a receipt that provably belongs to it.

Message ids alone prove nothing: a provider that restarts numbers its messages from
1 again, receipts of dropped links arrive late on new ones, and duplicates happen.
Each test here made hlrd hand one subscriber's HLR answer to another before the fix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from hlrd.domain.result import Outcome, Reachability, RoamingStatus
from hlrd.smpp.pdu import DeliverSm, SubmitSm
from hlrd.upstream.smpp_provider import SmppProvider
from simulator.controller import Simulator
from simulator.scenario import Rule, Scenario
from simulator.smsc import Smsc

from .daemon_harness import running_daemon

ROAMING_EG = "48600000003"
AT_HOME = "48600000001"


def _receipt(smsc: Smsc, number: str, message_id: str, addressed: bool = True) -> DeliverSm:
    """The receipt the simulator would send for `number` under `message_id`."""
    answer = smsc.scenario.answer(number)
    pdu = smsc.build_receipt(
        SubmitSm(source_addr="hlrd", destination_addr=number), message_id, answer
    )
    if not addressed:  # some SMSCs leave the receipt's addresses empty
        pdu.source_addr = pdu.destination_addr = ""
    return pdu


def _event(listeners: list[Callable[[str], None]], wanted: str, count: int = 1) -> asyncio.Event:
    """An event set once `wanted` has been heard `count` times."""
    done = asyncio.Event()
    seen = [0]

    def hear(what: str) -> None:
        if what == wanted:
            seen[0] += 1
            if seen[0] >= count:
                done.set()

    listeners.append(hear)
    return done


async def _deliver(smsc: Smsc, receipt: DeliverSm) -> None:
    """Send a receipt to hlrd and return once hlrd has acknowledged it."""
    acked = _event(smsc.receipt_listeners, "acked")
    smsc.send_receipt("hlrd", receipt)
    await acked.wait()


def _provider(daemon: object) -> SmppProvider:
    provider = daemon.providers[0]  # type: ignore[attr-defined]
    assert isinstance(provider, SmppProvider)
    return provider


async def test_a_late_duplicate_is_not_taken_by_a_reused_id(sim: Simulator) -> None:
    """A duplicate receipt for the Egypt roamer (id 1) waits; the provider restarts
    (ids from 1 again, links kept) and id 1 now belongs to a subscriber at home."""
    smsc = sim.smsc
    assert smsc is not None
    async with running_daemon(sim) as (daemon, _):
        svc = daemon.service
        first = await svc.lookup(svc.normalize(ROAMING_EG))  # message id 00000001
        assert first.visited_country == "EG"
        await _deliver(smsc, _receipt(smsc, ROAMING_EG, "00000001"))  # a late duplicate
        smsc.restart(drop_links=False)
        second = await svc.lookup(svc.normalize(AT_HOME))  # message id 00000001 again
        discarded = dict(_provider(daemon).discarded)
    assert second.outcome is Outcome.OK
    assert second.roaming is RoamingStatus.NOT_ROAMING, "got the Egypt roamer's answer"
    assert second.visited_country is None
    assert discarded == {"other_number": 1}


async def test_early_receipts_die_with_the_link_they_came_on(sim: Simulator) -> None:
    """A receipt with no address to check waits for its submit_sm_resp; the provider
    restarts, dropping the link, and hands its id out again."""
    smsc = sim.smsc
    assert smsc is not None
    async with running_daemon(sim) as (daemon, _):
        svc = daemon.service
        await svc.lookup(svc.normalize(AT_HOME))  # both binds up and used: id 00000001
        await _deliver(smsc, _receipt(smsc, ROAMING_EG, "00000002", addressed=False))
        rebound = _event(smsc.bind_listeners, "hlrd", count=2)  # both binds back
        smsc.restart()
        await rebound.wait()
        await svc.lookup(svc.normalize("48600000004"))  # id 00000001
        result = await svc.lookup(svc.normalize(AT_HOME))  # id 00000002
        discarded = dict(_provider(daemon).discarded)
    assert result.outcome is Outcome.OK
    assert result.roaming is RoamingStatus.NOT_ROAMING, "got the forged Egypt answer"
    assert discarded.get("link_lost") == 1


async def test_early_receipts_expire(sim: Simulator) -> None:
    """An early receipt lives `early_receipt_ttl_s` (the provider's clock, moved here)."""
    smsc = sim.smsc
    assert smsc is not None
    now = [1000.0]
    async with running_daemon(sim, provider={"early_receipt_ttl_s": 2.0}) as (daemon, _):
        provider = _provider(daemon)
        provider.clock = lambda: now[0]
        svc = daemon.service
        await _deliver(smsc, _receipt(smsc, ROAMING_EG, "00000001", addressed=False))
        now[0] += 2.5
        result = await svc.lookup(svc.normalize(AT_HOME))  # id 00000001
        discarded = dict(provider.discarded)
    assert result.roaming is RoamingStatus.NOT_ROAMING, "an expired receipt answered"
    assert discarded == {"expired": 1}


async def test_a_receipt_for_another_number_never_resolves_a_waiting_lookup(
    demo: Scenario,
) -> None:
    """The lookup waits with id 1; a receipt with id 1 for another number is
    discarded, and the lookup takes the receipt that names its own number."""
    silent = "48600000300"
    scenario = replace(demo, rules=(*demo.rules, Rule(prefix=silent, fault="no_receipt")))
    async with Simulator(scenario) as sim:
        smsc = sim.smsc
        assert smsc is not None
        submitted = _event(smsc.submit_listeners, silent)
        async with running_daemon(sim) as (daemon, _):
            svc = daemon.service
            waiting = asyncio.create_task(svc.lookup(svc.normalize(silent)))
            await submitted.wait()
            await _deliver(smsc, _receipt(smsc, ROAMING_EG, "00000001"))
            assert not waiting.done()
            own = _receipt(smsc, silent, "00000001")
            own.source_addr = "+" + silent  # SMSCs write the address in many forms
            await _deliver(smsc, own)
            result = await waiting
            discarded = dict(_provider(daemon).discarded)
    assert result.outcome is Outcome.OK
    assert result.reachability is Reachability.CONNECTED
    assert result.visited_country is None
    assert discarded == {"other_number": 1}


async def test_with_no_provider_bound_a_lookup_fails_at_once(demo: Scenario) -> None:
    """The only upstream is down: the dialer hears "do not call" at once, with the
    true reason, not after the 30 s result timeout with a false one."""
    async with Simulator(demo) as sim:
        pass  # started and stopped: its port now refuses connections
    slow = {"result_timeout_s": 30, "reconnect_min_s": 0.01, "reconnect_max_s": 0.02}
    async with running_daemon(sim, provider=slow, lookup={"timeout_s": 60}) as (_, http):
        async with http.get(f"/v1/lookup/{AT_HOME}") as r:
            body = await r.json()
            status = r.status
        async with http.get(f"/v1/check/{AT_HOME}?format=digit") as r:
            digit = await r.text()
    assert status == 502
    assert body["outcome"] == "failed"
    assert body["error"] == "no upstream provider is bound"
    assert body["timings"]["upstream_ms"] is None  # nothing was sent
    assert body["timings"]["total_ms"] < 30_000  # did not wait out the result timeout
    assert digit == "1"


async def test_bind_wait_is_how_long_a_lookup_waits_for_a_bind(demo: Scenario) -> None:
    """`lookup.bind_wait_s` set long: the lookup waits for a bind (and runs into its
    own deadline) instead of failing at once as with the default."""
    async with Simulator(demo) as sim:
        pass  # started and stopped: its port now refuses connections
    slow = {"reconnect_min_s": 0.01, "reconnect_max_s": 0.02}
    patient = {"timeout_s": 1.0, "bind_wait_s": 600}  # the default would fail at 0.5 s
    async with running_daemon(sim, provider=slow, lookup=patient) as (_, http):
        async with http.get(f"/v1/lookup/{AT_HOME}") as r:
            body = await r.json()
    assert body["outcome"] == "timeout"
    assert body["error"] == "lookup timed out"
