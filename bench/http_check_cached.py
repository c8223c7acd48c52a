"""http-check-cached: the dialer's check for numbers already in the cache, beside a
trivial aiohttp handler in the same run.

A dialer re-checks the same numbers many times a day (retries, callbacks, a list
washed the night before), so this is the common case once hlrd has a memory. The
numbers are looked up once first (misses, paid); wrk then asks about them again and
again, every answer a cache hit from memory.
"""

from __future__ import annotations

import json
import shutil
import urllib.request

from .http_check import SECONDS, trivial, wrk
from .procs import cpu_seconds, daemon, rss_mb, simulator, write_config

NUMBERS = 1000

LUA = f"""
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", string.format("/v1/check/4861%07d?format=digit", counter % {NUMBERS}))
end
"""


def _warm(port: int) -> None:
    """Each number looked up once: the cache holds them all before wrk starts."""
    for i in range(NUMBERS):
        url = f"http://127.0.0.1:{port}/v1/lookup/4861{i:07d}"
        with urllib.request.urlopen(url, timeout=10) as r:
            if json.load(r)["cache"]["hit"]:
                raise RuntimeError("a number was cached before its first lookup")


def measure(runs: int) -> dict[str, list[float]]:
    if shutil.which("wrk") is None:
        raise SystemExit("http_check_cached needs wrk: apt-get install -y wrk")
    out: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        out.setdefault(key, []).append(value)

    with (
        simulator(0) as (sim_port, sim_pid),
        daemon(write_config(sim_port, 256)) as (http_port, _, hlrd_pid),
    ):
        _warm(http_port)
        for _ in range(runs):
            c_hlrd, c_sim = cpu_seconds(hlrd_pid), cpu_seconds(sim_pid)
            rps, p99 = wrk(http_port, LUA)
            add("cached check req/s", rps)
            add("cached check p99 ms", p99)
            daemon_cpu = cpu_seconds(hlrd_pid) - c_hlrd
            add("hlrd daemon cpu us/request", daemon_cpu / (rps * SECONDS) * 1e6)
            # No request reached the provider: the simulator only kept its binds alive.
            add("simulator cpu s during the run", cpu_seconds(sim_pid) - c_sim)
            trps, tp99, tcpu = trivial()
            add("trivial aiohttp p99 ms", tp99)
            add("trivial aiohttp req/s (ceiling)", trps)
            add("trivial aiohttp cpu us/request", tcpu)
            add("cached/trivial (target >= 0.5)", rps / trps)
        add("hlrd daemon RSS MiB after", rss_mb(hlrd_pid))
    return out
