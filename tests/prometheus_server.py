"""A real Prometheus on 127.0.0.1 for the tests: scrapes one target, loads rule files.

Scrapes and evaluates every second, so rate() over a minute has samples within two
seconds. Nothing here sleeps for a fixed time: start-up and queries poll a condition
with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml

START_TIMEOUT_S = 15.0
POLL_S = 0.2


class PrometheusError(AssertionError):
    pass


class Prometheus:
    def __init__(self, url: str, http: aiohttp.ClientSession, log: Path) -> None:
        self.url = url
        self.http = http
        self.log = log

    async def api(self, path: str, **params: str) -> Any:
        async with self.http.get(f"{self.url}/api/v1/{path}", params=params) as resp:
            body = await resp.json()
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('error', body)}")
        return body["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's samples; a PrometheusError when Prometheus refuses it."""
        data = await self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def log_tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def has_numbers(samples: list[dict[str, Any]]) -> bool:
    """At least one sample with a number a graph can draw (not NaN or ±Inf)."""
    return any(math.isfinite(float(s["value"][1])) for s in samples)


async def poll(
    condition: Callable[[], Awaitable[bool]], timeout_s: float, poll_s: float = POLL_S
) -> bool:
    """Await `condition` until it is true or `timeout_s` has passed; its last verdict."""
    deadline = time.monotonic() + timeout_s
    while True:
        if await condition():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(poll_s)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_config(path: Path, target: str, rule_files: list[Path]) -> None:
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [{"job_name": "hlrd", "static_configs": [{"targets": [target]}]}],
    }
    path.write_text(yaml.safe_dump(config))


@contextlib.asynccontextmanager
async def running_prometheus(
    binary: str, workdir: Path, target: str, rule_files: list[Path]
) -> AsyncIterator[Prometheus]:
    """Prometheus scraping `target` (host:port) as job="hlrd", ready to query."""
    config = workdir / "prometheus.yml"
    write_config(config, target, rule_files)
    log = workdir / "prometheus.log"
    port = _free_port()
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            prom = Prometheus(f"http://127.0.0.1:{port}", http, log)

            async def ready() -> bool:
                if proc.returncode is not None:
                    return True  # exited: stop waiting, reported below
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{prom.url}/-/ready") as resp:
                        return resp.status == 200
                return False

            if not await poll(ready, START_TIMEOUT_S) or proc.returncode is not None:
                raise PrometheusError(f"Prometheus did not start:\n{prom.log_tail()}")
            yield prom
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
