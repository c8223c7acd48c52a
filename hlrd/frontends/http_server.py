"""The HTTP listener: what aiohttp's server leaves to us about hostile connections.

aiohttp answers a request its parser refuses with plain text quoting the request
line (the number in it) and logs a traceback per request; it keeps an idle or
slowloris connection for an hour, and takes connections until accept() runs out of
descriptors. Here each connection is an aiohttp `RequestHandler` with:

- a cap on connections in total and per client address (`ConnectionLimiter`): one
  beyond it gets a short 503 and is closed at once, so descriptors stay for upstream
  binds and for the clients already in;
- deadlines: a connection has `header_timeout_s` to deliver a complete request head,
  from connect or, on keep-alive, from the first byte of its next request; between
  requests it may stay silent `idle_timeout_s`; a client that stops reading its
  answers is dropped after `idle_timeout_s` with its output unsent;
- refused requests (bad request line, over-long path or headers, bad header bytes)
  answered with a JSON error (`1` when the refused line asked for `format=digit`),
  logged as one masked line per budget, never with a traceback.

Both kinds of refusal carry an `X-Lookup-Id` like every other answer (a fresh one,
also in the refusal's log line) and are counted in `hlrd_http_requests_total`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import parse_qsl

import structlog
from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMethod,
    BadStatusLine,
    HttpProcessingError,
    InvalidURLError,
    LineTooLong,
)
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from ..config import HttpConfig
from ..log_budget import LogBudget
from ..metrics import Metrics
from ..service import new_lookup_id
from .conn_limits import ConnectionLimiter
from .http_metrics import HttpMetrics

log = structlog.get_logger("hlrd.http")

FRONTEND = "http"
# Why hlrd closes an HTTP connection (hlrd_client_connections_closed_total{reason}).
CLOSE_REASONS = ("header_timeout", "idle_timeout", "send_timeout")
_REFUSED_BODY = (
    b'{"error": {"code": "too_many_connections", '
    b'"message": "hlrd has too many connections; retry later"}}'
)
_REFUSED_HEAD = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: " + str(len(_REFUSED_BODY)).encode() + b"\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n"
)


def refused_answer(lookup_id: str) -> bytes:
    """The whole 503 for a connection over the caps, written without aiohttp."""
    return _REFUSED_HEAD + b"X-Lookup-Id: " + lookup_id.encode() + b"\r\n\r\n" + _REFUSED_BODY


# A refused request line that asked for the digit answer (a dialer that did not
# encode the spaces of a number) still gets one it can read: "1", do not call. The
# parser's message quotes the line; its query is read as a served request's would be.
_QUERY = re.compile(r"\?([^\s'#]*)")


class _Shared:
    """What every connection of one listener shares: caps, deadlines, counters, budgets."""

    def __init__(self, cfg: HttpConfig, metrics: Metrics, max_connections: int) -> None:
        self.header_timeout_s = cfg.header_timeout_s
        self.idle_timeout_s = cfg.idle_timeout_s
        self.metrics = metrics
        self.requests = HttpMetrics(metrics)
        self.requests.create_refusal_series()
        self.limiter = ConnectionLimiter(
            max_connections, cfg.max_connections_per_ip, on_refuse=self._refused
        )
        metrics.touch_each(metrics.connections_refused, (FRONTEND,), ConnectionLimiter.REASONS)
        metrics.touch_each(metrics.connections_closed, (FRONTEND,), CLOSE_REASONS)
        self._refusals = LogBudget(burst=1, interval_s=10.0)
        self._closes = LogBudget(burst=1, interval_s=10.0)
        self._bad_requests = LogBudget(burst=5, interval_s=10.0)
        self._errors = LogBudget(burst=5, interval_s=10.0)
        metrics.watch(metrics.connections, (FRONTEND,), lambda: self.limiter.total)

    def _refused(self, reason: str) -> None:
        self.metrics.child(self.metrics.connections_refused, FRONTEND, reason).inc()
        suppressed = self._refusals.take()
        if suppressed is not None:
            log.warning(
                "http.connection_refused",
                reason=reason,
                connections=self.limiter.total,
                max_connections=self.limiter.max_total,
                max_per_ip=self.limiter.max_per_ip,
                suppressed=suppressed,
            )

    def closed(self, reason: str) -> None:
        self.metrics.child(self.metrics.connections_closed, FRONTEND, reason).inc()
        suppressed = self._closes.take()
        if suppressed is not None:
            log.info("http.connection_closed", reason=reason, suppressed=suppressed)

    def bad_request(self, status: int, exc: BaseException | None, lookup_id: str) -> None:
        self.requests.refused(status)
        suppressed = self._bad_requests.take()
        if suppressed is not None:
            log.info(
                "http.bad_request",
                status=status,
                lookup_id=lookup_id,
                error=type(exc).__name__ if exc is not None else None,
                suppressed=suppressed,
            )

    def server_error(self, what: str, exc: BaseException | None) -> None:
        """aiohttp's own complaints (a handler that broke the protocol), without the
        traceback: its frames' locals and the message could hold a request's number."""
        suppressed = self._errors.take()
        if suppressed is not None:
            log.error(
                "http.server_error",
                what=what[:80],
                error=type(exc).__name__ if exc is not None else None,
                suppressed=suppressed,
            )


def _refusal(exc: HttpProcessingError) -> tuple[int, str]:
    """Status and message for a request the parser refused; never the client's bytes."""
    if isinstance(exc, LineTooLong):
        line = exc.args[0] if exc.args else b""
        is_url = isinstance(line, bytes | bytearray) and (line[:1] == b"/" or b"://" in line[:16])
        if is_url or "Status line" in str(line):
            return 414, "the request line is longer than 8190 bytes"
        return 431, "a header is longer than 8190 bytes"
    if "Too many headers" in exc.message:
        return 431, "too many headers"
    if isinstance(exc, BadHttpMethod):
        return 400, "unknown HTTP method"
    if isinstance(exc, BadStatusLine | InvalidURLError):
        return 400, "the request line is not valid HTTP/1.1 (encode spaces in the URL as %20)"
    if exc.message.startswith("Missing 'Host'"):
        return 400, "an HTTP/1.1 request needs a Host header"
    return 400, "the request's headers or body framing are not valid HTTP/1.1"


def _wants_digit(exc: BaseException | None) -> bool:
    query = _QUERY.search(exc.message) if isinstance(exc, HttpProcessingError) else None
    if query is None:
        return False
    formats = [v for k, v in parse_qsl(query.group(1), keep_blank_values=True) if k == "format"]
    return formats[:1] == ["digit"]


def _json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class _Connection(RequestHandler):
    """One client connection: admitted or refused, then held to its deadlines."""

    def __init__(self, shared: _Shared, manager: web.Server, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._shared = shared
        self._peer_ip = ""
        self._admitted = False
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0  # loop time the armed deadline expires
        self._timer_reason = ""  # what the armed deadline is for; "" while a request runs
        self._stall_timer: asyncio.TimerHandle | None = None
        self._answered = 0  # responses finished, against aiohttp's count of requests read
        self._next_head_started = False  # bytes of a next request came during this one

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        if self._shared.limiter.admit(ip) is not None:
            tr = cast(asyncio.Transport, transport)
            tr.write(refused_answer(new_lookup_id()))
            tr.close()
            self._shared.requests.refused(503)
            return
        self._peer_ip = ip
        self._admitted = True
        super().connection_made(transport)
        self._arm("header_timeout", self._shared.header_timeout_s)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._admitted:
            return  # refused: aiohttp never saw this connection
        self._admitted = False
        self._shared.limiter.release(self._peer_ip)
        self._disarm()
        if self._timer is not None:  # a closed connection is not kept alive by its timer
            self._timer.cancel()
            self._timer = None
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if data and self._timer_reason == "idle_timeout":
            self._arm("header_timeout", self._shared.header_timeout_s)
        heads = self._request_count
        super().data_received(data)
        if self._request_count != heads:  # a complete head (or a refused one) was read
            self._disarm()
            self._next_head_started = False
        elif data and not self._timer_reason:
            self._next_head_started = True

    async def finish_response(
        self, request: BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self._answered += 1
            if self._answered >= self._request_count and self.transport is not None:
                if self._next_head_started:
                    self._arm("header_timeout", self._shared.header_timeout_s)
                else:
                    self._arm("idle_timeout", self._shared.idle_timeout_s)

    def pause_writing(self) -> None:
        super().pause_writing()
        self._stall_timer = self._loop.call_later(self._shared.idle_timeout_s, self._stalled)

    def resume_writing(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        super().resume_writing()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """JSON (or "1") instead of aiohttp's text echo, and no traceback."""
        if request.writer.output_size > 0:
            raise ConnectionError("the answer was partly sent; nothing more to say")
        lookup_id = new_lookup_id()
        if isinstance(exc, HttpProcessingError):
            status, text = _refusal(exc)
            self._shared.bad_request(status, exc, lookup_id)
            resp: web.Response = (
                web.Response(status=status, text="1", content_type="text/plain")
                if _wants_digit(exc)
                else _json_error(status, "bad_request", text)
            )
        else:
            self._shared.server_error("request failed", exc)
            self._shared.requests.refused(status)
            resp = (
                web.Response(status=status, text="1", content_type="text/plain")
                if request.query.get("format") == "digit"
                else _json_error(status, "internal_error", "hlrd could not answer this request")
            )
        resp.headers["X-Lookup-Id"] = lookup_id
        resp.force_close()
        return resp

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        self._shared.server_error(
            str(args[0]) if args else "", exc if isinstance(exc, BaseException) else None
        )

    def _arm(self, reason: str, timeout_s: float) -> None:
        """Set the deadline. One timer per connection is kept and moved lazily: a
        keep-alive client arms and disarms twice per request, and a timer created and
        cancelled each time cost more than the rest of a cached answer's bookkeeping."""
        self._timer_reason = reason
        self._deadline = deadline = self._loop.time() + timeout_s
        timer = self._timer
        if timer is not None and timer.when() <= deadline:
            return  # it fires first and finds the deadline moved
        if timer is not None:
            timer.cancel()
        self._timer = self._loop.call_at(deadline, self._expired)

    def _disarm(self) -> None:
        self._timer_reason = ""  # the timer stays; when it fires there is nothing to do

    def _expired(self) -> None:
        self._timer = None
        if not self._timer_reason:
            return
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._expired)
            return
        self._drop(self._timer_reason)

    def _stalled(self) -> None:
        self._stall_timer = None
        self._drop("send_timeout")

    def _drop(self, reason: str) -> None:
        """Abort, not close: close() would wait to flush output the peer never reads."""
        if self.transport is None:
            return
        self._shared.closed(reason)
        self.transport.abort()


class HttpServer:
    """Listens for one `web.Application` with the caps and deadlines above.

    aiohttp's `TCPSite` builds plain `RequestHandler`s; this listener builds
    `_Connection`s on the same `web.Server`, so the runner still drains and closes
    them on shutdown.
    """

    def __init__(
        self, app: web.Application, cfg: HttpConfig, metrics: Metrics, max_connections: int
    ) -> None:
        self._app = app
        self._cfg = cfg
        self._shared = _Shared(cfg, metrics, max_connections)
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self.port = 0

    @property
    def limiter(self) -> ConnectionLimiter:
        return self._shared.limiter

    @property
    def app(self) -> web.Application:
        """The application served: its routes are what the OpenAPI document describes."""
        return self._app

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        cfg = self._cfg
        kwargs: dict[str, Any] = {
            "loop": loop,
            "access_log": None,
            # aiohttp's own idle timer is only a backstop behind ours.
            "keepalive_timeout": 2 * (cfg.header_timeout_s + cfg.idle_timeout_s) + 1,
            # A request's unread body is drained at most this long before closing.
            "lingering_time": min(10.0, cfg.header_timeout_s),
        }
        factory: Callable[[], _Connection] = lambda: _Connection(self._shared, server, **kwargs)  # noqa: E731
        self._listener = await loop.create_server(factory, cfg.host, cfg.port)
        self.port = self._listener.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._listener is not None:
            await self._listener.wait_closed()
