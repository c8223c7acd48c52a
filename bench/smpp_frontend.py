"""smpp-frontend: lookups/s and p99 through hlrd's own SMPP server.

The daemon (with its SMPP server) and the simulator run as their own processes.
Drivers: our windowed client in this process, and smpplib's blocking Client, one
per process. CPU use of the daemon, the simulator and the client says which one
saturates. In the same run, against the same simulator, hlrd's SMPP upstream alone
(as in smpp_upstream, same window) gives the figure the front end is held to.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

from hlrd.config import Config, load_config
from hlrd.daemon import Daemon
from hlrd.logging_setup import configure_logging
from hlrd.smpp.pdu import BindTransceiver, DeliverSm, DeliverSmResp, Pdu, SubmitSm, SubmitSmResp
from hlrd.smpp.receipts import receipt_from_pdu
from hlrd.smpp.transport import Handler, LinkConfig, SmppConnection, connect

from .procs import ROOT, cpu_seconds, daemon, data_env, rss_mb, simulator, write_config
from .smpp_upstream import _hlrd as upstream_alone
from .stats import percentile

WINDOW = 64  # smpplib clients
WINDOWS = (64, 256)  # our client, and the upstream alone beside it
TOTAL = 8000
SMPPLIB_CLIENTS = 2


class _WindowedClient(Handler):
    """Our windowed ESME: `window` lookups in flight, each next one sent from the
    callback of a receipt. No task or future per lookup, so the client takes little
    of the machine the daemon and the simulator share (the tests' ESME, written for
    clarity, cost ~130 µs of CPU per lookup here)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0
        self.latencies: list[float] = []
        self.started: dict[str, float] = {}  # message id -> send time
        self.early: set[str] = set()  # receipts that came before their submit_sm_resp
        self.conn: SmppConnection | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def send_next(self) -> None:
        assert self.conn is not None
        i, self.sent = self.sent, self.sent + 1
        submit = SubmitSm(destination_addr=f"4860{i:07d}", registered_delivery=1)
        self.conn.send_request(
            submit, functools.partial(self._submitted, time.perf_counter()), timeout=60
        )

    def _submitted(self, t: float, resp: Pdu | None, exc: Exception | None) -> None:
        if not isinstance(resp, SubmitSmResp) or resp.status != 0:
            if not self.done.done():
                self.done.set_exception(RuntimeError(f"submit failed: {resp or exc!r}"))
            return
        if resp.message_id in self.early:
            self.early.discard(resp.message_id)
            self._finished(t)
        else:
            self.started[resp.message_id] = t

    def handle_request(self, conn: SmppConnection, pdu: Pdu) -> Pdu | None:
        if isinstance(pdu, DeliverSm):
            receipt = receipt_from_pdu(pdu)
            if receipt is not None:
                t = self.started.pop(receipt.message_id, None)
                if t is None:
                    self.early.add(receipt.message_id)
                else:
                    self._finished(t)
            return DeliverSmResp(sequence=pdu.sequence)
        return None

    def _finished(self, t: float) -> None:
        self.latencies.append(time.perf_counter() - t)
        if self.sent < self.total:
            self.send_next()
        elif len(self.latencies) == self.total and not self.done.done():
            self.done.set_result(None)


async def _ours(port: int, window: int, total: int) -> tuple[float, list[float]]:
    client = _WindowedClient(total)
    conn = client.conn = await connect("127.0.0.1", port, client, LinkConfig(window=window))
    await conn.bind(BindTransceiver(system_id="bench", password="bench"))
    start = time.perf_counter()
    for _ in range(min(window, total)):
        client.send_next()
    await client.done
    elapsed = time.perf_counter() - start
    await conn.close()
    return total / elapsed, client.latencies


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


def _service_path(sim_port: int, window: int, total: int) -> float:
    """Lookups/s through LookupService in this process (normalize, single-flight,
    provider, result, log, metrics) with `window` callers: the front end minus SMPP."""
    path = write_config(sim_port, 256)
    config = load_config(path, env={**os.environ, **data_env(path)})
    with open(os.devnull, "w") as devnull:  # logs as the daemon logs (INFO), unseen
        configure_logging("json", "INFO", devnull)
        try:
            return asyncio.run(_timed_service_path(config, window, total))
        finally:
            configure_logging("json", "WARNING")


async def _timed_service_path(config: Config, window: int, total: int) -> float:
    d = Daemon(config)
    await d.start()
    await d.service.wait_ready()
    gate = asyncio.Semaphore(window)

    async def one(i: int) -> None:
        async with gate:
            await d.service.lookup(d.service.normalize(f"4863{i:07d}"))

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(total)))
    elapsed = time.perf_counter() - start
    await d.stop()
    return total / elapsed


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
    c_me = cpu_seconds(me)
    service = _service_path(sim_port, w, TOTAL)
    add(f"service path lookups/s w={w} (same run)", service)
    add(f"service path cpu us/lookup w={w}", (cpu_seconds(me) - c_me) / TOTAL * 1e6)
    c_hlrd, c_sim, c_me = cpu_seconds(hlrd_pid), cpu_seconds(sim_pid), cpu_seconds(me)
    t0 = time.perf_counter()
    rate, lat = asyncio.run(_ours(smpp_port, w, TOTAL))
    wall = time.perf_counter() - t0
    daemon_cpu = cpu_seconds(hlrd_pid) - c_hlrd
    add(f"our client lookups/s w={w}", rate)
    add(f"our client p99 ms w={w}", percentile(lat, 99) * 1000)
    add(f"front end / upstream alone w={w}", rate / upstream)
    add(f"front end / service path w={w}", rate / service)
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
            add("daemon RSS MiB at start", rss_mb(hlrd_pid))
            for _ in range(runs):
                for w in WINDOWS:
                    _front_end_beside_upstream(add, w, sim_port, sim_pid, smpp_port, hlrd_pid)
                srate, sp99 = _smpplib_processes(smpp_port, SMPPLIB_CLIENTS, WINDOW, TOTAL // 4)
                add(f"smpplib x{SMPPLIB_CLIENTS} processes lookups/s w={WINDOW}", srate)
                add(f"smpplib p99 ms w={WINDOW}", sp99)
                add("daemon RSS MiB after each run (no growth = no leak)", rss_mb(hlrd_pid))
    return out
