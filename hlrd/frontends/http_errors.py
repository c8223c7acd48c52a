"""What every HTTP handler shares: the service's key on the app, and the error answer
(JSON naming the field, or exactly "1" in digit mode)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..call_check import CallCheck
from ..service import LookupService

SERVICE_KEY = web.AppKey("service", LookupService)
CHECKER_KEY = web.AppKey("checker", CallCheck)  # the compliance gate over the service
LOOKUP_ID_KEY = web.RequestKey("lookup_id", str)  # every answer's X-Lookup-Id


# The query strings dialers send on nearly every request, with the format they ask
# for and no other parameter: read as they are, without building the parsed query.
_PLAIN_QUERIES = {"": "json", "format=json": "json", "format=digit": "digit"}


def plain_format(request: web.Request) -> str | None:
    """The format when the query is one of the plain forms above, else None."""
    return _PLAIN_QUERIES.get(request.rel_url.raw_query_string)


def digit_mode(request: web.Request) -> bool:
    fmt = plain_format(request)
    if fmt is not None:
        return fmt == "digit"
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
