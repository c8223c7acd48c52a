"""http-upstream: lookups/s through each HTTP vendor adapter against its imitation,
beside a bare aiohttp client loop making the same requests; and Infobip's requests
per lookup at 1,000 lookups/s.

The imitations run in a simulator process of their own (its own core); hlrd's
provider (pool, rate, retries, deadline, the vendor's signing and reading) and the
bare loop run in this process, alternately, run after run, so the VM's drift reaches
both. The bare loop is what a user would write without hlrd: one kept-alive session,
the vendor's request as hlrd builds it (signature, JWT and token included), the body
read and parsed as JSON, nothing checked or mapped. Same concurrency, same numbers.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from hlrd.config import HttpProviderConfig
from hlrd.upstream.base import ProviderError
from hlrd.upstream.factory import VENDORS
from hlrd.upstream.http.infobip import Infobip
from hlrd.upstream.http.json_mapping import parse_mapping
from hlrd.upstream.http.provider import HttpProvider, OneRequestVendor
from simulator.vendors import demo_provider

from .procs import http_simulator

ONE_BY_ONE = ("hlr_lookups", "tyntec", "vonage", "camara", "generic_json")
CONCURRENCY = 32
LOOKUPS = 3000  # per run and path
INFOBIP_IN_FLIGHT = 2000  # lookups in flight: two full batches of 1,000
INFOBIP_LOOKUPS = 20_000
PACED_RATE = 1000.0  # lookups/s offered to Infobip for requests per lookup
PACED_SECONDS = 3.0


def _cfg(kind: str, port: int, **changes: Any) -> HttpProviderConfig:
    settings = {**demo_provider(kind, port), "tps": 100_000, "pool_size": CONCURRENCY}
    settings.update(changes)
    if "mapping" in settings:  # the configuration's table, parsed as at load
        settings["mapping"] = parse_mapping(settings["mapping"])
    return HttpProviderConfig(**settings)


def _numbers(run: int, count: int) -> list[str]:
    return [f"4860{run}{i:06d}" for i in range(count)]


async def _closed_loop(
    numbers: list[str], concurrency: int, one: Callable[[str], Awaitable[object]]
) -> float:
    """Lookups/s with `concurrency` lookups in flight until `numbers` are done."""
    it = iter(numbers)

    async def worker() -> None:
        for n in it:
            await one(n)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(numbers) / (time.perf_counter() - start)


async def _through_hlrd(cfg: HttpProviderConfig, numbers: list[str], concurrency: int) -> float:
    provider = HttpProvider(cfg, VENDORS[cfg.type](cfg), max_queue=100_000)

    async def one(n: str) -> object:
        try:
            return await provider.lookup(n, "bench")
        except ProviderError as exc:  # an unassigned number's answer, for some vendors
            if exc.outcome != "failed":
                raise
            return exc

    await provider.start()
    try:
        return await _closed_loop(numbers, concurrency, one)
    finally:
        await provider.stop()


async def _bare(cfg: HttpProviderConfig, numbers: list[str]) -> float:
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Any:
            async with session.request(method, url, data=body, headers=headers) as r:
                return json.loads(await r.read())

        if cfg.type == "camara":
            auth = aiohttp.BasicAuth(cfg.api_key, cfg.api_secret)
            form = {"grant_type": "client_credentials"}
            async with session.post(cfg.base_url + "/oauth2/token", data=form, auth=auth) as r:
                token = (await r.json())["access_token"]

            async def one(n: str) -> object:
                body = json.dumps({"device": {"phoneNumber": "+" + n}}).encode()
                return await asyncio.gather(
                    *(
                        send(
                            "POST",
                            f"{cfg.base_url}/{api}/v1/retrieve",
                            body,
                            {
                                "Authorization": "Bearer " + token,
                                "Content-Type": "application/json",
                                "x-correlator": str(uuid.uuid4()),
                            },
                        )
                        for api in ("device-roaming-status", "device-reachability-status")
                    )
                )

        else:
            vendor = VENDORS[cfg.type](cfg)
            assert isinstance(vendor, OneRequestVendor)

            async def one(n: str) -> object:
                req = vendor.request(n, "bench")
                body = req.body() if callable(req.body) else req.body
                return await send(req.method, cfg.base_url + req.path, body, req.headers())

        return await _closed_loop(numbers, CONCURRENCY, one)


async def _bare_batches(cfg: HttpProviderConfig, numbers: list[str], size: int) -> float:
    """Infobip without hlrd: the same full batches, as many in flight as hlrd has."""
    vendor = Infobip(cfg.api_key)
    batches = [numbers[i : i + size] for i in range(0, len(numbers), size)]
    async with aiohttp.ClientSession() as session:

        async def one(batch: str) -> None:
            req = vendor.request(json.loads(batch))
            assert isinstance(req.body, bytes)
            async with session.post(
                cfg.base_url + req.path, data=req.body, headers=req.headers()
            ) as r:
                json.loads(await r.read())

        rate = await _closed_loop([json.dumps(b) for b in batches], INFOBIP_IN_FLIGHT // size, one)
    return rate * size


async def _paced_infobip(cfg: HttpProviderConfig, run: int) -> float:
    """Requests per lookup with lookups offered at PACED_RATE (open loop)."""
    provider = HttpProvider(cfg, VENDORS["infobip"](cfg), max_queue=100_000)
    await provider.start()
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[Any]] = []
    numbers = _numbers(run, int(PACED_RATE * PACED_SECONDS))
    try:
        start = loop.time() + 0.05
        for i, n in enumerate(numbers):
            await asyncio.sleep(max(0.0, start + i / PACED_RATE - loop.time()))
            tasks.append(loop.create_task(provider.lookup(n, "bench")))
        await asyncio.gather(*tasks, return_exceptions=True)
        return provider.client.requests_sent / len(numbers)
    finally:
        await provider.stop()


def measure(runs: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}

    def add(metric: str, value: float) -> None:
        out.setdefault(metric, []).append(value)

    async def all_runs(port: int) -> None:
        for run in range(runs):
            for kind in ONE_BY_ONE:
                cfg = _cfg(kind, port)
                numbers = _numbers(run, LOOKUPS)
                # Alternate which path goes first, so neither always has the warm start.
                if run % 2:
                    bare = await _bare(cfg, numbers)
                    hlrd = await _through_hlrd(cfg, numbers, CONCURRENCY)
                else:
                    hlrd = await _through_hlrd(cfg, numbers, CONCURRENCY)
                    bare = await _bare(cfg, numbers)
                add(f"{kind}_hlrd_lookups_per_s", hlrd)
                add(f"{kind}_bare_client_lookups_per_s", bare)
                add(f"{kind}_ratio_hlrd_to_bare", hlrd / bare)
            cfg = _cfg("infobip", port, batch_size=1000)
            numbers = _numbers(run, INFOBIP_LOOKUPS)
            hlrd = await _through_hlrd(cfg, numbers, INFOBIP_IN_FLIGHT)
            bare = await _bare_batches(cfg, numbers, 1000)
            add("infobip_hlrd_lookups_per_s", hlrd)
            add("infobip_bare_client_lookups_per_s", bare)
            add("infobip_ratio_hlrd_to_bare", hlrd / bare)
            # Requests per 1,000 lookups at 1,000 lookups/s: the account's request rate
            # and the batch wait decide how full the batches get.
            for tps, wait_ms in ((10, 5), (50, 5), (50, 100)):
                paced = _cfg("infobip", port, tps=tps, batch_wait_s=wait_ms / 1000)
                per_lookup = await _paced_infobip(paced, run)
                add(
                    f"infobip_requests_per_1000_lookups_tps{tps}_wait{wait_ms}ms", 1000 * per_lookup
                )

    with http_simulator(0) as (port, _pid):
        asyncio.run(all_runs(port))
    return out
