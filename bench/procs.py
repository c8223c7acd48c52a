"""Processes a benchmark needs, each on its own core: simulator, daemon, peers.

Every server logs JSON; the port it bound comes from its first log line, so all
ports are picked by the OS and runs never clash.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The source tree the daemon subprocess runs from (`python -m bench --daemon-src PATH`):
# another checkout of hlrd, e.g. a worktree of an older commit for before/after figures.
# The bench itself, the simulator and the clients always run from ROOT.
DAEMON_SRC = ROOT


def daemon_env(src: Path) -> tuple[Path, dict[str, str]]:
    """(cwd, extra environment) that make `python -m hlrd` import hlrd from `src`.

    `python -m` puts its working directory first on sys.path (before PYTHONPATH and
    the editable install), so the daemon runs with cwd=src and src on PYTHONPATH too.
    """
    inherited = os.environ.get("PYTHONPATH")
    return src, {"PYTHONPATH": os.pathsep.join([str(src), *([inherited] if inherited else [])])}


def daemon_hlrd_path(src: Path) -> str:
    """Where a daemon started from `src` imports hlrd from (checked, not assumed)."""
    cwd, env = daemon_env(src)
    out = subprocess.run(
        [sys.executable, "-c", "import hlrd; print(hlrd.__file__)"],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return out.stdout.strip()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@contextmanager
def process(
    args: list[str],
    ready_event: str,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
) -> Iterator[tuple[subprocess.Popen[str], dict[str, object]]]:
    """Start a JSON-logging process; yield it with the log line named `ready_event`."""
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    assert proc.stderr is not None
    try:
        while True:
            line = proc.stderr.readline()
            if not line:
                raise RuntimeError(f"{args[2:4]} exited before {ready_event}")
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("event") == ready_event:
                break
        # Keep draining stderr so the child never blocks on a full pipe.
        drain = subprocess.Popen(["cat"], stdin=proc.stderr, stdout=subprocess.DEVNULL)
        yield proc, event
    finally:
        stop(proc)
        if "drain" in locals():
            drain.wait(timeout=5)


def stop(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM (a clean drain), then SIGKILL after 15 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def write_scenario(latency_ms: float, tps: int = 0) -> Path:
    path = Path(tempfile.mkdtemp(prefix="hlrd-bench-")) / "bench.toml"
    path.write_text(
        f'[smpp]\nsystem_id = "hlrd"\npassword = "secret"\ntps = {tps}\nwindow = 1024\n\n'
        f"[defaults]\nlatency_ms = {latency_ms}\n"
    )
    return path


@contextmanager
def simulator(latency_ms: float) -> Iterator[tuple[int, int]]:
    """(smpp port, pid) of a simulator whose every subscriber answers after latency_ms."""
    scenario = write_scenario(latency_ms)
    args = [sys.executable, "-m", "simulator", "--scenario", str(scenario)]
    args += ["--smpp-port", "0", "--log-format", "json"]
    with process(args, "sim.listening") as (proc, event):
        yield int(str(event["smpp"]).rsplit(":", 1)[1]), proc.pid


@contextmanager
def http_simulator(latency_ms: float) -> Iterator[tuple[int, int]]:
    """(HTTP port, pid) of a simulator serving the vendor imitations, every subscriber
    answering after latency_ms."""
    scenario = write_scenario(latency_ms)
    args = [sys.executable, "-m", "simulator", "--scenario", str(scenario)]
    args += ["--smpp-port", "0", "--http-port", "0", "--log-format", "json"]
    with process(args, "sim.listening") as (proc, event):
        yield int(str(event["http"]).rsplit(":", 1)[1]), proc.pid


def write_config(sim_port: int, window: int, server_window: int = 0, cache: bool = True) -> Path:
    """A daemon config; with `server_window`, its SMPP server with one account too;
    `cache=False` switches the cache (and so the store) off."""
    path = Path(tempfile.mkdtemp(prefix="hlrd-bench-")) / "hlrd.toml"
    smpp_server = ""
    if server_window:
        smpp_server = (
            "\n[smpp_server]\nenabled = true\nport = 0\n\n[[smpp_server.accounts]]\n"
            f'system_id = "bench"\npassword = "bench"\nwindow = {server_window}\n'
            f"tps = 100000\nmax_binds = 64\n"
        )
    path.write_text(
        '[http]\nport = 0\n\n[logging]\nformat = "json"\nlevel = "INFO"\n\n'
        "[numbers]\nmobile_only = false\n\n"
        f'[[upstream.providers]]\nname = "sim"\nport = {sim_port}\npassword = "secret"\n'
        f"binds = 1\nwindow = {window}\ntps = 100000\n"
        + smpp_server
        + ("" if cache else "\n[cache]\nenabled = false\n")
    )
    return path


def data_env(config: Path) -> dict[str, str]:
    """The daemon's store beside its config (HLRD_DATA_DIR, not a [store] section, so a
    daemon from an older tree, --daemon-src, takes the same config)."""
    return {"HLRD_DATA_DIR": str(config.parent / "data")}


@contextmanager
def daemon(config: Path, src: Path | None = None) -> Iterator[tuple[int, int, int]]:
    """(http port, smpp server port or 0, pid) of `hlrd run`, once it is bound upstream;
    from the source tree `src` (default: DAEMON_SRC, i.e. --daemon-src)."""
    args = [sys.executable, "-m", "hlrd", "run", "--config", str(config)]
    cwd, env = daemon_env(src or DAEMON_SRC)
    env = {**env, **data_env(config)}
    with process(args, "hlrd.ready", env, cwd) as (proc, event):
        smpp = event.get("smpp") or 0
        yield int(str(event["http"]).rsplit(":", 1)[1]), int(str(smpp)), proc.pid


@contextmanager
def logged_daemon(config: Path, log: Path, timeout: float = 30.0) -> Iterator[tuple[int, int, int]]:
    """As `daemon`, but its stderr (the log) goes to the file `log`, whose growth
    the caller measures; (http port, smpp server port or 0, pid)."""
    args = [sys.executable, "-m", "hlrd", "run", "--config", str(config)]
    cwd, env = daemon_env(DAEMON_SRC)
    env = {**env, **data_env(config)}
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        )
    try:
        event = wait_for_event(proc, log, "hlrd.ready", timeout)
        smpp = event.get("smpp") or 0
        yield int(str(event["http"]).rsplit(":", 1)[1]), int(str(smpp)), proc.pid
    finally:
        stop(proc)


def wait_for_event(
    proc: subprocess.Popen[bytes] | None, log: Path, name: str, timeout: float
) -> dict[str, object]:
    """The first log line in `log` whose event is `name` (`proc`, if given, must not
    exit meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_bytes().splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and event.get("event") == name:
                return event
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"daemon exited before {name}: {log.read_text()[-2000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"no {name} from the daemon in {timeout} s")


def wait_port(port: int, timeout: float = 10.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")
