"""A plain JSON HLR lookup API over HTTP, answering from the same scenario.

The generic shape of an HTTP HLR provider (one GET per number, JSON answer), for
the daemon's HTTP adapters and for a quick look at what the scenario says of a
number: `curl 127.0.0.1:8081/v1/hlr/48601234567`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from .scenario import Scenario, msisdn_of

# This API in the terms of hlrd's generic_json adapter (docs/vendors/generic-json.md,
# example 1, which a test holds equal to it): what `make run` and tests configure.
GENERIC_JSON_MAPPING: dict[str, Any] = {
    "request": {"method": "GET", "path": "/v1/hlr/{msisdn}", "auth": "none"},
    "fields": {
        "number": {"path": "msisdn"},
        "map_error": {"path": "map_error"},
        "imsi": {"path": "imsi"},
        "mccmnc": {"path": "mccmnc"},
        "home_mccmnc": {"path": "home_mccmnc"},
        "serving_mccmnc": {"path": "serving_mccmnc"},
        "msc": {"path": "msc"},
        "roaming": {"path": "roaming"},
        "roaming_country": {"path": "roaming_country"},
        "ported": {"path": "ported"},
        "status": {
            "path": "status",
            "map": {
                "live": "connected",
                "absent": "absent",
                "unknown": "unknown_subscriber",
                "barred": "barred",
                "not_provisioned": "not_provisioned",
                "system_failure": "system_failure",
            },
        },
    },
    "invalid_number": {"statuses": [400], "path": "error", "values": ["invalid_msisdn"]},
}


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
