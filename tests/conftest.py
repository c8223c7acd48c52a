"""Shared fixtures: the demo scenario and a simulator running on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulator.controller import Simulator
from simulator.scenario import Scenario, load_scenario

from . import tools
from .kannel_harness import APT_PACKAGE, KannelBinaries, find_kannel

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "scenarios" / "demo.toml"


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's daemons store their answers in a directory of the test's own."""
    monkeypatch.setenv("HLRD_DATA_DIR", str(tmp_path / "hlrd-data"))


@pytest.fixture
def demo() -> Scenario:
    return load_scenario(DEMO)


@pytest.fixture
async def sim(demo: Scenario) -> AsyncIterator[Simulator]:
    async with Simulator(demo) as s:
        yield s


@pytest.fixture
def kannel_binaries(request: pytest.FixtureRequest) -> KannelBinaries:
    """Kannel's bearerbox and smsbox; .ci/run installs them, so CI never skips."""
    found = find_kannel()
    if found is None:
        tools.unavailable("Kannel", f"apt-get install -y {APT_PACKAGE}", request.node.nodeid)
    assert found is not None
    return found


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Tests skipped for a missing tool are named at the end of every run."""
    for tool, (install, tests) in sorted(tools.missing.items()):
        terminalreporter.write_line(
            f"NOT TESTED: {len(tests)} tests need {tool}, which is not installed "
            f"({install}; .ci/run installs it)",
            yellow=True,
            bold=True,
        )
