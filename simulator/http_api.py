"""A plain JSON HLR lookup API over HTTP, answering from the same scenario.

The generic shape of an HTTP HLR provider (one GET per number, JSON answer), for
the daemon's HTTP adapters and for a quick look at what the scenario says of a
number: `curl 127.0.0.1:8081/v1/hlr/48601234567`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from aiohttp import web

from .scenario import Scenario, msisdn_of


def make_app(
    scenario: Scenario, vendors: Sequence[Callable[[web.Application], None]] = ()
) -> web.Application:
    """The generic API, and each vendor imitation's routes (`add_routes` of each)."""
    rng = random.Random(scenario.seed)

    async def lookup(request: web.Request) -> web.Response:
        number = msisdn_of(request.match_info["msisdn"])
        if number is None:
            return web.json_response(
                {
                    "error": "invalid_msisdn",
                    "field": "msisdn",
                    "detail": "6-15 ASCII digits, optionally after one +",
                },
                status=400,
            )
        a = scenario.answer(number, rng)
        return web.json_response(
            {
                "msisdn": a.msisdn,
                "status": a.status,
                "map_error": a.map_error,
                "imsi": a.imsi,
                "mccmnc": a.subscription_mccmnc,
                "home_mccmnc": a.home_mccmnc,
                "serving_mccmnc": a.serving_mccmnc,
                "msc": a.msc,
                "roaming": a.roaming,
                "roaming_country": a.roaming_country,
                "ported": a.ported,
            }
        )

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/v1/hlr/{msisdn}", lookup)
    app.router.add_get("/healthz", health)
    for add_routes in vendors:
        add_routes(app)
    return app
