"""`make run` as the README promises it: from the checkout, the simulator and the
daemon start, the demo data goes in through the API, and the printed URL opens the
web page in Chromium with that data — the demo list washed (its summary and charts),
the demo opt-out list in force.

The script binds the fixed ports the README names (2775, 8081, 8080, 2776); its
data directory is the test's own (HLRD_DATA_DIR), so a developer's demo data is
left alone.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from .conftest import ROOT
from .test_web_page import assert_clean, chart, open_section, shoot, visible, wait_for

STARTUP_S = 120.0


class _Script:
    """The script's stdout, line by line, from a thread (bounded waits)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def until(self, marker: str) -> str:
        seen: list[str] = []
        while True:
            line = self.lines.get(timeout=STARTUP_S)
            assert line is not None, "make run ended early:\n" + "".join(seen)
            seen.append(line)
            if marker in line:
                return "".join(seen)


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[_Script]:
    env = {**os.environ, "HLRD_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen(
        ["bash", "scripts/run-demo.sh"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        yield _Script(proc)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as the README says
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_make_run_prints_a_url_that_shows_the_page_with_the_demo_data(
    make_run: _Script, browser: webdriver.Chrome, shots: Path
) -> None:
    printed = make_run.until("Ctrl-C stops both")
    assert "demo data: list 'robinson' imported, demo-calls.csv washed (done)" in printed
    url = re.search(r"Web page\s+(\S+)", printed)
    assert url is not None, printed
    browser.get(url.group(1))
    visible(browser, "sec-wash")
    row = wait_for(
        browser,
        lambda d: d.find_element(By.CSS_SELECTOR, "#jobs-table tbody tr[data-job]"),
    )
    assert "Demo: December campaign" in row.text and "Done" in row.text
    row.find_element(By.XPATH, ".//button[text()='Open']").click()
    visible(browser, "job-summary")
    decisions = chart(browser, "chart-decisions")
    assert set(decisions) >= {"allow", "block", "invalid"}
    shoot(browser, shots, "make-run-wash", "job-summary")
    open_section(browser, "lists")
    listed = wait_for(
        browser,
        lambda d: d.find_element(By.XPATH, "//*[@id='lists-table']//tr[.//*[text()='robinson']]"),
    )
    assert "5" in listed.text  # the demo registry's five numbers
    shoot(browser, shots, "make-run-lists")
    assert_clean(browser, 8080)
