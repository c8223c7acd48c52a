"""What every HTTP handler shares: the service's key on the app, and the error answer
(JSON naming the field, or exactly "1" in digit mode)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..service import LookupService

SERVICE_KEY = web.AppKey("service", LookupService)


def digit_mode(request: web.Request) -> bool:
    return request.query.get("format") == "digit"


def error(
    request: web.Request,
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    **extra: str,
) -> web.Response:
    if digit_mode(request):
        return web.Response(status=status, text="1", content_type="text/plain")
    detail: dict[str, Any] = {"code": code, "message": message, **extra}
    if field is not None:
        detail["field"] = field
    return web.json_response({"error": detail}, status=status)
