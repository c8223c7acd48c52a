"""/v1/lists: the do-not-call lists the daemon checks. /v1/dnc: the call center's
own do-not-call list, a number at a time; and the
receiver of a dialer's disposition callback (VICIdial's Dispo Call URL), which puts
a number on it when the agent set a do-not-call disposition.

Behind the same bearer tokens as the lookups. A change is in force for the next
check at once (the gate's memory is updated with the file).
"""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

from ..compliance.own_list import MAX_TEXT, Entry, OwnListFull, number_in
from ..domain.numbers import InvalidNumber, Msisdn
from .http_errors import CHECKER_KEY, SERVICE_KEY, error

OBJECTION = "objection (GDPR Art. 21)"
_MAX_EXPIRY = 4_102_444_800  # 2100-01-01: later is no date anyone means


def _entry(entry: Entry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {
        "reason": entry.reason,
        "source": entry.source,
        "added_at": entry.added_at,
        "expires_at": entry.expires_at,
    }


def _number(request: web.Request, raw: str, field: str) -> Msisdn | web.Response:
    try:
        return request.app[SERVICE_KEY].normalize(raw)
    except InvalidNumber as exc:
        return error(request, 400, "invalid_number", exc.detail, field, reason=exc.problem.value)


def _gate_or_404(request: web.Request) -> Any:
    gate = request.app[SERVICE_KEY].gate
    if gate is None:
        return error(request, 404, "not_found", "this hlrd runs without lists ([lists] enabled)")
    return gate


def _gate_and_number(request: web.Request) -> tuple[Any, Msisdn] | web.Response:
    """The lists and the path's number, or the 404/400 that says why not."""
    gate = _gate_or_404(request)
    if isinstance(gate, web.Response):
        return gate
    msisdn = _number(request, request.match_info["number"], "number")
    if isinstance(msisdn, web.Response):
        return msisdn
    return gate, msisdn


async def _show(request: web.Request) -> web.Response:
    found = _gate_and_number(request)
    if isinstance(found, web.Response):
        return found
    gate, msisdn = found
    entry = await gate.own_entry(msisdn.e164)
    return web.json_response({"listed": entry is not None, "entry": _entry(entry)})


async def _add(request: web.Request) -> web.Response:
    found = _gate_and_number(request)
    if isinstance(found, web.Response):
        return found
    gate, msisdn = found
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        return error(request, 400, "invalid_parameter", 'a JSON object: {"reason": "..."}', "body")
    if set(body) - {"reason", "source", "expires_at"}:  # (a caller's key is not echoed)
        return error(
            request, 400, "invalid_parameter", "an entry has reason, source, expires_at", "body"
        )
    fields: dict[str, str] = {}
    for name, default in (("reason", None), ("source", "api")):
        value = body.get(name, default)
        if (
            not isinstance(value, str)
            or not 1 <= len(value) <= MAX_TEXT
            or not value.isprintable()
            or number_in(value)
        ):
            return error(
                request,
                400,
                "invalid_parameter",
                f"{name}: 1-{MAX_TEXT} printable characters"
                + (", required" if default is None else ""),
                name,
            )
        fields[name] = value
    expires = body.get("expires_at")
    if expires is not None and (
        isinstance(expires, bool)
        or not isinstance(expires, int | float)
        or not math.isfinite(expires)
        or not 0 < expires < _MAX_EXPIRY
    ):
        return error(
            request, 400, "invalid_parameter", "expires_at: Unix seconds, or null", "expires_at"
        )
    try:
        entry = await gate.add(msisdn.e164, fields["reason"], fields["source"], expires)
    except OwnListFull as exc:
        return error(request, 507, "list_full", str(exc))
    return web.json_response({"listed": True, "entry": _entry(entry)})


async def _remove(request: web.Request) -> web.Response:
    found = _gate_and_number(request)
    if isinstance(found, web.Response):
        return found
    gate, msisdn = found
    return web.json_response({"removed": await gate.remove(msisdn.e164)})


async def _vicidial(request: web.Request) -> web.Response:
    """VICIdial's Dispo Call URL, e.g. `.../v1/dispositions/vicidial?dispo=--A--dispo--B--
    &phone_code=--A--phone_code--B--&phone_number=--A--phone_number--B--`: a GET after
    the agent's disposition. Only the configured dispositions add the number."""
    gate = _gate_or_404(request)
    if isinstance(gate, web.Response):
        return gate
    q = request.query
    dispo = q.get("dispo", "")
    if not 1 <= len(dispo) <= 20 or not dispo.isascii() or not dispo.isprintable():
        return error(request, 400, "invalid_parameter", "dispo: the status code set", "dispo")
    raw = q.get("phone_number", "")
    code = q.get("phone_code", "")
    if code and not (code.isascii() and code.isdigit() and len(code) <= 4):
        return error(request, 400, "invalid_parameter", "phone_code: a country code", "phone_code")
    msisdn = _number(request, f"+{code}{raw}" if code and raw else raw, "phone_number")
    if isinstance(msisdn, web.Response):
        return msisdn
    config = request.app[SERVICE_KEY].config.lists
    if dispo not in config.dnc_dispositions:
        return web.json_response({"added": False})
    try:
        await gate.add(msisdn.e164, f"disposition {dispo}", "vicidial")
    except OwnListFull as exc:
        return error(request, 507, "list_full", str(exc))
    return web.json_response({"added": True})


async def _lists(request: web.Request) -> web.Response:
    """Each list the daemon checks: what it is and whether it is fresh."""
    gate = _gate_or_404(request)
    if isinstance(gate, web.Response):
        return gate
    return web.json_response({"lists": gate.describe()})


async def _erase(request: web.Request) -> web.Response:
    """GDPR Art. 17 (LookupService.erase): what was removed, and the suppression token
    that stays so the person is never called again."""
    found = _gate_and_number(request)
    if isinstance(found, web.Response):
        return found
    _, msisdn = found
    try:
        removed = await request.app[CHECKER_KEY].erase(msisdn, "api")
    except OwnListFull as exc:
        return error(request, 507, "list_full", str(exc))
    return web.json_response({"erased": True, "removed": removed, "suppressed": True})


async def _object(request: web.Request) -> web.Response:
    """GDPR Art. 21: the person objects to being called. Unlike erasure nothing is
    removed; the number goes on the own list, for good, saying so."""
    found = _gate_and_number(request)
    if isinstance(found, web.Response):
        return found
    gate, msisdn = found
    try:
        entry = await gate.add(msisdn.e164, OBJECTION, "api")
    except OwnListFull as exc:
        return error(request, 507, "list_full", str(exc))
    return web.json_response({"listed": True, "entry": _entry(entry)})


def add_routes(app: web.Application) -> None:
    app.router.add_delete("/v1/subjects/{number}", _erase)
    app.router.add_post("/v1/subjects/{number}/objection", _object)
    app.router.add_get("/v1/lists", _lists)
    app.router.add_get("/v1/dnc/{number}", _show)
    app.router.add_put("/v1/dnc/{number}", _add)
    app.router.add_delete("/v1/dnc/{number}", _remove)
    app.router.add_get("/v1/dispositions/vicidial", _vicidial)
