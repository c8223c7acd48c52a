"""Shared fixtures: the demo scenario, a simulator running on 127.0.0.1, Chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

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


# -- Chromium for the web page's tests (tests/test_web_page.py, test_make_run.py) ----


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    where = tmp_path / "downloads"
    where.mkdir()
    return where


@pytest.fixture
def browser(request: pytest.FixtureRequest, downloads: Path) -> Iterator[webdriver.Chrome]:
    """Debian's Chromium, headless, driven by chromedriver; downloads go to the test's
    own directory, and the console and network logs are kept for the tests to read."""
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        tools.unavailable(
            "Chromium", "apt-get install -y chromium chromium-driver", request.node.nodeid
        )
    assert chromium is not None and driver_path is not None
    options = Options()
    options.binary_location = chromium  # both paths given: Selenium downloads nothing
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1400,1000")
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "download.directory_upgrade": True,
        },
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("HLRD_SCREENSHOTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where
