"""Descriptors: `hlrd run` in a process whose limit cannot be raised, filled with clients.

The finding: 1,100 idle HTTP connections against a limit of 1,024 stopped HTTP, SMPP
binds and upstream reconnects, and logged 222,033 accept() tracebacks in 30 s. Here
the daemon runs with RLIMIT_NOFILE 256 (soft and hard, so raising it cannot help):
client caps are fitted under the limit, clients beyond them are refused at once,
and upstream reconnects, SMPP binds and readiness keep working meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import re
import resource
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from simulator.controller import Simulator

from .conftest import ROOT
from .esme import bound_client, lookup
from .test_http_hostile import (
    NUMBER_ANYHOW,
    TIMEOUT,
    closed_by_server,
    connect,
    exchange,
    get,
    hang_up,
    read_answer,
)

FD_LIMIT = 256
CONFIG = """
[http]
host = "127.0.0.1"
port = 0
max_connections = 1000
max_connections_per_ip = 1000
header_timeout_s = 60
idle_timeout_s = 60

[logging]
format = "json"
level = "DEBUG"

[lookup]
shutdown_grace_s = 0.5

[smpp_server]
enabled = true
host = "127.0.0.1"
port = 0

[[smpp_server.accounts]]
system_id = "cc"
password = "ccpass"

[[upstream.providers]]
name = "sim"
port = {port}
password = "secret"
binds = 1
reconnect_min_s = 0.01
reconnect_max_s = 0.05
"""


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


class DaemonProcess:
    """`hlrd run` as a child; its JSON log lines read as they come, waited on by event."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.events.append({"event": "(not json)", "line": line})
            self._changed.set()
        self._changed.set()

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == name]

    async def wait_for(self, name: str, count: int = 1) -> dict[str, Any]:
        async def seen() -> dict[str, Any]:
            while len(self.named(name)) < count:
                assert not self._reader.done(), f"hlrd exited before {name}:\n{self.log}"
                self._changed.clear()
                await self._changed.wait()
            return self.named(name)[count - 1]

        return await asyncio.wait_for(seen(), TIMEOUT)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), TIMEOUT)
        await asyncio.wait_for(self._reader, TIMEOUT)
        return code


@asynccontextmanager
async def hlrd_process(config: str, tmp_path: Path) -> AsyncIterator[DaemonProcess]:
    path = tmp_path / "hlrd.toml"
    path.write_text(config)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hlrd",
        "run",
        "--config",
        str(path),
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_low_fd_limit,
    )
    daemon = DaemonProcess(proc)
    try:
        yield daemon
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_client_connections_are_refused_before_descriptors_run_out(
    sim: Simulator, tmp_path: Path
) -> None:
    async with hlrd_process(CONFIG.format(port=sim.smpp_port), tmp_path) as daemon:
        started = await daemon.wait_for("hlrd.started")
        ready = await daemon.wait_for("hlrd.ready")
        port = int(started["http"].rsplit(":", 1)[1])
        limit = daemon.named("hlrd.fd_limit")[0]
        caps = daemon.named("hlrd.connection_caps_clamped")[0]
        cap = caps["http_max_connections"]

        # Fill HTTP to its cap with idle clients; every one beyond is refused at once.
        idle = [await connect(port) for _ in range(cap)]
        refused = []
        for _ in range(20):
            reader, writer = await connect(port)
            refused.append(await asyncio.wait_for(read_answer(reader), TIMEOUT))
            await closed_by_server(reader)
            writer.close()

        # Meanwhile the upstream link drops and comes back ...
        sim.smsc.drop_links()  # type: ignore[union-attr]
        await daemon.wait_for("upstream.bound", count=2)
        # ... and a call-center platform binds to the SMPP front end and looks up.
        conn, receipts = await bound_client(ready["smpp"], "cc", "ccpass")
        receipt, _ = await asyncio.wait_for(lookup(conn, receipts, "48600000003"), TIMEOUT)
        await conn.close()

        # One idle client leaves: a fresh one is served, readiness included.
        await hang_up(*idle.pop())
        readyz = await exchange(port, get("/readyz"))
        await hang_up(*idle.pop())
        digit = await exchange(port, get("/v1/check/+48600000003?format=digit"))
        await hang_up(*idle.pop())
        metrics = (await exchange(port, get("/metrics"))).body.decode()
        for _, writer in idle:
            writer.close()
        code = await daemon.stop()

    assert (limit["soft"], limit["hard"]) == (FD_LIMIT, FD_LIMIT)
    assert caps["http_max_connections"] + caps["smpp_max_connections"] <= FD_LIMIT - 128
    assert (caps["http_max_connections"], caps["smpp_max_connections"]) == (106, 22)
    assert {a.status for a in refused if a} == {503}
    assert receipt.stat == "DELIVRD"
    assert readyz.status == 200
    assert (digit.status, digit.body) == (200, b"1")
    assert 'hlrd_client_connections_refused_total{frontend="http",reason="total"} 20.0' in metrics
    assert code == 0
    # No flood: one refusal line for 20 refusals, no accept() failure, no traceback.
    assert len(daemon.named("http.connection_refused")) == 1
    assert not daemon.named("loop.error")
    assert "Traceback" not in daemon.log
    assert not NUMBER_ANYHOW.search(daemon.log)


def test_the_soft_limit_is_raised_to_the_hard_one() -> None:
    """Services often start with 1,024 soft and far more hard: hlrd takes the hard."""
    script = (
        "import resource; from hlrd.fd_limits import raise_fd_limit;"
        "print('limits', raise_fd_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, 2 * FD_LIMIT)),
    )
    assert f"limits {2 * FD_LIMIT} {2 * FD_LIMIT}" in out.stdout
    assert re.search(r"hlrd\.fd_limit.*hard=512.*soft=512", out.stdout + out.stderr)
