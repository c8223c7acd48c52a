"""HTTP API for dialer plugins (VICIdial, Asterisk CURL(), FreeSWITCH, Genesys).

Every error is JSON with a machine-readable code and the field at fault; in digit
mode (`?format=digit`) every answer, error or not, is `text/plain` `1` (do not call)
or `0` (call), because a dialer's filter URL reads only the body and must fail
closed. The path carries an MSISDN, so aiohttp's access log is off and requests are
logged here, masked. Nothing a client sends may turn into a 5xx or a traceback: a
handler's unexpected exception answers 500 `internal_error` and is logged by type and
place only (its message could quote the number). Requests aiohttp's parser refuses
never reach this module; `http_server.py` answers those.

Every answer carries `X-Lookup-Id` (the lookup's id, or a fresh one when no lookup
ran) and echoes the caller's `X-Request-Id` / `x-correlator` (`request_ids.py`), and
is counted in `hlrd_http_requests_total` by route template (`http_metrics.py`).
"""

from __future__ import annotations

import asyncio
import hmac
import math
import os
import time
import traceback
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from ..call_check import Answer, CallCheck
from ..compliance.list_imports import ListImports
from ..compliance.policy import CallPolicy
from ..domain.masking import mask_msisdn
from ..domain.numbers import InvalidNumber, Msisdn
from ..domain.result import LookupResult, Outcome
from ..jobs.manager import Jobs
from ..log_budget import LogBudget
from ..metrics import Metrics
from ..service import LookupService, ShuttingDown, new_lookup_id, strictest
from .audit_admin import add_routes as add_audit_routes
from .batch_check import add_routes as add_batch_routes
from .cache_admin import add_routes as add_cache_routes
from .consent_admin import add_routes as add_consent_routes
from .dnc_admin import add_routes as add_dnc_routes
from .http_errors import CHECKER_KEY, LOOKUP_ID_KEY, SERVICE_KEY, digit_mode, error, plain_format
from .http_metrics import UNMATCHED, HttpMetrics, route_of
from .jobs_api import add_routes as add_job_routes
from .list_import_api import add_routes as add_list_import_routes
from .openapi import add_openapi_routes
from .policy_admin import add_routes as add_policy_routes
from .request_ids import caller_ids
from .web_page import add_web_routes

log = structlog.get_logger("hlrd.http")

METRICS_KEY = web.AppKey("metrics", Metrics)
TOKENS_KEY = web.AppKey("tokens", tuple)
HTTP_METRICS_KEY = web.AppKey("http_metrics", HttpMetrics)
REQUEST_ID_KEY = web.RequestKey("request_id", str)  # the caller's, for log lines
# Set when a lookup ran: its `lookup.done` line tells how it ended, so an error
# status it answers (429, 502, 504) is no refusal to log again.
LOOKED_UP_KEY = web.RequestKey("looked_up", bool)
# Refusals are logged per request, but one client must not decide the log's volume:
# beyond the budget they are counted and the next line carries the count.
REFUSAL_BUDGET_KEY = web.AppKey("refusal_log_budget", LogBudget)
INTERNAL_BUDGET_KEY = web.AppKey("internal_error_log_budget", LogBudget)

# Route names a refusal log line may carry for an unmatched /v1 path; any other path
# segment is client input (it could be a number written with dots) and is not logged.
_KNOWN_SEGMENTS = frozenset({"lookup", "check"})
_ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 413: "bad_request"}
QUERY_TOKEN = "access_token"  # RFC 6750's name; docs/dialers.md and openapi.json use it

_OUTCOME_STATUS = {
    Outcome.OK: 200,
    Outcome.PARTIAL: 200,
    Outcome.FAILED: 502,
    Outcome.THROTTLED: 429,
    Outcome.TIMEOUT: 504,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Auth on /v1, JSON (or "1") for every failure, ids on every answer, a count of
    every answer, and a masked log of refusals.

    Lookups are logged once, as `lookup.done`, by the service, however they ended; a
    request line per lookup would double the log volume for nothing.
    """
    started = time.perf_counter()
    request[LOOKUP_ID_KEY] = lookup_id = new_lookup_id()
    ids = caller_ids(request.headers)
    # Always set: a missing key costs BaseRequest.get() a raised KeyError (~2 µs).
    request[REQUEST_ID_KEY] = next(iter(ids.values())) if ids else ""  # X-Request-Id first
    resp: web.StreamResponse | None = _refused_unauthorized(request)
    if resp is None:
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            resp = error(
                request, exc.status, _ERROR_CODES.get(exc.status, "http_error"), exc.reason
            )
            if "Allow" in exc.headers:
                resp.headers["Allow"] = exc.headers["Allow"]
        except Exception as exc:
            _log_internal_error(request, exc)
            resp = error(request, 500, "internal_error", "hlrd could not answer this request")
    resp.headers["X-Lookup-Id"] = lookup_id
    for name, value in ids.items():
        resp.headers[name] = value
    seconds = time.perf_counter() - started
    request.app[HTTP_METRICS_KEY].answered(route_of(request), request.method, resp.status, seconds)
    if resp.status >= 400 and request.path.startswith("/v1/") and LOOKED_UP_KEY not in request:
        suppressed = request.app[REFUSAL_BUDGET_KEY].take()
        if suppressed is not None:
            log.info(
                "http.refused",
                status=resp.status,
                lookup_id=lookup_id,
                request_id=request.get(REQUEST_ID_KEY) or None,
                route=_route_name(request),
                number=mask_msisdn(request.match_info.get("number", "")),
                ms=round(seconds * 1000, 2),
                suppressed=suppressed,
            )
    return resp


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    if resource is not None:
        return resource.canonical
    segments = request.path.split("/")
    return segments[2] if len(segments) > 2 and segments[2] in _KNOWN_SEGMENTS else UNMATCHED


def _refused_unauthorized(request: web.Request) -> web.Response | None:
    """The 401 for a /v1 request without a configured token, or None."""
    tokens: tuple[str, ...] = request.app[TOKENS_KEY]
    if not tokens or not request.path.startswith("/v1/") or _authorized(request, tokens):
        return None
    resp = error(
        request,
        401,
        "unauthorized",
        "send 'Authorization: Bearer <token>' or '?access_token=<token>' with a configured token",
        "Authorization",
    )
    resp.headers["WWW-Authenticate"] = 'Bearer realm="hlrd"'
    return resp


def _authorized(request: web.Request, tokens: tuple[str, ...]) -> bool:
    """The bearer header or, for dialers that can only configure a URL, `access_token`
    in the query (RFC 6750 2.3); either may carry a configured token. Compared in
    constant time, as bytes: aiohttp decodes headers with surrogateescape, and the
    query may decode to lone surrogates; either then simply does not match. The
    query is never logged (logs carry route templates, and `scrub` redacts it)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    sent = [token.encode("utf-8", "surrogateescape")] if scheme.lower() == "bearer" else []
    sent += [q.encode("utf-8", "surrogatepass") for q in request.query.getall(QUERY_TOKEN, ())]
    return any(hmac.compare_digest(s, t.encode()) for s in sent for t in tokens)


def _log_internal_error(request: web.Request, exc: Exception) -> None:
    """Type and place only: the exception's message and locals could hold a number."""
    suppressed = request.app[INTERNAL_BUDGET_KEY].take()
    if suppressed is None:
        return
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else "?"
    log.error(
        "http.internal_error",
        error=type(exc).__name__,
        where=where,
        route=_route_name(request),
        lookup_id=request.get(LOOKUP_ID_KEY),
        request_id=request.get(REQUEST_ID_KEY) or None,
        suppressed=suppressed,
    )


def _normalize(request: web.Request) -> Msisdn | web.Response:
    fmt = plain_format(request) or request.query.get("format", "json")
    if fmt not in ("json", "digit"):
        return error(request, 400, "invalid_parameter", "format must be json or digit", "format")
    service = request.app[SERVICE_KEY]
    try:
        return service.normalize(request.match_info["number"])
    except InvalidNumber as exc:
        return error(request, 400, "invalid_number", exc.detail, "number", reason=exc.problem.value)


_MAX_AGE_LIMIT = 365 * 86400
_FLAGS = {"1": True, "true": True, "0": False, "false": False}


def _freshness(request: web.Request) -> tuple[float | None, bool] | web.Response:
    """`max_age` (seconds, the oldest cached answer accepted) and `fresh` (1: ask a
    provider whatever is cached), or the 400 that names the bad one."""
    if plain_format(request) is not None:
        return None, False  # neither asked for
    query = request.query
    max_age: float | None = None
    raw = query.get("max_age")
    if raw is not None:
        if not (raw.isascii() and raw.isdigit()) or int(raw) > _MAX_AGE_LIMIT:
            return error(
                request,
                400,
                "invalid_parameter",
                f"max_age must be whole seconds, 0..{_MAX_AGE_LIMIT}",
                field="max_age",
            )
        max_age = float(raw)
    fresh = _FLAGS.get(query.get("fresh", "0").lower())
    if fresh is None:
        return error(request, 400, "invalid_parameter", "fresh must be 1 or 0", field="fresh")
    return max_age, fresh


def _start_lookup(
    request: web.Request, msisdn: Msisdn | None = None, policy: CallPolicy | None = None
) -> asyncio.Future[LookupResult] | web.Response:
    """Normalize the number (unless the caller did) and start its lookup; an error
    response when either fails. A future, not a coroutine: a cached answer is in it
    already, and each coroutine layer is a measurable share of what a cached check costs."""
    if msisdn is None:
        normalized = _normalize(request)
        if not isinstance(normalized, Msisdn):  # (isinstance on aiohttp's ABCs is slow)
            return normalized
        msisdn = normalized
    wanted = _freshness(request)
    if not isinstance(wanted, tuple):
        return wanted
    max_age, fresh = wanted
    request_id = request[REQUEST_ID_KEY]
    trace = {"request_id": request_id} if request_id else None
    service = request.app[SERVICE_KEY]
    try:
        return service.begin(
            msisdn,
            request[LOOKUP_ID_KEY],
            trace,
            max_age=strictest(max_age, service.config.http.max_age_s),
            fresh=fresh,
            policy=policy.roaming if policy is not None else None,
        )
    except ShuttingDown:
        return _shutting_down(request)


def _shutting_down(request: web.Request) -> web.Response:
    return error(request, 503, "shutting_down", "hlrd is shutting down; retry elsewhere")


async def _looked_up(
    request: web.Request, msisdn: Msisdn | None = None, policy: CallPolicy | None = None
) -> LookupResult | web.Response:
    """The lookup's result, or the error response that ended it."""
    started = _start_lookup(request, msisdn, policy)
    if not isinstance(started, asyncio.Future):
        return started
    try:
        result = await started
    except ShuttingDown:  # a joined lookup that had to start again found us stopping
        return _shutting_down(request)
    request[LOOKED_UP_KEY] = True
    return result


def _aged(resp: web.Response, result: LookupResult) -> web.Response:
    """RFC 9111's Age header on an answer that came from the cache."""
    if result.cache.hit:
        resp.headers["Age"] = str(int(result.cache.age_s))
    return resp


async def _lookup(request: web.Request) -> web.StreamResponse:
    result = await _looked_up(request)
    if not isinstance(result, LookupResult):
        return result
    return _aged(
        web.json_response(result.to_dict(), status=_OUTCOME_STATUS[result.outcome]), result
    )


def _policy(request: web.Request) -> CallPolicy | web.Response:
    """`?policy=` (the default policy without it), or the 400 naming it."""
    checker = request.app[CHECKER_KEY]
    if plain_format(request) is not None:  # a query without `policy` (not even parsed)
        return checker.default_policy
    name = request.query.get("policy")
    if name is None:
        return checker.default_policy
    policy = checker.policies.get(name)
    if policy is None:
        known = ", ".join(sorted(checker.policies))
        return error(
            request, 400, "invalid_parameter", f"policy must be one of: {known}", field="policy"
        )
    return policy


async def _check(request: web.Request) -> web.StreamResponse:
    """The compliance gate, then (only for a number still callable) the lookup."""
    normalized = _normalize(request)
    if not isinstance(normalized, Msisdn):
        return normalized
    msisdn = normalized
    policy = _policy(request)
    if not isinstance(policy, CallPolicy):
        return policy
    checker = request.app[CHECKER_KEY]
    decision_id = request[LOOKUP_ID_KEY]
    cleared = checker.before(msisdn, policy, decision_id, "http")
    if isinstance(cleared, Answer):
        return _answered(request, cleared)
    result = await _looked_up(request, msisdn, policy)
    if not isinstance(result, LookupResult):
        return result
    return _answered(request, checker.after(msisdn, policy, cleared, result, decision_id, "http"))


def _answered(request: web.Request, answer: Answer) -> web.Response:
    """The answer as JSON, or "1"/"0" in digit mode; Age when it came from the cache,
    Retry-After (seconds) when it was deferred."""
    headers: dict[str, str] = {}
    lookup = answer.lookup
    if lookup is not None and lookup.cache.hit:
        headers["Age"] = str(int(lookup.cache.age_s))
    if answer.retry_after is not None:
        wait = answer.retry_after.timestamp() - request.app[CHECKER_KEY].clock()
        headers["Retry-After"] = str(max(0, math.ceil(wait)))
    if digit_mode(request):
        headers["Content-Type"] = "text/plain; charset=utf-8"  # what text= would set
        return web.Response(body=answer.digit.encode(), headers=headers)
    return web.json_response(answer.to_json(), headers=headers)


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    providers = {p.name: ("bound" if p.ready else "down") for p in service.providers}
    ready = service.ready and service.accepting
    return web.json_response(
        {"status": "ready" if ready else "not_ready", "providers": providers},
        status=200 if ready else 503,
    )


async def _metrics(request: web.Request) -> web.Response:
    metrics = request.app[METRICS_KEY]
    return web.Response(body=metrics.render(), headers={"Content-Type": metrics.content_type})


# Each GET route with the statuses it can answer: their series exist from the start.
_V1_REFUSALS = (400, 401, 500, 503)  # bad number or format, no token, a bug, shutting down
_ROUTES: tuple[tuple[str, Handler, tuple[int, ...]], ...] = (
    (
        "/v1/lookup/{number}",
        _lookup,
        (200, *_V1_REFUSALS, *sorted(set(_OUTCOME_STATUS.values()) - {200})),
    ),
    ("/v1/check/{number}", _check, (200, *_V1_REFUSALS)),
    ("/healthz", _healthz, (200,)),
    ("/readyz", _readyz, (200, 503)),
    ("/metrics", _metrics, (200,)),
)


def make_app(
    service: LookupService,
    metrics: Metrics,
    tokens: tuple[str, ...],
    checker: CallCheck | None = None,
    jobs: Jobs | None = None,
    imports: ListImports | None = None,
) -> web.Application:
    app = web.Application(middlewares=[_guard])
    app[SERVICE_KEY] = service
    app[CHECKER_KEY] = checker if checker is not None else CallCheck(service, metrics)
    app[METRICS_KEY] = metrics
    app[TOKENS_KEY] = tokens
    add_openapi_routes(app)  # open, like /healthz: outside /v1
    add_web_routes(app)  # open too: the page holds no data, the API it calls is behind auth
    app[REFUSAL_BUDGET_KEY] = LogBudget(burst=100, interval_s=10.0)
    app[INTERNAL_BUDGET_KEY] = LogBudget(burst=5, interval_s=10.0)
    app[HTTP_METRICS_KEY] = http_metrics = HttpMetrics(metrics)
    for path, handler, codes in _ROUTES:
        app.router.add_get(path, handler)
        http_metrics.create_route_series(path, codes)
    http_metrics.create_route_series(UNMATCHED, (404,))
    add_cache_routes(app)
    add_dnc_routes(app)
    add_consent_routes(app)
    add_batch_routes(app)
    if jobs is not None:
        add_job_routes(app, jobs)
    add_audit_routes(app)
    add_policy_routes(app)
    add_list_import_routes(app, imports)
    return app
