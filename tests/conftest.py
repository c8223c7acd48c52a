"""Shared fixtures: the demo scenario and a simulator running on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulator.controller import Simulator
from simulator.scenario import Scenario, load_scenario

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "scenarios" / "demo.toml"


@pytest.fixture
def demo() -> Scenario:
    return load_scenario(DEMO)


@pytest.fixture
async def sim(demo: Scenario) -> AsyncIterator[Simulator]:
    async with Simulator(demo) as s:
        yield s
