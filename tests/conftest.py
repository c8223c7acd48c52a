"""Shared fixtures: the demo scenario and a simulator running on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulator.controller import Simulator
from simulator.scenario import Scenario, load_scenario

from .kannel_harness import APT_PACKAGE, KannelBinaries, find_kannel

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "scenarios" / "demo.toml"


@pytest.fixture
def demo() -> Scenario:
    return load_scenario(DEMO)


@pytest.fixture
async def sim(demo: Scenario) -> AsyncIterator[Simulator]:
    async with Simulator(demo) as s:
        yield s


@pytest.fixture
def kannel_binaries() -> KannelBinaries:
    """Kannel's bearerbox and smsbox; .ci/run installs them, so CI never skips."""
    found = find_kannel()
    if found is None:
        why = f"bearerbox/smsbox not found: apt-get install -y {APT_PACKAGE}"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return found
