"""/v1/lists/{name}/import and /v1/lists/imports/{id}: a registry file imported over
HTTP (the web page's lists section), with its progress to watch.

The file is the request body, as `hlrd lists import` takes it from disk; the query
carries that command's options. The answer (202) comes once the file is received;
the import then runs in the background (compliance/list_imports.py) and its progress
is polled.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

from aiohttp import web

from ..compliance.list_formats import ReadOptions
from ..compliance.list_imports import ImportRefused, ImportRequest, ListImports
from .http_errors import error

IMPORTS_KEY = web.AppKey("list_imports", ListImports)
_MAX_OPTION = 100


def _request(request: web.Request) -> ImportRequest:
    q = request.query
    for name in ("format", "region", "column", "delimiter", "version", "change"):
        if len(q.get(name, "")) > _MAX_OPTION:
            raise ImportRefused(400, "invalid_parameter", f"{name}: too long", name)
    region = q.get("region", "").upper()
    if region and not (len(region) == 2 and region.isalpha() and region.isascii()):
        raise ImportRefused(400, "invalid_parameter", "region: an ISO 3166 alpha-2 code", "region")
    max_age: float | None = None
    if q.get("max_age_days"):
        try:
            max_age = float(q["max_age_days"])
        except ValueError:
            max_age = -1.0
        if not (math.isfinite(max_age) and 0 < max_age <= 3650):
            raise ImportRefused(
                400, "invalid_parameter", "max_age_days: a number of days, 0-3650", "max_age_days"
            )
    options = ReadOptions(
        q.get("format", "lines"), region, q.get("column", ""), q.get("delimiter", "")
    )
    return ImportRequest(
        request.match_info["name"], options, q.get("version", ""), max_age, q.get("change", "")
    )


async def _body(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(1 << 16):
        yield chunk


async def _start(request: web.Request) -> web.Response:
    imports = request.app.get(IMPORTS_KEY)
    if imports is None:
        return error(request, 404, "not_found", "this hlrd runs without lists ([lists] enabled)")
    try:
        job = await imports.start(_request(request), _body(request))
    except ImportRefused as exc:
        return error(request, exc.status, exc.code, str(exc), exc.field)
    return web.json_response(
        job.to_json(), status=202, headers={"Location": f"/v1/lists/imports/{job.id}"}
    )


async def _show(request: web.Request) -> web.Response:
    imports = request.app.get(IMPORTS_KEY)
    try:
        if imports is None:
            raise ImportRefused(404, "not_found", "this hlrd runs without lists")
        job = imports.get(request.match_info["id"])
    except ImportRefused as exc:
        return error(request, exc.status, exc.code, str(exc), exc.field)
    return web.json_response(job.to_json())


def add_routes(app: web.Application, imports: ListImports | None) -> None:
    if imports is not None:
        app[IMPORTS_KEY] = imports
    app.router.add_post("/v1/lists/{name}/import", _start)
    app.router.add_get("/v1/lists/imports/{id}", _show)
