"""http-check: `GET /v1/check/{n}?format=digit` with live lookups, beside a trivial handler.

The daemon and the simulator (0 ms HLR latency) run as their own processes; wrk
(Debian's package) drives the load from a third, with a different number on every
request so single-flight sharing does not flatter the result. The ceiling is a
trivial aiohttp handler on the same machine, driven the same way.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .procs import ROOT, cpu_seconds, daemon, rss_mb, simulator, wait_port, write_config

SECONDS = 5
CONNECTIONS = 32

# Numbers a run has not asked before: wrk's Lua starts every process with the same
# random sequence, so without a run's own seed and offset run 2 repeats run 1's
# numbers, which hlrd now answers from its cache (no longer live lookups).
LUA_TEMPLATE = """
math.randomseed({seed})
local counter = {offset}
request = function()
  counter = counter + 1
  local n = (counter * 7919 + math.random(0, 9999)) % 10000000
  return wrk.format("GET", string.format("/v1/check/4860%07d?format=digit", n))
end
"""
LUA = LUA_TEMPLATE.format(seed=1, offset=0)


def fresh_numbers(run: int) -> str:
    """The request script for run `run`: numbers no other run asks about."""
    return LUA_TEMPLATE.format(seed=run + 1, offset=run * 100_000)


def _run_wrk(port: int, lua: str, seconds: int) -> str:
    script = Path(tempfile.mkdtemp(prefix="hlrd-bench-")) / "numbers.lua"
    script.write_text(lua)
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        timeout=seconds * 4,
        check=True,
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} failed requests:\n{out}")
    return out


def wrk(port: int, lua: str = LUA) -> tuple[float, float]:
    """(requests/s, p99 ms) from wrk running the request script `lua`."""
    out = _run_wrk(port, lua, SECONDS)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert m is not None, out
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    return rps, p99


def wrk_requests(port: int, lua: str, seconds: int) -> int:
    """How many requests wrk completed in `seconds` running `lua`."""
    out = _run_wrk(port, lua, seconds)
    m = re.search(r"(\d+) requests in ", out)
    assert m is not None, out
    return int(m.group(1))


def trivial() -> tuple[float, float, float]:
    """(requests/s, p99 ms, CPU µs per request) of the trivial handler."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.trivial_http"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        wait_port(port)
        cpu = cpu_seconds(proc.pid)
        rps, p99 = wrk(port)
        return rps, p99, (cpu_seconds(proc.pid) - cpu) / (rps * SECONDS) * 1e6
    finally:
        proc.kill()
        proc.wait()


def measure(runs: int) -> dict[str, list[float]]:
    if shutil.which("wrk") is None:
        raise SystemExit("http_check needs wrk: apt-get install -y wrk")
    out: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        out.setdefault(key, []).append(value)

    with (
        simulator(0) as (sim_port, sim_pid),
        daemon(write_config(sim_port, 256)) as (http_port, _, hlrd_pid),
    ):
        add("hlrd daemon RSS MiB at start", rss_mb(hlrd_pid))
        for run in range(runs):
            c_hlrd, c_sim = cpu_seconds(hlrd_pid), cpu_seconds(sim_pid)
            rps, p99 = wrk(http_port, fresh_numbers(run))
            add("hlrd check req/s (live lookups)", rps)
            add("hlrd check p99 ms", p99)
            daemon_cpu = cpu_seconds(hlrd_pid) - c_hlrd
            add("hlrd daemon cpu %", daemon_cpu / SECONDS * 100)
            add("hlrd daemon cpu us/request", daemon_cpu / (rps * SECONDS) * 1e6)
            add("simulator cpu %", (cpu_seconds(sim_pid) - c_sim) / SECONDS * 100)
            trps, tp99, tcpu = trivial()
            add("trivial aiohttp req/s (ceiling)", trps)
            add("trivial aiohttp p99 ms", tp99)
            add("trivial aiohttp cpu us/request", tcpu)
            add("hlrd/ceiling", rps / trps)
            add("hlrd daemon RSS MiB after the run (no growth = no leak)", rss_mb(hlrd_pid))
    return out
