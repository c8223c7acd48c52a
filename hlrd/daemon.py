"""Wires config -> providers -> service -> HTTP front end, and shuts down in order.

Shutdown order matters: first stop taking lookups (new ones get 503), give those in
flight `lookup.shutdown_grace_s` to finish, then stop the providers (which fails
what is left with a clear "shutting down" result and unbinds every link), then let
the SMPP front end turn what finished into receipts and unbind its clients, and only
then close the HTTP server, so every request in flight gets an answer.
"""

from __future__ import annotations

import asyncio
import signal

import structlog
from aiohttp import web

from .config import Config
from .frontends.http_api import make_app
from .frontends.smpp_server import SmppFrontend
from .metrics import Metrics
from .runtime import tune_gc
from .service import LookupService
from .upstream.smpp_provider import SmppProvider

log = structlog.get_logger("hlrd")


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = Metrics()
        self.providers = [
            SmppProvider(p, self.metrics, config.lookup.max_queue) for p in config.providers
        ]
        self.service = LookupService(config, self.providers, self.metrics)
        self.smpp_server = (
            SmppFrontend(config.smpp_server, self.service, self.metrics)
            if config.smpp_server.enabled
            else None
        )
        self._runner: web.AppRunner | None = None
        self.http_port = 0

    async def start(self) -> None:
        for p in self.providers:
            await p.start()
        app = make_app(self.service, self.metrics, self.config.http.auth_tokens)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.http.host, self.config.http.port)
        await site.start()
        self.http_port = self._runner.addresses[0][1]
        if self.smpp_server is not None:
            await self.smpp_server.start()
        log.info(
            "hlrd.started",
            http=f"http://{self.config.http.host}:{self.http_port}",
            providers=[f"{p.cfg.name}@{p.cfg.host}:{p.cfg.port}" for p in self.providers],
        )

    async def stop(self) -> None:
        grace = self.config.lookup.shutdown_grace_s
        log.info("hlrd.stopping", in_flight=self.service.in_flight, grace_s=grace)
        await self.service.drain(grace)
        for p in self.providers:
            await p.stop()
        await self.service.drain(1.0)  # let failed lookups reach their HTTP handlers
        if self.smpp_server is not None:
            await self.smpp_server.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        log.info("hlrd.stopped")

    async def run_until_signalled(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        tune_gc()
        ready = loop.create_task(self._announce_ready())
        await stop.wait()
        ready.cancel()
        await self.stop()

    async def _announce_ready(self) -> None:
        """One log line when the first upstream bind is up: scripts wait for it."""
        await self.service.wait_ready()
        log.info(
            "hlrd.ready",
            http=f"http://{self.config.http.host}:{self.http_port}",
            smpp=self.smpp_server.port if self.smpp_server is not None else None,
        )
