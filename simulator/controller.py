"""Runs a simulator on 127.0.0.1 inside the current event loop (tests, CLI).

Shaped like aiosmtpd's Controller: start, read the ports it bound, stop. Port 0
picks a free port, so tests can run in parallel without clashing.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from aiohttp import web

from hlrd.smpp.transport import LinkConfig, serve

from .http_api import make_app
from .scenario import Scenario
from .smsc import Smsc, Stats
from .vendors.camara import CamaraImitation
from .vendors.hlr_lookups import HlrLookupsImitation
from .vendors.infobip import InfobipImitation
from .vendors.tyntec import TyntecImitation
from .vendors.vonage import VonageImitation


class Simulator:
    def __init__(
        self,
        scenario: Scenario,
        host: str = "127.0.0.1",
        smpp_port: int = 0,
        http_port: int | None = None,
        link: LinkConfig | None = None,
    ) -> None:
        self.scenario = scenario
        self.host = host
        self._smpp_port = smpp_port
        self._http_port = http_port
        self.link = link or LinkConfig(window=scenario.smpp.window, enquire_link_interval=30.0)
        self.smsc: Smsc | None = None
        self._server: asyncio.Server | None = None
        self._http: web.AppRunner | None = None
        self.smpp_port = 0
        self.http_port: int | None = None
        # Vendor imitations on the HTTP port (credentials: each module's DEMO_*).
        self.hlr_lookups = HlrLookupsImitation(scenario)
        self.infobip = InfobipImitation(scenario)
        self.tyntec = TyntecImitation(scenario)
        self.camara = CamaraImitation(scenario)
        self.vonage = VonageImitation(scenario)
        self.vendors = (self.hlr_lookups, self.infobip, self.tyntec, self.camara, self.vonage)

    @property
    def stats(self) -> Stats:
        assert self.smsc is not None, "simulator not started"
        return self.smsc.stats

    async def start(self) -> None:
        self.smsc = Smsc(self.scenario)
        self._server = await serve(self.smsc.handler, self.host, self._smpp_port, self.link)
        self.smpp_port = self._server.sockets[0].getsockname()[1]
        if self._http_port is not None:
            app = make_app(self.scenario, [v.add_routes for v in self.vendors])
            self._http = web.AppRunner(app, access_log=None)
            await self._http.setup()
            site = web.TCPSite(self._http, self.host, self._http_port)
            await site.start()
            self.http_port = self._http.addresses[0][1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self.smsc is not None:
            await self.smsc.close()
        if self._server is not None:
            await self._server.wait_closed()
        if self._http is not None:
            for v in self.vendors:
                v.release()
            await self._http.cleanup()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
