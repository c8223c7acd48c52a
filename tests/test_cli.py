"""`hlrd` as an operator runs it: real processes against a simulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from simulator.controller import Simulator

from .conftest import ROOT

CONFIG = """
[http]
host = "127.0.0.1"
port = 0

[logging]
format = "json"

[lookup]
shutdown_grace_s = 1

[[upstream.providers]]
name = "sim"
port = {port}
password_env = "SIM_PASSWORD"
binds = 1
"""


def _write_config(tmp_path: Path, sim: Simulator) -> Path:
    path = tmp_path / "hlrd.toml"
    path.write_text(CONFIG.format(port=sim.smpp_port))
    return path


def _hlrd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hlrd", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SIM_PASSWORD": "secret"},
    )


async def test_hlrd_lookup_and_check_one_shot(sim: Simulator, tmp_path: Path) -> None:
    cfg = str(_write_config(tmp_path, sim))
    lookup = await asyncio.to_thread(_hlrd, "lookup", "+48 600 000 003", "--config", cfg)
    egypt = await asyncio.to_thread(_hlrd, "check", "48600000003", "--config", cfg)
    home = await asyncio.to_thread(_hlrd, "check", "600000001", "--config", cfg)
    bad = await asyncio.to_thread(_hlrd, "check", "12ab", "--config", cfg)
    result = json.loads(lookup.stdout)
    assert lookup.returncode == 0
    assert (result["roaming"], result["visited_country"], result["zone"]) == (
        "ROAMING",
        "EG",
        "NON_EEA",
    )
    assert (egypt.returncode, json.loads(egypt.stdout)["decision"]) == (1, "block")
    assert (home.returncode, json.loads(home.stdout)["decision"]) == (0, "allow")
    assert bad.returncode == 2
    assert json.loads(bad.stdout)["error"]["field"] == "number"


def _run_daemon_and_query(config: Path) -> tuple[int, str, str, str]:
    """Start `hlrd run`, ask it once, SIGTERM it; return exit code, answers and logs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hlrd", "run", "--config", str(config)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SIM_PASSWORD": "secret", "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stderr is not None
    lines = []
    try:
        port = 0
        bound = False
        while not (port and bound):
            line = proc.stderr.readline()
            assert line, "hlrd exited early"
            lines.append(line)
            event = json.loads(line)
            if event["event"] == "hlrd.started":
                port = int(event["http"].rsplit(":", 1)[1])
            bound = bound or event["event"] == "upstream.bound"
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/v1/check/+48600000003?format=digit") as r:
            digit = r.read().decode()
        with urllib.request.urlopen(f"{base}/v1/lookup/48600000003") as r:
            lookup = r.read().decode()
            lines.append(
                json.dumps({"event": "test.lookup_id", "id": r.headers["X-Lookup-Id"]}) + "\n"
            )
        try:
            urllib.request.urlopen(f"{base}/v1/check/48600000999x")
        except urllib.error.HTTPError as exc:
            assert exc.code == 400
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    lines += proc.stderr.readlines()
    return code, digit, lookup, "".join(lines)


async def test_hlrd_run_serves_then_exits_0_on_sigterm_with_masked_logs(
    sim: Simulator, tmp_path: Path
) -> None:
    code, digit, lookup, logs = await asyncio.to_thread(
        _run_daemon_and_query, _write_config(tmp_path, sim)
    )
    assert code == 0
    assert digit == "1"
    assert json.loads(lookup)["visited_country"] == "EG"
    events = [json.loads(line) for line in logs.splitlines()]
    names = [e["event"] for e in events]
    assert "lookup.done" in names
    assert names[-1] == "hlrd.stopped"
    # Personal data: the MSISDN appears masked only, the IMSI never.
    assert "48600000003" not in logs
    assert "********003" in logs
    assert "260010000000003" not in logs
    done = [e for e in events if e["event"] == "lookup.done"]
    assert all(len(e["lookup_id"]) == 16 for e in done)
    # The id a client sees in X-Lookup-Id is the id in the daemon's log.
    header_id = next(e["id"] for e in events if e["event"] == "test.lookup_id")
    assert header_id in {e["lookup_id"] for e in done}
    # Refused input is logged, masked.
    refused = [e for e in events if e["event"] == "http.refused"]
    assert [(e["status"], e["number"]) for e in refused] == [(400, "*********99x")]


def test_a_busy_port_is_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    """Another process holds the HTTP port (a second `make run`, say): the operator
    reads what is wrong and what to change, not a traceback."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = tmp_path / "hlrd.toml"
        text = CONFIG.format(port=1).replace("port = 0", f"port = {port}", 1)
        path.write_text(text + "\n[smpp_server]\nenabled = false\n")
        done = _hlrd("run", "--config", str(path))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    assert (
        f"hlrd: cannot listen for HTTP on 127.0.0.1:{port}: address already in use "
        "(another hlrd running? change http.port)"
    ) in done.stderr
    events = [json.loads(x)["event"] for x in done.stderr.splitlines() if x.startswith("{")]
    assert "hlrd.listen_failed" in events
