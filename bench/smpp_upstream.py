"""smpp-upstream: lookups/s and latency through hlrd's SMPP upstream, beside the anchors.

hlrd's provider runs in this process, the simulator in another (its own core). Beside
it: smpplib's blocking Client with the same window in a third process (what a user
would write without hlrd), and the raw echo ceiling of the machine. Also the rate
limiter: configured vs achieved rate and the largest count in any 100 ms window.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from hlrd.config import SmppProviderConfig
from hlrd.smpp.pdu import BindTransceiver, DeliverSm, DeliverSmResp, Pdu, SubmitSm, SubmitSmResp
from hlrd.smpp.receipts import receipt_from_pdu
from hlrd.smpp.transport import Handler, SmppConnection, connect
from hlrd.upstream.rate import AdaptiveRate
from hlrd.upstream.smpp_provider import SmppProvider

from .echo import echo_rate
from .procs import ROOT, simulator
from .stats import percentile

WINDOWS = (1, 10, 64, 256)
LATENCIES_MS = (0, 50)
SECONDS = 2.0


def _total(window: int, latency_ms: float, fast_rate: float = 4000) -> int:
    rate = fast_rate if latency_ms == 0 else min(fast_rate, window / (latency_ms / 1000))
    return int(max(100, min(20_000, rate * SECONDS)))


async def _hlrd(port: int, window: int, total: int) -> tuple[float, list[float]]:
    cfg = SmppProviderConfig(
        name="bench", port=port, password="secret", window=window, tps=100_000, binds=1
    )
    provider = SmppProvider(cfg, max_queue=100_000)
    await provider.start()
    await provider.wait_ready()
    latencies: list[float] = []
    gate = asyncio.Semaphore(window)  # lookups in flight = the window, as a user would

    async def one(i: int) -> None:
        async with gate:
            t = time.perf_counter()
            await provider.lookup(f"4860{i:07d}", "bench")
            latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(total)))
    elapsed = time.perf_counter() - start
    await provider.stop()
    return total / elapsed, latencies


async def _paced(
    rate: float, seconds: float, one: Callable[[int], Coroutine[Any, Any, None]]
) -> None:
    """Start one(i) at a fixed rate (open loop: not waiting for answers), then await all."""
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    start = loop.time() + 0.05
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
        tasks.append(loop.create_task(one(i)))
    await asyncio.gather(*tasks)


async def _open_loop(port: int, rate: float, seconds: float, window: int) -> list[float]:
    """Latencies of lookups offered at a fixed rate (not as fast as possible)."""
    cfg = SmppProviderConfig(
        name="bench", port=port, password="secret", window=window, tps=100_000, binds=1
    )
    provider = SmppProvider(cfg, max_queue=100_000)
    await provider.start()
    await provider.wait_ready()
    latencies: list[float] = []

    async def one(i: int) -> None:
        t = time.perf_counter()
        await provider.lookup(f"4861{i:07d}", "bench")
        latencies.append(time.perf_counter() - t)

    await _paced(rate, seconds, one)
    await provider.stop()
    return latencies


class _ReceiptWaiter(Handler):
    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[None]] = {}

    def handle_request(self, conn: SmppConnection, pdu: Pdu) -> Pdu | None:
        if isinstance(pdu, DeliverSm):
            receipt = receipt_from_pdu(pdu)
            fut = self.waiting.pop(receipt.message_id, None) if receipt else None
            if fut is not None and not fut.done():
                fut.set_result(None)
            return DeliverSmResp(sequence=pdu.sequence)
        return None


async def _direct_open_loop(port: int, rate: float, seconds: float) -> list[float]:
    """The simulator's own latency as a minimal client sees it: no hlrd in between.

    One bind, submit_sm and receipt matched by id, nothing else (no queue, rate
    limit, retries, interpretation); paced exactly as `_open_loop`. Its percentiles
    are what the simulator and the loopback take; hlrd's minus these is what hlrd adds.
    """
    loop = asyncio.get_running_loop()
    waiter = _ReceiptWaiter()
    conn = await connect("127.0.0.1", port, waiter)
    await conn.bind(BindTransceiver(system_id="hlrd", password="secret"))
    latencies: list[float] = []

    async def one(i: int) -> None:
        t = time.perf_counter()
        resp = await conn.request(
            SubmitSm(destination_addr=f"4862{i:07d}", dest_addr_ton=1, registered_delivery=1)
        )
        assert isinstance(resp, SubmitSmResp)
        fut = waiter.waiting[resp.message_id] = loop.create_future()
        await fut
        latencies.append(time.perf_counter() - t)

    await _paced(rate, seconds, one)
    await conn.close()
    return latencies


def _smpplib(port: int, window: int, total: int) -> tuple[float, list[float]]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.smpplib_client",
            str(port),
            "hlrd",
            "secret",
            str(window),
            str(total),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    data = json.loads(out.stdout)
    return float(data["rate"]), list(data["latencies"])


def _echo_ceiling(window: int) -> float:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.echo"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        total = 5_000 if window == 1 else 100_000
        return asyncio.run(echo_rate(port, window, total))
    finally:
        proc.kill()
        proc.wait()


async def _rate_limiter(tps: int, sends: int) -> tuple[float, int]:
    """Achieved rate and the most sends in any 100 ms, driving AdaptiveRate as hlrd does."""
    rate = AdaptiveRate(tps)
    stamps: list[float] = []
    for _ in range(sends):
        await rate.acquire()
        stamps.append(time.monotonic())
    achieved = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    most, j = 0, 0
    for i, t in enumerate(stamps):
        while stamps[j] <= t - 0.1:
            j += 1
        most = max(most, i - j + 1)
    return achieved, most


def measure(runs: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        out.setdefault(key, []).append(value)

    for latency in LATENCIES_MS:
        with simulator(latency) as (port, _):
            for window in WINDOWS:
                total = _total(window, latency)
                for _ in range(runs):
                    rate, lat = asyncio.run(_hlrd(port, window, total))
                    add(f"hlrd lookups/s w={window} lat={latency}ms", rate)
                    add(f"hlrd p50 ms w={window} lat={latency}ms", percentile(lat, 50) * 1000)
                    add(f"hlrd p99 ms w={window} lat={latency}ms", percentile(lat, 99) * 1000)
                    srate, slat = _smpplib(port, window, min(total, 200 * window, 5000))
                    add(f"smpplib lookups/s w={window} lat={latency}ms", srate)
                    add(f"smpplib p99 ms w={window} lat={latency}ms", percentile(slat, 99) * 1000)
                    add(f"hlrd/smpplib w={window} lat={latency}ms", rate / srate)
                    if latency == 0:
                        ceiling = _echo_ceiling(window) / 2
                        add(f"ceiling lookups/s w={window}", ceiling)
                        add(f"hlrd/ceiling w={window}", rate / ceiling)
                    else:
                        add(f"hlrd/(window/latency) w={window}", rate / (window / latency * 1000))
    with simulator(50) as (port, _):
        for _ in range(runs):
            direct = [(x - 0.050) * 1000 for x in asyncio.run(_direct_open_loop(port, 1000, 2.0))]
            lat = [(x - 0.050) * 1000 for x in asyncio.run(_open_loop(port, 1000, 2.0, 256))]
            for q in (50, 99):
                add(f"1000/s over 50 ms HLR: hlrd p{q} ms beyond 50", percentile(lat, q))
                add(
                    f"1000/s over 50 ms HLR: direct client p{q} ms beyond 50", percentile(direct, q)
                )
                add(
                    f"1000/s over 50 ms HLR: added by hlrd p{q} ms",
                    percentile(lat, q) - percentile(direct, q),
                )
    for _ in range(runs):
        achieved, most = asyncio.run(_rate_limiter(500, 1000))
        add("rate limiter achieved/s (configured 500)", achieved)
        add("rate limiter max per 100ms (ideal 50)", float(most))
    return out
