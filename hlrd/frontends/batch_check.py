"""POST /v1/check: up to 10,000 numbers in one request, each through the same gate
as a single check, answered in the order given.

A CRM syncing a day's leads should not open 10,000 requests. Numbers asked twice are
looked up once (the service joins lookups in flight and the cache answers the
rest); at most `CONCURRENCY` checks of one request run at a time, so one batch
cannot take the whole lookup queue from the dialers. A number that is not valid
gets its own error in its place; the others are answered as usual.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from ..call_check import Answer, CallCheck
from ..compliance.policy import CallPolicy
from ..domain.numbers import InvalidNumber
from ..service import ShuttingDown, new_lookup_id
from .http_errors import CHECKER_KEY, error

MAX_NUMBERS = 10_000
CONCURRENCY = 256  # checks of one batch in flight at once
MAX_BODY = 1 << 20  # 10,000 numbers of up to ~100 characters


async def _batch(request: web.Request) -> web.Response:
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    numbers, policy = body
    checker = request.app[CHECKER_KEY]
    gate = asyncio.Semaphore(CONCURRENCY)
    try:
        results = await asyncio.gather(*(_one(checker, gate, n, policy) for n in numbers))
    except ShuttingDown:
        return error(request, 503, "shutting_down", "hlrd is shutting down; retry elsewhere")
    return web.json_response(
        {"policy": policy.to_json(), "count": len(results), "results": results}
    )


async def _body(request: web.Request) -> tuple[list[str], CallPolicy] | web.Response:
    if request.content_length is not None and request.content_length > MAX_BODY:
        return error(request, 413, "bad_request", f"the body is at most {MAX_BODY} bytes")
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict) or set(body) - {"numbers", "policy"}:
        return error(
            request,
            400,
            "invalid_parameter",
            'a JSON object: {"numbers": ["+48...", ...], "policy": "name"}',
            "body",
        )
    numbers = body.get("numbers")
    if (
        not isinstance(numbers, list)
        or not 1 <= len(numbers) <= MAX_NUMBERS
        or not all(isinstance(n, str) and len(n) <= 64 for n in numbers)
    ):
        return error(
            request,
            400,
            "invalid_parameter",
            f"numbers: a list of 1..{MAX_NUMBERS} strings (at most 64 characters each)",
            "numbers",
        )
    checker = request.app[CHECKER_KEY]
    name = body.get("policy", checker.default_policy.name)
    policy = checker.policies.get(name) if isinstance(name, str) else None
    if policy is None:
        known = ", ".join(sorted(checker.policies))
        return error(request, 400, "invalid_parameter", f"policy must be one of: {known}", "policy")
    return numbers, policy


async def _one(
    checker: CallCheck, gate: asyncio.Semaphore, raw: str, policy: CallPolicy
) -> dict[str, Any]:
    try:
        msisdn = checker.service.normalize(raw)
    except InvalidNumber as exc:
        return {
            "number": None,
            "error": {"code": "invalid_number", "reason": exc.problem.value, "message": exc.detail},
        }
    async with gate:
        answer: Answer = await checker.check(msisdn, policy, new_lookup_id(), "http")
    return {"number": msisdn.e164, **answer.to_json()}


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/check", _batch)
