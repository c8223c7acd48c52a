"""/v1/cache: what the cache holds, and purging it (all, older than, one number).

Behind the same bearer tokens as the lookups. Purging through the daemon (rather
than in the store file) also empties its memory tier, so a purged answer is never
served again.
"""

from __future__ import annotations

from aiohttp import web

from ..domain.numbers import InvalidNumber
from .http_errors import SERVICE_KEY, error

_MAX_SECONDS = 10 * 365 * 86400


async def _stats(request: web.Request) -> web.Response:
    cache = request.app[SERVICE_KEY].cache
    if cache is None:
        return error(request, 404, "not_found", "this hlrd runs without a cache")
    return web.json_response(await cache.stats())


async def _purge(request: web.Request) -> web.Response:
    """`?older_than=SECONDS` or `?all=1`: one of them, so no typo empties the cache."""
    cache = request.app[SERVICE_KEY].cache
    if cache is None:
        return error(request, 404, "not_found", "this hlrd runs without a cache")
    older = request.query.get("older_than")
    flag = request.query.get("all")
    if flag not in (None, "1"):  # `all=yes&older_than=60` must not pass as older_than alone
        return error(request, 400, "invalid_parameter", "all must be 1", "all")
    everything = flag == "1"
    if (older is None) == (not everything):
        return error(
            request, 400, "invalid_parameter", "give older_than=SECONDS or all=1", "older_than"
        )
    checked_before: float | None = None
    if older is not None:
        if not (older.isascii() and older.isdigit()) or int(older) > _MAX_SECONDS:
            return error(
                request, 400, "invalid_parameter", "older_than must be whole seconds", "older_than"
            )
        checked_before = cache.clock() - int(older)
    return web.json_response({"removed": await cache.purge(checked_before)})


async def _forget(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    if service.cache is None:
        return error(request, 404, "not_found", "this hlrd runs without a cache")
    try:
        msisdn = service.normalize(request.match_info["number"])
    except InvalidNumber as exc:
        return error(request, 400, "invalid_number", exc.detail, "number", reason=exc.problem.value)
    return web.json_response({"removed": await service.cache.forget(msisdn.e164)})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/cache", _stats)
    app.router.add_delete("/v1/cache", _purge)
    app.router.add_delete("/v1/cache/{number}", _forget)
