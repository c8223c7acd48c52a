"""/v1/policies: the call policies this daemon applies, so a page or a dialer's
administrator can offer the names (`?policy=`) and see which version answers."""

from __future__ import annotations

from aiohttp import web

from .http_errors import CHECKER_KEY


async def _policies(request: web.Request) -> web.Response:
    checker = request.app[CHECKER_KEY]
    shown = [
        {
            **p.to_json(),
            "consent": p.consent,
            "calling_hours": p.hours is not None,
            "lists": None if p.lists is None else sorted(p.lists),
            "block_zones": sorted(z.value for z in p.roaming.block_zones),
        }
        for p in checker.policies.values()
    ]
    return web.json_response({"default": checker.default_policy.name, "policies": shown})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/policies", _policies)
