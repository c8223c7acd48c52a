"""Chaos: lookups flow while links drop and the provider restarts with reused ids.

Every answer is checked against what the scenario says of its number — the IMSI
included, which is different for every subscriber — so one answer handed to the
wrong lookup shows. Faults are triggered by the simulator's own submit count, so
the run does not depend on timing; any interleaving must give 0 wrong and 0 lost.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from hlrd.domain.result import LookupResult, Outcome
from hlrd.upstream.smpp_provider import SmppProvider
from simulator.controller import Simulator
from simulator.scenario import Answer, Latency, Scenario

from .daemon_harness import running_daemon

LOOKUPS = 400
CONCURRENCY = 48
# submit number -> fault: links drop, the provider restarts (ids from 1, late
# receipts of the dropped links delivered on the new ones), twice of each.
FAULTS = {60: "drop", 130: "restart", 210: "drop", 290: "restart", 350: "restart_keep_links"}

_REACHABILITY = {
    "live": "CONNECTED",
    "absent": "ABSENT",
    "unknown": "INVALID",
    "barred": "RESTRICTED",
    "not_provisioned": "RESTRICTED",
}


def _mismatch(result: LookupResult, expected: Answer) -> str | None:
    """What in `result` contradicts the scenario's answer for its number, if anything."""
    if result.outcome is not Outcome.OK:
        return f"outcome {result.outcome.value}: {result.error}"
    checks = {
        "imsi": (result.imsi, expected.imsi),
        "reachability": (result.reachability.value, _REACHABILITY[expected.status]),
        "visited_country": (result.visited_country, expected.roaming_country),
        "serving_mccmnc": (result.serving_network.mccmnc, expected.serving_mccmnc),
    }
    wrong = [f"{k}: {got!r} != {want!r}" for k, (got, want) in checks.items() if got != want]
    return "; ".join(wrong) or None


async def test_no_answer_wrong_and_none_lost_while_links_drop_and_ids_restart(
    demo: Scenario,
) -> None:
    scenario = replace(demo, rules=(), default_latency=Latency(1.0, 15.0))
    numbers = [f"4860{i:07d}" for i in range(1_000_000, 1_000_000 + LOOKUPS)]
    async with Simulator(scenario) as sim:
        smsc = sim.smsc
        assert smsc is not None
        loop = asyncio.get_running_loop()
        submits = [0]

        def on_submit(_: str) -> None:
            submits[0] += 1
            fault = FAULTS.get(submits[0])
            if fault == "drop":
                loop.call_soon(smsc.drop_links)
            elif fault is not None:
                loop.call_soon(smsc.restart, fault == "restart")

        smsc.submit_listeners.append(on_submit)
        provider = {"max_attempts": 10, "result_timeout_s": 20, "early_receipt_ttl_s": 5}
        async with running_daemon(
            sim, provider=provider, lookup={"timeout_s": 60, "return_imsi": True}
        ) as (daemon, _):
            svc = daemon.service
            gate = asyncio.Semaphore(CONCURRENCY)

            async def one(number: str) -> LookupResult:
                async with gate:
                    return await svc.lookup(svc.normalize(number))

            results = await asyncio.gather(*(one(n) for n in numbers))
            smpp = daemon.providers[0]
            assert isinstance(smpp, SmppProvider)
            discarded = dict(smpp.discarded)
            retries = daemon.metrics.retries.labels("sim")._value.get()
    wrong = {
        n: why
        for n, r in zip(numbers, results, strict=True)
        if (why := _mismatch(r, scenario.answer(n))) is not None
    }
    assert wrong == {}, f"{len(wrong)} of {LOOKUPS} wrong or lost: {list(wrong.items())[:5]}"
    assert smsc.restarts == 3
    assert retries > 0  # lookups really were caught by the faults
    print(f"retries={retries} discarded={discarded}")
