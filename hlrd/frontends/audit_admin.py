"""/v1/audit: the decisions hlrd made, for a data subject's access request (by
number) and for a regulator or an internal review (by time range, paged).

What is pending in memory is written first, so a decision answered a moment ago is
in the answer. Records carry no number: the number is the question, not the answer.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from aiohttp import web

from ..compliance.audit import AuditTrail
from ..domain.numbers import InvalidNumber
from .http_errors import CHECKER_KEY, SERVICE_KEY, error

MAX_LIMIT = 10_000


def _trail(request: web.Request) -> AuditTrail | web.Response:
    trail = request.app[CHECKER_KEY].audit
    if trail is None:
        return error(request, 404, "not_found", "this hlrd keeps no audit trail ([audit] enabled)")
    return trail


def _limit(request: web.Request, default: int) -> int | web.Response:
    raw = request.query.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        return error(request, 400, "invalid_parameter", f"limit: 1..{MAX_LIMIT}", "limit")
    return int(raw)


def _time(request: web.Request, name: str, default: float) -> float | web.Response:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        at = datetime.fromisoformat(raw) if len(raw) <= 40 else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        return error(
            request,
            400,
            "invalid_parameter",
            f"{name}: an ISO-8601 date and time with its offset, e.g. 2026-11-01T00:00:00Z",
            name,
        )
    return at.timestamp()


async def _by_number(request: web.Request) -> web.Response:
    trail = _trail(request)
    if isinstance(trail, web.Response):
        return trail
    try:
        msisdn = request.app[SERVICE_KEY].normalize(request.match_info["number"])
    except InvalidNumber as exc:
        return error(request, 400, "invalid_number", exc.detail, "number", reason=exc.problem.value)
    limit = _limit(request, 1000)
    if isinstance(limit, web.Response):
        return limit
    await asyncio.to_thread(trail.flush)
    records = await asyncio.to_thread(trail.by_number, msisdn.e164, limit)
    return web.json_response({"records": records})


async def _by_time(request: web.Request) -> web.Response:
    trail = _trail(request)
    if isinstance(trail, web.Response):
        return trail
    since = _time(request, "since", 0.0)
    if isinstance(since, web.Response):
        return since
    until = _time(request, "until", float("inf"))
    if isinstance(until, web.Response):
        return until
    limit = _limit(request, 1000)
    if isinstance(limit, web.Response):
        return limit
    raw = request.query.get("after_seq", "0")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        return error(request, 400, "invalid_parameter", "after_seq: a record's seq", "after_seq")
    await asyncio.to_thread(trail.flush)
    records = await asyncio.to_thread(trail.by_time, since, until, limit, int(raw))
    after = records[-1]["seq"] if len(records) == limit else None
    return web.json_response({"records": records, "next_after_seq": after})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/audit", _by_time)
    app.router.add_get("/v1/audit/numbers/{number}", _by_number)
