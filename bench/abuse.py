"""abuse: what hostile peers cost the daemon, and a well-behaved client beside them.

A simulator (0 ms HLR) and, for each attack, a fresh daemon subprocess with its SMPP
server (accounts `bench` for the good client, `noack` for attack b) and its log
(stderr, JSON, INFO) going to a file. A good client binds to the front end and
submits lookups at a steady 200/s, checking every receipt: first alone (without
attack), then while one attack runs beside it, from a process of its own
(`bench/attacks.py`):

- `bad_pdus`: one connection that never binds writes 4 MB of 16-byte PDUs with an
  unknown command_id;
- `no_ack`: a bound client submits 3,000 lookups and never acknowledges a receipt;
- `idle`: 400 slowloris HTTP connections and 400 idle unbound SMPP connections,
  held for 12 s;
- `wrong_password`: up to 2,000 binds with a wrong password, a connection each.

Per attack: MB of hostile input sent; the daemon's RSS before, peak (sampled every
50 ms) and after, and the most descriptors it held; the log bytes the attack cost
(log growth from the attack's start until the daemon is quiet again, minus the good
client's own lines at the rate measured without attack), also per MB of hostile
input; likewise the daemon's CPU seconds; the good client's p50/p99 and failed
lookups without and with the attack; how long the daemon stayed busy after the good
client's phase; whether /readyz answered 200 afterwards; and what the attacker saw
(connections refused or closed by the daemon, bind answers).

Every loop is bounded in count and time and everything stays on 127.0.0.1: one run
(all four attacks) takes about a minute, and under two even against a daemon that
handles the attacks badly. `python -m bench abuse --daemon-src PATH` runs the daemon
from another source tree (e.g. a worktree of an older commit) for before/after.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hlrd.smpp.pdu import BindTransceiver, DeliverSm, DeliverSmResp, Pdu, SubmitSm, SubmitSmResp
from hlrd.smpp.receipts import receipt_from_pdu
from hlrd.smpp.transport import Handler, LinkConfig, SmppConnection, connect

from .procs import ROOT, cpu_seconds, logged_daemon, rss_mb, simulator
from .stats import percentile

RATE = 200.0  # the good client's lookups/s
QUIET_S = 3.0  # good client alone
RECEIPT_WAIT_S = 15.0  # after its last submit, how long the good client waits for receipts
SETTLE_MAX_S = 20.0  # how long the daemon may stay busy after an attack before we go on
# (attack, size, seconds): MB of bad PDUs, lookups never acknowledged, idle
# connections of each kind, wrong-password binds; the attacker stops at its size or
# its seconds, and the good client runs beside it for those seconds. Idle connections
# are held for 12 s, longer than the 10 s a daemon may give a connection to bind or
# to send its request head, so such timeouts show.
ATTACKS: tuple[tuple[str, float, float], ...] = (
    ("bad_pdus", 4, 6.0),
    ("no_ack", 3000, 6.0),
    ("idle", 400, 12.0),
    ("wrong_password", 2000, 6.0),
)


def write_config(sim_port: int) -> Path:
    """Keys every version of the daemon knows; the limits are each version's defaults."""
    path = Path(tempfile.mkdtemp(prefix="hlrd-bench-")) / "hlrd.toml"
    accounts = "".join(
        f'\n[[smpp_server.accounts]]\nsystem_id = "{name}"\npassword = "{name}"\n'
        "window = 10000\ntps = 100000\nmax_binds = 8\n"
        for name in ("bench", "noack")
    )
    path.write_text(
        '[http]\nport = 0\n\n[logging]\nformat = "json"\nlevel = "INFO"\n\n'
        "[numbers]\nmobile_only = false\n\n"
        f'[[upstream.providers]]\nname = "sim"\nport = {sim_port}\npassword = "secret"\n'
        "binds = 1\nwindow = 256\ntps = 100000\n\n"
        "[smpp_server]\nenabled = true\nport = 0\n" + accounts
    )
    return path


@dataclass
class Phase:
    sent: int = 0
    latencies: list[float] = field(default_factory=list)
    failed: int = 0  # submit refused, or a receipt saying hlrd could not look it up
    lost: int = 0  # no receipt within RECEIPT_WAIT_S of the last submit
    open: int = 0  # submitted, not yet answered by a receipt or a refusal
    all_answered: asyncio.Event = field(default_factory=asyncio.Event)

    def close_one(self) -> None:
        self.open -= 1
        if self.open == 0:
            self.all_answered.set()


class _GoodClient(Handler):
    """One bound transceiver: submit_sm at a fixed rate, every receipt matched and
    checked (err 9xx = hlrd did not get an answer: failed), every receipt acked."""

    def __init__(self) -> None:
        self.conn: SmppConnection | None = None
        self.phase = Phase()
        self.started: dict[str, tuple[Phase, float]] = {}  # message id -> send time
        self.early: dict[str, tuple[float, bool]] = {}  # receipt before its submit_sm_resp
        self.n = 0

    def submit(self) -> None:
        assert self.conn is not None
        phase = self.phase
        self.n += 1
        phase.open += 1
        phase.sent += 1
        pdu = SubmitSm(destination_addr=f"4860{self.n:07d}", registered_delivery=1)
        t = time.perf_counter()
        self.conn.send_request(pdu, functools.partial(self._submitted, phase, t), timeout=60)

    def _submitted(self, phase: Phase, t: float, resp: Pdu | None, exc: Exception | None) -> None:
        if not isinstance(resp, SubmitSmResp) or resp.status != 0:
            phase.failed += 1
            phase.close_one()
        elif resp.message_id in self.early:
            at, ok = self.early.pop(resp.message_id)
            self._answered(phase, at - t, ok)
        else:
            self.started[resp.message_id] = (phase, t)

    def handle_request(self, conn: SmppConnection, pdu: Pdu) -> Pdu | None:
        if isinstance(pdu, DeliverSm):
            now = time.perf_counter()
            receipt = receipt_from_pdu(pdu)
            if receipt is not None:
                ok = not receipt.err.isdigit() or int(receipt.err) < 900
                sent = self.started.pop(receipt.message_id, None)
                if sent is None:
                    self.early[receipt.message_id] = (now, ok)
                else:
                    self._answered(sent[0], now - sent[1], ok)
            return DeliverSmResp(sequence=pdu.sequence)
        return None

    def _answered(self, phase: Phase, latency: float, ok: bool) -> None:
        phase.latencies.append(latency)
        phase.failed += not ok
        phase.close_one()

    async def run(self, seconds: float) -> Phase:
        """Submit at RATE for `seconds`, then wait (bounded) for every receipt.
        Receipts that come later still go to this phase's object, never the next."""
        loop = asyncio.get_running_loop()
        self.phase = phase = Phase()
        start = loop.time()
        for i in range(int(RATE * seconds)):
            await asyncio.sleep(max(0.0, start + i / RATE - loop.time()))
            self.submit()
        if phase.open:
            try:
                await asyncio.wait_for(phase.all_answered.wait(), RECEIPT_WAIT_S)
            except TimeoutError:
                phase.lost = phase.open
        return phase


def open_fds(pid: int) -> int:
    """Descriptors a process holds (Linux)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


class _Peaks:
    """The daemon's largest RSS and descriptor count, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rss = rss_mb(pid)
        self.fds = open_fds(pid)
        self._handle: asyncio.TimerHandle | None = None
        self._sample()

    def _sample(self) -> None:
        try:
            self.rss = max(self.rss, rss_mb(self.pid))
            self.fds = max(self.fds, open_fds(self.pid))
        except (OSError, RuntimeError):
            return  # the daemon is gone
        self._handle = asyncio.get_running_loop().call_later(0.05, self._sample)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


def _size(path: Path) -> int:
    """A file's size: a stat() on a local file, too quick to be worth a thread."""
    return path.stat().st_size


async def _settle(pid: int, log: Path) -> float:
    """Seconds until the daemon is quiet (log unchanged and < 5% CPU for 1 s), bounded."""
    start = time.monotonic()
    quiet_since = start
    size, cpu = _size(log), cpu_seconds(pid)
    while time.monotonic() - start < SETTLE_MAX_S:
        await asyncio.sleep(0.25)
        new_size, new_cpu = _size(log), cpu_seconds(pid)
        if new_size != size or new_cpu - cpu > 0.05 * 0.25:
            quiet_since = time.monotonic()
        size, cpu = new_size, new_cpu
        if time.monotonic() - quiet_since >= 1.0:
            return quiet_since - start
    return SETTLE_MAX_S


async def _ready(http_port: int) -> bool:
    """GET /readyz answered 200 within 3 s."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", http_port), 3)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), 3)
        return status.split()[1:2] == [b"200"]
    except (OSError, TimeoutError):
        return False
    finally:
        writer.transport.abort()


async def _attack(
    kind: str, size: float, seconds: float, http_port: int, smpp_port: int, pid: int, log: Path
) -> dict[str, float]:
    client = _GoodClient()
    conn = client.conn = await connect("127.0.0.1", smpp_port, client, LinkConfig(window=10_000))
    await conn.bind(BindTransceiver(system_id="bench", password="bench"))
    await client.run(0.5)  # warm up
    log_0, cpu_0 = _size(log), cpu_seconds(pid)
    quiet = await client.run(QUIET_S)
    log_per_lookup = (_size(log) - log_0) / max(1, quiet.sent)
    cpu_per_lookup = (cpu_seconds(pid) - cpu_0) / max(1, quiet.sent)
    rss_before = rss_mb(pid)
    fds_before = open_fds(pid)
    peak = _Peaks(pid)
    log_1, cpu_1 = _size(log), cpu_seconds(pid)
    attacker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.attacks",
        kind,
        str(smpp_port),
        str(http_port),
        str(seconds),
        str(size),
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    loud = await client.run(seconds)
    try:
        stdout, _ = await asyncio.wait_for(attacker.communicate(), seconds + 30)
        report = json.loads(stdout)
    except (TimeoutError, json.JSONDecodeError):  # its traceback, if any, is on stderr
        if attacker.returncode is None:
            attacker.kill()
            await attacker.wait()
        report = {"hostile_bytes": float("nan"), "failed": 1}
    busy = await _settle(pid, log)
    peak.stop()
    log_bytes = _size(log) - log_1 - log_per_lookup * loud.sent
    cpu = cpu_seconds(pid) - cpu_1 - cpu_per_lookup * loud.sent
    ready = await _ready(http_port)
    if not conn.closing:
        await conn.close()
    hostile_mb = report.pop("hostile_bytes") / 1024 / 1024
    out = {
        "hostile input MB": hostile_mb,
        "daemon RSS MiB before": rss_before,
        "daemon RSS MiB peak": peak.rss,
        "daemon RSS MiB after": rss_mb(pid),
        "daemon open fds before": float(fds_before),
        "daemon open fds peak": float(peak.fds),
        "daemon log KB for the attack": log_bytes / 1024,
        "daemon log KB per MB of hostile input": log_bytes / 1024 / hostile_mb
        if hostile_mb
        else float("nan"),
        "daemon CPU s for the attack": cpu,
        "daemon busy s after the good client's phase": busy,
        "good p50 ms without": percentile(quiet.latencies, 50) * 1000,
        "good p50 ms with": percentile(loud.latencies, 50) * 1000,
        "good p99 ms without": percentile(quiet.latencies, 99) * 1000,
        "good p99 ms with": percentile(loud.latencies, 99) * 1000,
        f"good failed+lost without (of {quiet.sent})": float(quiet.failed + quiet.lost),
        f"good failed+lost with (of {loud.sent})": float(loud.failed + loud.lost),
        "ready after (1 = /readyz 200)": float(ready),
    }
    out.update({f"attacker {k}": float(v) for k, v in report.items()})
    return out


def _one(kind: str, size: float, seconds: float, sim_port: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="hlrd-bench-") as tmp:
        log = Path(tmp) / "daemon.log"
        with logged_daemon(write_config(sim_port), log) as (http_port, smpp_port, pid):
            if not smpp_port:
                raise RuntimeError("the daemon did not start its SMPP server")
            result = asyncio.run(_attack(kind, size, seconds, http_port, smpp_port, pid, log))
        if os.environ.get("HLRD_BENCH_KEEP_LOGS"):
            kept = Path(os.environ["HLRD_BENCH_KEEP_LOGS"]) / f"abuse-{kind}.log"
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_bytes(log.read_bytes())
    return result


def measure(runs: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    with simulator(0) as (sim_port, _):
        for _ in range(runs):
            for kind, size, seconds in ATTACKS:
                started = time.monotonic()
                for metric, value in _one(kind, size, seconds, sim_port).items():
                    out.setdefault(f"{kind}: {metric}", []).append(value)
                print(f"#   {kind}: {time.monotonic() - started:.0f} s", file=sys.stderr)
    return out
