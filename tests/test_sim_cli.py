"""`hlrd-sim` as a user runs it: a real process that logs where it listens."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import smpplib.client

from .conftest import DEMO, ROOT


def test_hlrd_sim_runs_standalone_and_stops_cleanly_on_sigterm() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator",
            "--scenario",
            str(DEMO),
            "--smpp-port",
            "0",
            "--http-port",
            "0",
            "--log-format",
            "json",
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stderr is not None
        line = json.loads(proc.stderr.readline())
        assert line["event"] == "sim.listening"
        smpp_port = int(line["smpp"].rsplit(":", 1)[1])
        http_port = int(line["http"].rsplit(":", 1)[1])

        client = smpplib.client.Client("127.0.0.1", smpp_port, allow_unknown_opt_params=True)
        client.connect()
        client.bind_transceiver(system_id="hlrd", password="secret")
        client.unbind()
        client.disconnect()

        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v1/hlr/48600000003") as r:
            answer = json.load(r)
        assert answer["roaming_country"] == "EG"
        assert answer["status"] == "live"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_hlrd_sim_rejects_a_bad_scenario_naming_the_key(tmp_path: Path) -> None:
    bad = os.path.join(str(tmp_path), "bad.toml")
    with open(bad, "w") as f:
        f.write('[[rules]]\nprefix = "48"\nstatus = "zombie"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "simulator", "--scenario", bad],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "rules[0].status" in proc.stderr
