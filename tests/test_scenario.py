"""Scenario files: validation that names the key, matching, and stable derived answers."""

from __future__ import annotations

import random
from typing import Any

import pytest

from simulator.scenario import Latency, Scenario, ScenarioError, parse_scenario


def test_demo_scenario_has_the_cases_a_call_center_meets(demo: Scenario) -> None:
    statuses = {r.status for r in demo.rules}
    assert {"live", "absent", "unknown", "barred", "not_provisioned", "system_failure"} <= statuses
    egypt = demo.answer("48600000003")
    assert egypt.roaming is True
    assert egypt.roaming_country == "EG"
    assert demo.answer("48600000002").roaming_country == "DE"
    assert demo.answer("48600000004").ported is True
    assert demo.answer("48600000001").roaming is False


def test_longest_prefix_wins() -> None:
    sc = parse_scenario(
        {"rules": [{"prefix": "4860", "status": "absent"}, {"prefix": "48601", "status": "live"}]}
    )
    assert sc.answer("48601000000").status == "live"
    assert sc.answer("48609000000").status == "absent"


def test_unmatched_numbers_are_stable_and_varied() -> None:
    sc = Scenario()
    numbers = [f"48{600000000 + i * 7919}" for i in range(200)]
    first = [sc.answer(n) for n in numbers]
    again = [sc.answer(n) for n in numbers]
    assert [(a.status, a.imsi, a.serving_mccmnc) for a in first] == [
        (a.status, a.imsi, a.serving_mccmnc) for a in again
    ]
    assert len({a.status for a in first}) >= 3  # not everyone is simply live
    assert any(a.roaming for a in first)
    assert all(a.imsi is None or a.imsi.startswith("260") for a in first)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"rules": [{"status": "live"}]}, "rules[0].prefix: required"),
        ({"rules": [{"prefix": "48", "status": "dead"}]}, "rules[0].status"),
        ({"rules": [{"prefix": "48x"}]}, "rules[0].prefix"),
        ({"rules": [{"prefix": "48", "serving_mccmnc": "2620"}]}, "rules[0].serving_mccmnc"),
        ({"rules": [{"prefix": "48", "latency_ms": -1}]}, "rules[0]: latency_ms"),
        ({"rules": [{"prefix": "48", "colour": "red"}]}, "rules[0].colour: unknown key"),
        ({"rules": [{"prefix": "48", "fault": "explode"}]}, "rules[0].fault"),
        ({"smpp": {"tps": -3}}, "smpp.tps"),
        ({"smpp": {"password": "123456789"}}, "smpp.system_id/password"),
        ({"smpp": {"port": 1}}, "smpp.port: unknown key"),
        ({"smpp": {"window": 0}}, "smpp.window"),
        ({"rule": [{"prefix": "48"}]}, "rule: unknown key (did you mean [[rules]]?)"),
        ({"smpp": {}, "latency_ms": 5}, "latency_ms: unknown key"),
        ({"defaults": {"latency": 5}}, "defaults.latency: unknown key"),
        ({"defaults": {"seed": "x"}}, "defaults.seed"),
        ({"rules": [{"prefix": "48\u00b2"}]}, "rules[0].prefix"),
        ({"rules": [{"prefix": "48", "imsi": "\u2460" * 6}]}, "rules[0].imsi"),
    ],
)
def test_invalid_scenarios_name_the_key(data: dict[str, Any], where: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(data)
    assert str(exc.value).startswith(where)


def test_latency_forms() -> None:
    rng = random.Random(1)
    fixed = parse_scenario({"rules": [{"prefix": "1", "latency_ms": 25}]}).rules[0].latency
    assert fixed == Latency(25.0, 25.0)
    uniform = parse_scenario(
        {"rules": [{"prefix": "1", "latency_ms": {"min": 10, "max": 20}}]}
    ).rules[0]
    assert uniform.latency is not None
    samples = [uniform.latency.sample(rng) for _ in range(100)]
    assert all(0.010 <= s <= 0.020 for s in samples)
    assert len(set(samples)) > 50
    normal = Latency(50.0, 50.0, 10.0)
    assert all(s >= 0 for s in (normal.sample(rng) for _ in range(100)))
