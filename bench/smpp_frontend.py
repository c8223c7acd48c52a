"""smpp-frontend: lookups/s and p99 through hlrd's own SMPP server.

The daemon (with its SMPP server) and the simulator run as their own processes.
Drivers: our windowed client in this process, and smpplib's blocking Client, one
per process. CPU use of the daemon, the simulator and the client says which one
saturates. In the same run, against the same simulator, hlrd's SMPP upstream alone
(as in smpp_upstream, same window) gives the figure the front end is held to.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

from hlrd.smpp.pdu import BindTransceiver, SubmitSm, SubmitSmResp

from .procs import ROOT, cpu_seconds, daemon, simulator, write_config
from .smpp_upstream import _hlrd as upstream_alone
from .stats import percentile

WINDOW = 64  # smpplib clients
WINDOWS = (64, 256)  # our client, and the upstream alone beside it
TOTAL = 8000
SMPPLIB_CLIENTS = 2


async def _ours(port: int, window: int, total: int) -> tuple[float, list[float]]:
    from hlrd.smpp.transport import LinkConfig, connect
    from tests.esme import ReceiptCollector  # the same small ESME the tests use

    handler = ReceiptCollector()
    conn = await connect("127.0.0.1", port, handler, LinkConfig(window=window))
    await conn.bind(BindTransceiver(system_id="bench", password="bench"))
    gate = asyncio.Semaphore(window)
    latencies: list[float] = []

    async def one(i: int) -> None:
        async with gate:
            t = time.perf_counter()
            resp = await conn.request(
                SubmitSm(destination_addr=f"4860{i:07d}", registered_delivery=1)
            )
            assert isinstance(resp, SubmitSmResp) and resp.status == 0, resp
            await handler.expect(resp.message_id)
            latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(total)))
    elapsed = time.perf_counter() - start
    await conn.close()
    return total / elapsed, latencies


def _smpplib_processes(port: int, clients: int, window: int, total: int) -> tuple[float, float]:
    """Aggregate lookups/s and the worst p99 ms of `clients` smpplib processes."""
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.smpplib_client",
                str(port),
                "bench",
                "bench",
                str(window),
                str(total),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(clients)
    ]
    results = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
    return (
        sum(r["rate"] for r in results),
        max(percentile(r["latencies"], 99) for r in results) * 1000,
    )


def _front_end_beside_upstream(
    add: Callable[[str, float], None],
    w: int,
    sim_port: int,
    sim_pid: int,
    smpp_port: int,
    hlrd_pid: int,
) -> None:
    me = os.getpid()
    c_me = cpu_seconds(me)
    upstream, _ = asyncio.run(upstream_alone(sim_port, w, TOTAL))
    add(f"upstream alone lookups/s w={w} (same run)", upstream)
    add(f"upstream alone cpu us/lookup w={w}", (cpu_seconds(me) - c_me) / TOTAL * 1e6)
    c_hlrd, c_sim, c_me = cpu_seconds(hlrd_pid), cpu_seconds(sim_pid), cpu_seconds(me)
    t0 = time.perf_counter()
    rate, lat = asyncio.run(_ours(smpp_port, w, TOTAL))
    wall = time.perf_counter() - t0
    daemon_cpu = cpu_seconds(hlrd_pid) - c_hlrd
    add(f"our client lookups/s w={w}", rate)
    add(f"our client p99 ms w={w}", percentile(lat, 99) * 1000)
    add(f"front end / upstream alone w={w}", rate / upstream)
    add(f"daemon cpu % w={w}", daemon_cpu / wall * 100)
    add(f"daemon cpu us/lookup w={w} (front end+service+upstream)", daemon_cpu / TOTAL * 1e6)
    add(f"simulator cpu % w={w}", (cpu_seconds(sim_pid) - c_sim) / wall * 100)
    add(f"our client cpu % w={w}", (cpu_seconds(me) - c_me) / wall * 100)


def measure(runs: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        out.setdefault(key, []).append(value)

    with simulator(0) as (sim_port, sim_pid):
        config = write_config(sim_port, 256, server_window=100_000)
        with daemon(config) as (_, smpp_port, hlrd_pid):
            for _ in range(runs):
                for w in WINDOWS:
                    _front_end_beside_upstream(add, w, sim_port, sim_pid, smpp_port, hlrd_pid)
                srate, sp99 = _smpplib_processes(smpp_port, SMPPLIB_CLIENTS, WINDOW, TOTAL // 4)
                add(f"smpplib x{SMPPLIB_CLIENTS} processes lookups/s w={WINDOW}", srate)
                add(f"smpplib p99 ms w={WINDOW}", sp99)
    return out
