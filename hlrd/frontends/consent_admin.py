"""/v1/consent: consent records a campaign's policy may require, and their evidence.

Recording consent also looks the number up, so the record carries a keyed hash of
the IMSI that held the number then: when a later lookup shows another IMSI, the
number has changed hands and the consent is not the new holder's
(`subscriber_changed`). `?lookup=0` records without (the check can then only warn).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

from aiohttp import web

from ..call_check import CallCheck
from ..compliance.consent import CHANNELS, SOURCES, ConsentBook, ConsentFull
from ..domain.numbers import InvalidNumber, Msisdn
from ..domain.result import LookupResult
from ..service import ShuttingDown
from .http_errors import CHECKER_KEY, SERVICE_KEY, error

_FIELDS = (
    "channels",
    "source",
    "text_version",
    "given_at",
    "valid_until",
    "ownership_verified",
    "evidence",
)
_FLAGS = {"1": True, "true": True, "0": False, "false": False}


def _book_and_number(request: web.Request) -> tuple[CallCheck, ConsentBook, Msisdn] | web.Response:
    checker = request.app[CHECKER_KEY]
    if checker.consent is None:
        return error(request, 404, "not_found", "this hlrd keeps no consent records")
    try:
        msisdn = request.app[SERVICE_KEY].normalize(request.match_info["number"])
    except InvalidNumber as exc:
        return error(request, 400, "invalid_number", exc.detail, "number", reason=exc.problem.value)
    return checker, checker.consent, msisdn


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        return error(request, 400, "invalid_parameter", "the body must be a JSON object", "body")
    return body


def _instant(body: dict[str, Any], name: str) -> float | str | None:
    """An ISO-8601 time with its offset, as unix seconds; the message when it is not."""
    raw = body.get(name)
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > 40:
        return f"{name}: an ISO-8601 date and time with its offset, e.g. 2026-03-01T10:00:00Z"
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        return f"{name}: an ISO-8601 date and time with its offset, e.g. 2026-03-01T10:00:00Z"
    if at.tzinfo is None:
        return f"{name}: give the offset (Z or +01:00): a local time is ambiguous"
    return at.timestamp()


def _refused(request: web.Request, message: str) -> web.Response:
    """A ValueError's message starts with the field at fault."""
    field = message.split(":", 1)[0]
    return error(request, 400, "invalid_parameter", message, field if field in _FIELDS else "body")


async def _record(request: web.Request) -> web.Response:
    found = _book_and_number(request)
    if isinstance(found, web.Response):
        return found
    checker, book, msisdn = found
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    unknown = sorted(set(body) - set(_FIELDS))
    if unknown:
        return error(
            request, 400, "invalid_parameter", f"a consent has: {', '.join(_FIELDS)}", "body"
        )
    gate = checker.gate
    if gate is not None and gate.is_erased(msisdn.e164):
        # Only the suppression token may know this number: a record would link it
        # again (and the gate blocks it whatever the consent says).
        return error(
            request,
            409,
            "erased",
            "the person behind this number asked to be forgotten; no consent is kept for it",
        )
    look_up = _FLAGS.get(request.query.get("lookup", "1").lower())
    if look_up is None:
        return error(request, 400, "invalid_parameter", "lookup must be 1 or 0", "lookup")
    fields = _checked_fields(body)
    if isinstance(fields, str):
        return _refused(request, fields)
    imsi_key = await _imsi_now(checker, msisdn) if look_up else None
    valid_days = checker.service.config.compliance.consent_valid_days
    given_at = fields["given_at"] if fields["given_at"] is not None else checker.clock()
    valid_until = fields["valid_until"]
    if valid_until is None:
        valid_until = given_at + valid_days * 86400
    try:
        consent = await asyncio.to_thread(
            book.record,
            msisdn.e164,
            fields["channels"],
            fields["source"],
            fields["text_version"],
            given_at,
            valid_until,
            fields["ownership_verified"],
            None,
            fields["evidence"],
            imsi_key,
        )
    except ConsentFull as exc:
        return error(request, 507, "consent_full", str(exc))
    except ValueError as exc:
        return _refused(request, str(exc))
    return web.json_response(
        {"consent": consent.to_json(checker.clock()), "imsi_recorded": imsi_key is not None},
        status=201,
    )


def _checked_fields(body: dict[str, Any]) -> dict[str, Any] | str:
    """The body's fields typed, or the message naming the first one at fault (values
    the book refuses, it names itself)."""
    channels = body.get("channels")
    if (
        not isinstance(channels, list)
        or not channels
        or not all(isinstance(c, str) and c in CHANNELS for c in channels)
    ):
        return f"channels: a non-empty list of {', '.join(CHANNELS)}"
    source = body.get("source")
    if source not in SOURCES:
        return f"source: one of {', '.join(SOURCES)}"
    text_version = body.get("text_version")
    if not isinstance(text_version, str) or not text_version:
        return "text_version: the version of the wording agreed to, e.g. privacy-2026-03"
    evidence = body.get("evidence", "")
    if not isinstance(evidence, str):
        return "evidence: a string (a form id, a recording's name)"
    ownership = body.get("ownership_verified", False)
    if not isinstance(ownership, bool):
        return "ownership_verified: true or false"
    given_at = _instant(body, "given_at")
    valid_until = _instant(body, "valid_until")
    for value in (given_at, valid_until):
        if isinstance(value, str):
            return value
    return {
        "channels": channels,
        "source": source,
        "text_version": text_version,
        "evidence": evidence,
        "ownership_verified": ownership,
        "given_at": given_at,
        "valid_until": valid_until,
    }


async def _imsi_now(checker: CallCheck, msisdn: Msisdn) -> bytes | None:
    """The keyed hash of the IMSI holding the number now: a cached answer's, else a
    fresh lookup's (an answer cached before hlrd kept it has none); None when no
    provider tells it."""
    service = checker.service
    try:
        result: LookupResult = await service.begin(msisdn, policy=checker.default_policy.roaming)
        if result.imsi_key is None and result.cache.hit:
            result = await service.begin(msisdn, fresh=True)
    except ShuttingDown:
        return None
    return result.imsi_key


async def _evidence(request: web.Request) -> web.Response:
    found = _book_and_number(request)
    if isinstance(found, web.Response):
        return found
    _, book, msisdn = found
    return web.json_response(await asyncio.to_thread(book.evidence, msisdn.e164))


async def _withdraw(request: web.Request) -> web.Response:
    found = _book_and_number(request)
    if isinstance(found, web.Response):
        return found
    checker, book, msisdn = found
    body: dict[str, Any] | web.Response = {}
    if await request.read():
        body = await _body(request)
    if isinstance(body, web.Response):
        return body
    if set(body) - {"channels"}:
        return error(request, 400, "invalid_parameter", "a withdrawal has: channels", "body")
    channels = body.get("channels")
    if channels is not None and (
        not isinstance(channels, list)
        or not channels
        or not all(isinstance(c, str) and c in CHANNELS for c in channels)
    ):
        return error(
            request,
            400,
            "invalid_parameter",
            f"channels: a non-empty list of {', '.join(CHANNELS)} (absent: all)",
            "channels",
        )
    changed = await asyncio.to_thread(book.withdraw, msisdn.e164, channels)
    now = checker.clock()
    return web.json_response({"withdrawn": [c.to_json(now) for c in changed]})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/consent/{number}", _record)
    app.router.add_get("/v1/consent/{number}", _evidence)
    app.router.add_post("/v1/consent/{number}/withdrawal", _withdraw)
