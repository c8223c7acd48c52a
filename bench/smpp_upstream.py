"""smpp-upstream: lookups/s and latency through hlrd's SMPP upstream, beside the anchors.

hlrd's provider runs in this process, the simulator in another (its own core). Beside
it: smpplib's blocking Client with the same window in a third process (what a user
would write without hlrd), and the raw echo ceiling of the machine. Also the rate
limiter: configured vs achieved rate and the largest count in any 100 ms window.
"""

from __future__ import annotations

import asyncio
import functools
import json
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from hlrd.config import SmppProviderConfig
from hlrd.smpp.pdu import BindTransceiver, DeliverSm, DeliverSmResp, Pdu, SubmitSm, SubmitSmResp
from hlrd.smpp.receipts import receipt_from_pdu
from hlrd.smpp.transport import Handler, LinkConfig, SmppConnection, connect
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


async def _paired_open_loop(
    port: int, rate: float, seconds: float, window: int
) -> tuple[list[float], list[float]]:
    """Latencies (hlrd, direct client) of lookups offered at `rate` each, interleaved.

    One pacer at twice the rate hands its ticks alternately to hlrd's provider and to
    a minimal direct client (one bind; submit_sm sent at once, its answer by callback,
    the receipt matched by id to one future; no queue, window wait, rate limit, retries
    or interpretation), both bound to the same simulator and running in this event
    loop. Whatever drifts during the run (the VM's speed, the simulator's
    load, the loop's other work) reaches both paths alike, so the difference of their
    percentiles is what hlrd itself adds.
    """
    loop = asyncio.get_running_loop()
    cfg = SmppProviderConfig(
        name="bench", port=port, password="secret", window=window, tps=100_000, binds=1
    )
    provider = SmppProvider(cfg, max_queue=100_000)
    await provider.start()
    await provider.wait_ready()
    waiter = _ReceiptWaiter()
    conn = await connect("127.0.0.1", port, waiter, LinkConfig(window=window))
    await conn.bind(BindTransceiver(system_id="hlrd", password="secret"))
    via_hlrd: list[float] = []
    direct: list[float] = []

    async def through_hlrd(i: int) -> None:
        t = time.perf_counter()
        await provider.lookup(f"4861{i:07d}", "bench")
        via_hlrd.append(time.perf_counter() - t)

    def submitted(fut: asyncio.Future[None], resp: Pdu | None, exc: Exception | None) -> None:
        if isinstance(resp, SubmitSmResp) and resp.status == 0:
            waiter.waiting[resp.message_id] = fut  # the receipt comes 50 ms later
        elif not fut.done():
            fut.set_exception(exc or RuntimeError(f"submit_sm refused: {resp!r}"))

    async def straight(i: int) -> None:
        t = time.perf_counter()
        fut: asyncio.Future[None] = loop.create_future()
        submit = SubmitSm(destination_addr=f"4862{i:07d}", dest_addr_ton=1, registered_delivery=1)
        conn.send_request(submit, functools.partial(submitted, fut))
        await fut
        direct.append(time.perf_counter() - t)

    async def one(i: int) -> None:
        # Pairs (hlrd, direct), (direct, hlrd), ...: neither path always goes first.
        await (through_hlrd(i) if i % 4 in (0, 3) else straight(i))

    await _paced(2 * rate, seconds, one)
    await conn.close()
    await provider.stop()
    return via_hlrd, direct


def _smpplib(port: int, window: int, total: int, nodelay: bool) -> tuple[float, list[float]]:
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
            "1" if nodelay else "0",
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
                    # As shipped (Nagle on: each small write may wait ~40 ms for the
                    # peer's delayed ACK), then with TCP_NODELAY set on its socket.
                    for nodelay, how in ((False, "as shipped"), (True, "+TCP_NODELAY")):
                        n = min(total, 5000) if nodelay else min(total, 200 * window, 5000)
                        srate, slat = _smpplib(port, window, n, nodelay)
                        tag = f"w={window} lat={latency}ms"
                        add(f"smpplib {how} lookups/s {tag}", srate)
                        add(f"smpplib {how} p99 ms {tag}", percentile(slat, 99) * 1000)
                        add(f"hlrd/smpplib {how} {tag}", rate / srate)
                    if latency == 0:
                        ceiling = _echo_ceiling(window) / 2
                        add(f"ceiling lookups/s w={window}", ceiling)
                        add(f"hlrd/ceiling w={window}", rate / ceiling)
                    else:
                        add(f"hlrd/(window/latency) w={window}", rate / (window / latency * 1000))
    with simulator(50) as (port, _):
        for _ in range(runs):
            via, straight = asyncio.run(_paired_open_loop(port, 1000, 2.0, 256))
            lat = [(x - 0.050) * 1000 for x in via]
            direct = [(x - 0.050) * 1000 for x in straight]
            tag = "paired 1000/s each over 50 ms HLR"
            for q in (50, 99):
                add(f"{tag}: hlrd p{q} ms beyond 50", percentile(lat, q))
                add(f"{tag}: direct client p{q} ms beyond 50", percentile(direct, q))
                add(f"{tag}: added by hlrd p{q} ms", percentile(lat, q) - percentile(direct, q))
    for _ in range(runs):
        achieved, most = asyncio.run(_rate_limiter(500, 1000))
        add("rate limiter achieved/s (configured 500)", achieved)
        add("rate limiter max per 100ms (ideal 50)", float(most))
    return out
