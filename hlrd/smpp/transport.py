"""Thin asyncio glue around `Session`, for both roles.

What lives here and not in the session is everything that needs a clock or a
socket: the window of outstanding requests (a sender waits for a free slot), the
answer to each request matched by sequence number, request expiry, keepalive,
failing in-flight requests when the link drops, and write coalescing. Writes are
gathered and flushed once per event-loop turn: measured at 2-4x the throughput of
one `write()` per PDU.

Hostile peers (the SMSC role serves clients it does not control) are bounded here
too, by options that default to off so a client link never drops its provider over
one odd PDU: a bind deadline, an error budget after which the link is closed, log
lines about a peer rate-limited per link, reading paused while the peer does not
read our answers, and a handler that raises costs one ESME_RSYSERR answer, never
the link.

Hot paths (a dispatcher sending thousands of requests a second) use `send_request`
with a callback run as soon as the answer is decoded: no future, no task and no
timer handle per request (deadlines share one `ExpiryQueue`). `request()` and
`start_request()` are the awaitable forms for everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from ssl import SSLContext
from typing import cast

import structlog

from ..log_budget import LogBudget
from .constants import Status, status_name
from .errors import ConnectionLost, RequestTimeout, ResponseError, SmppError, WindowClosed
from .expiry import ExpiryQueue
from .pdu import Bind, EnquireLink, Pdu, Unbind, make_response
from .session import PduRejected, RequestReceived, ResponseReceived, Role, Session, State, Unbound

log = structlog.get_logger("hlrd.smpp")

# Called with the answer, or with the reason there is none (exactly one is not None).
AnswerCallback = Callable[[Pdu | None, Exception | None], None]


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Timers and limits of one SMPP link."""

    window: int = 10
    request_timeout: float = 10.0
    enquire_link_interval: float = 30.0  # send enquire_link after this long without input
    keepalive_timeout: float = 10.0  # ... and drop the link if it gets no answer in this
    unbind_timeout: float = 2.0
    max_pdu_length: int = 64 * 1024
    inactivity_timeout: float = 0.0  # SMSC role: unbind a client silent this long (0 = never)
    # For links to peers we do not control (the SMSC role); off by default.
    bind_timeout: float = 0.0  # close a link still unbound this long after connect (0 = never)
    max_errors_unbound: int | None = None  # refused PDUs tolerated before bind; one more closes
    max_errors_per_minute: int | None = None  # bound: a bucket of this many, refilled a minute
    pause_reading_when_blocked: bool = False  # read nothing while the peer reads nothing
    clock: Callable[[], float] = time.monotonic  # refills the error bucket; tests move it


class ErrorBudget:
    """How many refused PDUs (and failed binds) a peer may cost before its link closes.

    Each costs decoding, an answer and maybe a log line. A peer that has not bound has
    not shown it is anyone we serve, so it gets a small count; a bound client gets a
    rate instead (a bucket of `per_minute` refilled over a minute), so an occasional
    bad PDU over days of traffic never cuts it off. None means no limit.
    """

    __slots__ = ("_clock", "_stamp", "_tokens", "_unbound_used", "per_minute", "unbound", "used")

    def __init__(
        self, unbound: int | None, per_minute: int | None, clock: Callable[[], float]
    ) -> None:
        self.unbound = unbound
        self.per_minute = per_minute
        self._clock = clock
        self._unbound_used = 0
        self._tokens = float(per_minute or 0)
        self._stamp: float | None = None
        self.used = 0  # errors counted, bound or not

    def spend(self, bound: bool) -> bool:
        """Count one error; False when it is one more than the budget allows."""
        self.used += 1
        if not bound:
            self._unbound_used += 1
            return self.unbound is None or self._unbound_used <= self.unbound
        if self.per_minute is None:
            return True
        now = self._clock()
        if self._stamp is not None:
            refill = (now - self._stamp) * self.per_minute / 60.0
            self._tokens = min(float(self.per_minute), self._tokens + refill)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


# For the whole process, not per link: a peer that reconnects as fast as it is thrown
# out must not get lines per connection. One budget for lines about links closed for
# misbehaviour, one for lines about links not yet bound (nobody we know).
_CLOSE_LOG = LogBudget(burst=20, interval_s=10.0)
_UNBOUND_LOG = LogBudget(burst=20, interval_s=10.0)

# PDUs interpreted per link and event-loop turn. One read may hold 16,000 of them
# (256 KiB of 16-octet PDUs): ~60 ms in which no other link was served, and a few
# such turns per lookup hop put other clients' receipts seconds late. Beyond this
# the link stops reading and works off the rest on the next turns.
MAX_PDUS_PER_TURN = 1000

# Why a link is closed for its peer's conduct (Handler.misbehaved).
MISBEHAVIOUR_REASONS = ("errors", "framing", "bind_timeout")


class Handler:
    """Application hooks. Subclass and override what you need."""

    def connection_made(self, conn: SmppConnection) -> None:
        """The TCP link is up (not yet bound)."""

    def handle_request(self, conn: SmppConnection, pdu: Pdu) -> Pdu | None:
        """Answer a request: return the response now, or None and `conn.respond()` later."""
        return None

    def connection_lost(self, conn: SmppConnection, exc: Exception | None) -> None:
        """The link is gone; outstanding requests have already been failed."""

    def slot_freed(self, conn: SmppConnection) -> None:
        """A window slot came free (a sender waiting for one may go on)."""

    def misbehaved(self, conn: SmppConnection, reason: str) -> None:
        """The link is being closed for the peer's conduct: "errors" (error budget
        spent), "framing" (an impossible command_length) or "bind_timeout"."""


class SmppConnection(asyncio.Protocol):
    def __init__(self, session: Session, handler: Handler, config: LinkConfig) -> None:
        self.session = session
        self.handler = handler
        self.config = config
        self.transport: asyncio.Transport | None = None
        self.peer: str = "?"
        self._loop = asyncio.get_running_loop()
        self._taken = 0  # window slots held by requests sent with windowed=True
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        # seq -> (callback, holds a window slot, timeout)
        self._waiters: dict[int, tuple[AnswerCallback, bool, float]] = {}
        self._expiry: ExpiryQueue[int] = ExpiryQueue(self._expire)
        self._flush_pending = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = self._loop.create_future()
        self._keepalive: asyncio.Task[None] | None = None
        self._closing = False
        self._input_stopped = False  # closing for misbehaviour: read nothing more
        self.last_input = self._loop.time()
        cfg = config
        self._errors = (
            ErrorBudget(cfg.max_errors_unbound, cfg.max_errors_per_minute, cfg.clock)
            if cfg.max_errors_unbound is not None or cfg.max_errors_per_minute is not None
            else None
        )
        self._log_budget: LogBudget | None = None  # made on the first line about the peer
        self._bind_timer: asyncio.TimerHandle | None = None
        self._request_seq = -1  # the request being handed to the handler ...
        self._request_answered = False  # ... and whether it answered it already
        self._backlogged = False  # PDUs received and not yet interpreted: read no more

    # -- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.last_input = self._loop.time()
        if self.config.enquire_link_interval > 0 or self.config.inactivity_timeout > 0:
            self._keepalive = self._loop.create_task(self._keepalive_loop())
        if self.config.bind_timeout > 0:
            self._bind_timer = self._loop.call_later(self.config.bind_timeout, self._bind_deadline)
        self.handler.connection_made(self)

    def data_received(self, data: bytes) -> None:
        if self._input_stopped:
            return
        self.last_input = self._loop.time()
        self.session.receive_data(data)
        self._work_input()

    def _work_input(self) -> None:
        """Interpret at most MAX_PDUS_PER_TURN received PDUs; the rest on later turns."""
        session = self.session
        end = session.pdus_received + MAX_PDUS_PER_TURN
        while (
            not self._input_stopped
            and (left := end - session.pdus_received) > 0
            and (event := session.next_event(left)) is not None
        ):
            if isinstance(event, ResponseReceived):
                if event.request is None and not session.state.bound:
                    self.charge_error()  # nothing asked, nobody bound: noise
                self._resolve(event.pdu.sequence, event.pdu, None)
            elif isinstance(event, RequestReceived):
                self._dispatch(event.pdu)
            elif isinstance(event, PduRejected):
                self._on_rejected(event)
            elif isinstance(event, Unbound):
                log.info("smpp.peer_unbound", peer=self.peer)
                self._closing = True
                self._flush()
                self._close_transport()
        backlogged = session.pdus_received >= end and not self._input_stopped
        if backlogged:
            self._loop.call_soon(self._work_input)
        if backlogged != self._backlogged:
            self._backlogged = backlogged
            self._update_reading()
        if session.has_data_to_send:
            self._schedule_flush()

    def _update_reading(self) -> None:
        """Read from the peer unless we have a backlog of its PDUs, or (with
        pause_reading_when_blocked) it is not reading our answers."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        blocked = self.config.pause_reading_when_blocked and not self._writable.is_set()
        if self._backlogged or blocked:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def _dispatch(self, pdu: Pdu) -> None:
        """Hand a request to the handler; if it raises, answer ESME_RSYSERR and go on.

        A bug reachable from one client's input must cost that request, not the link
        (and with it the client's other lookups) and never go unanswered.
        """
        self._request_seq = pdu.sequence
        self._request_answered = False
        try:
            reply = self.handler.handle_request(self, pdu)
            if reply is not None:
                self.respond(reply)
        except Exception as exc:
            self._handler_failed(pdu, exc)
        self._request_seq = -1

    def _handler_failed(self, pdu: Pdu, exc: Exception) -> None:
        # Neither the message nor the traceback's locals: either may hold a number.
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else "?"
        if (suppressed := self._log_take()) is not None:
            log.error(
                "smpp.handler_failed",
                peer=self.peer,
                command=pdu.command_name,
                error=type(exc).__name__,
                where=where,
                suppressed=suppressed,
            )
        if not self._request_answered:
            with contextlib.suppress(SmppError):
                self.respond(make_response(pdu, Status.ESME_RSYSERR))

    def _log_take(self) -> int | None:
        """Whether a line about this peer may be written (None: no), per LogBudget."""
        if not self.session.state.bound:
            return _UNBOUND_LOG.take()
        if self._log_budget is None:
            self._log_budget = LogBudget(burst=5, interval_s=10.0)
        return self._log_budget.take()

    def _on_rejected(self, event: PduRejected) -> None:
        err = event.error
        if (suppressed := self._log_take()) is not None:
            log.warning(
                "smpp.pdu_rejected",
                peer=self.peer,
                error=err.args[0],
                status=status_name(err.status),
                sequence=err.sequence,
                fatal=err.fatal,
                suppressed=suppressed,
            )
        if err.command_id & 0x80000000:
            self._resolve(err.sequence, None, err)
        if err.fatal:
            if self._errors is not None:
                self._close_for("framing")
            else:
                self._closing = True
                self._flush()
                self._close_transport()
        else:
            self.charge_error()

    def charge_error(self) -> bool:
        """Count one error of the peer's (a refused PDU, a failed bind) against its
        budget. False when the budget is spent: the link then closes once the answers
        queued so far are written, and nothing more it sent is read."""
        if self._errors is None or self._input_stopped:
            return not self._input_stopped
        if self._errors.spend(self.session.state.bound):
            return True
        self._close_for("errors")
        return False

    def _close_for(self, reason: str) -> None:
        self._input_stopped = True
        self._closing = True
        self.session.discard_input()
        if (suppressed := _CLOSE_LOG.take()) is not None:
            log.warning(
                "smpp.link_closed",
                peer=self.peer,
                reason=reason,
                errors=self._errors.used if self._errors is not None else 0,
                state=self.session.state.value,
                suppressed=suppressed,
            )
        try:
            self.handler.misbehaved(self, reason)
        except Exception:
            log.exception("smpp.handler_failed", peer=self.peer, hook="misbehaved")
        self._loop.call_soon(self._close_after_answers)

    def _close_after_answers(self) -> None:
        self._flush()
        self._close_transport()

    def _bind_deadline(self) -> None:
        self._bind_timer = None
        if self.session.state is State.OPEN and not self._closing:
            self._close_for("bind_timeout")

    def eof_received(self) -> bool | None:
        """The peer half-closed: write the answers still queued before the close."""
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._input_stopped = True
        if self._bind_timer is not None:
            self._bind_timer.cancel()
            self._bind_timer = None
        self.session.close()
        lost = ConnectionLost(f"link to {self.peer} dropped")
        for seq in list(self._waiters):
            self._resolve(seq, None, lost)
        self._expiry.clear()
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_exception(WindowClosed(f"link to {self.peer} dropped"))
        if self._keepalive is not None:
            self._keepalive.cancel()
        self._writable.set()
        if not self._closed.done():
            self._closed.set_result(None)
        self.handler.connection_lost(self, exc)

    def pause_writing(self) -> None:
        # With pause_reading_when_blocked, a peer that does not read our answers gets
        # no more read from it, so what we owe it stays within the high-water mark.
        self._writable.clear()
        self._update_reading()

    def resume_writing(self) -> None:
        self._writable.set()
        self._update_reading()

    # -- sending -----------------------------------------------------------------

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def in_flight(self) -> int:
        return len(self._waiters)

    def _schedule_flush(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        data = self.session.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def respond(self, pdu: Pdu) -> None:
        """Send a response (or any PDU that expects no answer)."""
        if self.transport is None or self.transport.is_closing():
            return
        self.session.send(pdu)
        if pdu.sequence == self._request_seq:
            self._request_answered = True
        self._schedule_flush()

    @property
    def free_slots(self) -> int:
        """Window slots not taken (a request waiting for a slot has not taken one)."""
        return self.config.window - self._taken

    def send_request(
        self,
        pdu: Pdu,
        on_answer: AnswerCallback,
        timeout: float | None = None,
        windowed: bool = False,
    ) -> None:
        """Send a request now; `on_answer` gets its response, or why there is none.

        The callback runs synchronously when the answer is decoded, the deadline
        passes (RequestTimeout) or the link drops (ConnectionLost). With `windowed`
        the request takes a window slot (the caller checked `free_slots`) and frees
        it before the callback runs. A response with a non-zero command_status is
        an answer, not an error: callers decide. Raises WindowClosed when closing.
        """
        if self._closing:
            raise WindowClosed(f"link to {self.peer} is closing")
        timeout = timeout or self.config.request_timeout
        self.session.send(pdu)
        seq = pdu.sequence
        if windowed:
            self._taken += 1
        self._waiters[seq] = (on_answer, windowed, timeout)
        self._expiry.add(seq, timeout)
        self._schedule_flush()

    def send_request_nowait(self, pdu: Pdu, timeout: float | None = None) -> asyncio.Future[Pdu]:
        """Queue a request now, outside the window, and return the future of its answer.

        For the few PDUs whose place on the wire matters (keepalive, or a peer that
        must send a receipt before the response it relates to).
        """
        fut: asyncio.Future[Pdu] = self._loop.create_future()
        self.send_request(pdu, functools.partial(_settle, fut), timeout)
        return fut

    async def _take_slot(self) -> None:
        while self._taken >= self.config.window:
            if self._closing:
                raise WindowClosed(f"link to {self.peer} is closing")
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._slot_waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_slot_waiter()  # pass the wake-up on
                raise
        if not self._writable.is_set():
            await self._writable.wait()
        if self._closing:
            raise WindowClosed(f"link to {self.peer} is closing")

    def _wake_slot_waiter(self) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def start_request(self, pdu: Pdu, timeout: float | None = None) -> asyncio.Future[Pdu]:
        """Wait for a window slot, send, and return the future of the response.

        The slot is freed when the answer comes (or expiry, or link loss), so a
        sender can keep sending without awaiting each answer.
        """
        if self._closing:
            raise WindowClosed(f"link to {self.peer} is closing")
        await self._take_slot()
        fut: asyncio.Future[Pdu] = self._loop.create_future()
        self.send_request(pdu, functools.partial(_settle, fut), timeout, windowed=True)
        return fut

    async def request(self, pdu: Pdu, timeout: float | None = None) -> Pdu:
        """Send a request and wait for its response; waits for a window slot first.

        Raises RequestTimeout when no answer comes in time, ConnectionLost when the
        link drops first, WindowClosed when the link is closing. A response with a
        non-zero command_status is returned, not raised: callers decide.
        """
        fut = await self.start_request(pdu, timeout)
        return await self._await_answer(fut, pdu.sequence)

    async def _await_answer(self, fut: asyncio.Future[Pdu], seq: int) -> Pdu:
        try:
            return await fut
        except asyncio.CancelledError:
            self._forget(seq)
            raise

    def _forget(self, seq: int) -> None:
        """The sender no longer wants the answer: free its slot, expect no response."""
        entry = self._waiters.pop(seq, None)
        self._expiry.discard(seq)
        self.session.expire(seq)
        if entry is not None and entry[1]:
            self._release_slot()

    def _release_slot(self) -> None:
        self._taken -= 1
        if self._slot_waiters:
            self._wake_slot_waiter()
        self.handler.slot_freed(self)

    def _expire(self, seq: int) -> None:
        entry = self._waiters.get(seq)
        if entry is None:
            return
        self.session.expire(seq)
        self._resolve(seq, None, RequestTimeout(f"no answer from {self.peer} in {entry[2]}s"))

    def _resolve(self, seq: int, pdu: Pdu | None, exc: Exception | None) -> None:
        entry = self._waiters.pop(seq, None)
        if entry is None:
            return
        on_answer, windowed, _ = entry
        self._expiry.discard(seq)
        if windowed:
            self._release_slot()
        try:
            on_answer(pdu, exc)
        except Exception:  # a bug in one callback must not stop the link
            log.exception("smpp.answer_callback_failed", peer=self.peer, sequence=seq)

    # -- lifecycle -------------------------------------------------------------------

    async def bind(self, pdu: Bind) -> Pdu:
        """Bind and raise ResponseError when the peer refuses."""
        resp = await self.request(pdu)
        if resp.status != Status.ESME_ROK:
            raise ResponseError(resp.status, resp.command_id)
        return resp

    async def close(self) -> None:
        """Orderly close: unbind (bounded wait) if bound, then drop the TCP link."""
        if self.session.state.bound and not self._closing:
            with contextlib.suppress(SmppError, TimeoutError):
                await self.request(Unbind(), timeout=self.config.unbind_timeout)
        self._closing = True
        self._flush()
        self._close_transport()
        await self.wait_closed()

    def abort(self) -> None:
        """Drop the link now (no unbind); in-flight requests fail with ConnectionLost."""
        self._closing = True
        if self.transport is not None:
            self.transport.abort()

    def _close_transport(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    async def _keepalive_loop(self) -> None:
        """enquire_link only when the link has been idle; drop it if the peer is gone.

        In the SMSC role with an inactivity timeout, a client that sends nothing for
        that long is unbound instead (it, not we, is expected to keep the link alive).
        """
        interval = self.config.enquire_link_interval
        inactive = self.config.inactivity_timeout
        while not self._closing:
            idle = self._loop.time() - self.last_input
            if inactive > 0 and idle >= inactive:
                log.info("smpp.inactive_unbind", peer=self.peer, idle_s=round(idle, 1))
                self._loop.create_task(self.close())
                return
            due = [t - idle for t in (interval, inactive) if t > 0]
            if min(due) > 0:
                await asyncio.sleep(min(due))
                continue
            if not (self.session.state is State.OPEN or self.session.state.bound):
                return
            try:
                probe = EnquireLink()
                answer = self.send_request_nowait(probe, self.config.keepalive_timeout)
                await self._await_answer(answer, probe.sequence)
            except RequestTimeout:
                log.warning("smpp.link_dead", peer=self.peer, timeout=self.config.keepalive_timeout)
                self.abort()
                return
            except SmppError:
                return


def _settle(fut: asyncio.Future[Pdu], pdu: Pdu | None, exc: Exception | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        assert pdu is not None
        fut.set_result(pdu)


async def serve(
    handler_factory: Callable[[], Handler],
    host: str,
    port: int,
    config: LinkConfig | None = None,
    ssl: SSLContext | None = None,
) -> asyncio.Server:
    """Listen for ESMEs; each connection gets its own session and handler."""
    cfg = config or LinkConfig()
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SmppConnection(Session(Role.SMSC, cfg.max_pdu_length), handler_factory(), cfg),
        host,
        port,
        ssl=ssl,
    )


async def connect(
    host: str,
    port: int,
    handler: Handler | None = None,
    config: LinkConfig | None = None,
    connect_timeout: float = 5.0,
) -> SmppConnection:
    """Open a TCP link to an SMSC as an ESME (not yet bound)."""
    cfg = config or LinkConfig()
    loop = asyncio.get_running_loop()
    _, conn = await asyncio.wait_for(
        loop.create_connection(
            lambda: SmppConnection(
                Session(Role.ESME, cfg.max_pdu_length), handler or Handler(), cfg
            ),
            host,
            port,
        ),
        connect_timeout,
    )
    return conn
