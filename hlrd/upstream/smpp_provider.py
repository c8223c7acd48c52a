"""An HLR lookup provider over SMPP: N supervised binds, one dispatcher, receipts.

A lookup is a submit_sm to the number with a delivery receipt requested; the answer
is the receipt. Lookups queue (bounded) in front of one dispatcher task, which takes
a rate slot, picks the bind with the most free window slots and sends, without
waiting for the answer. Each lookup is a future resolved by its receipt, matched by
normalised message id — also when the receipt overtakes its submit_sm_resp.

A lookup is resolved only by a receipt that provably belongs to it. Message ids are
not enough: a provider that restarts numbers its messages from 1 again, and a
receipt of a dropped link may still arrive later. So:
- when a receipt names a number (source or destination address), it must be the
  looked-up number for any match, exact or not; otherwise it is discarded, counted;
- a receipt that arrives before its submit_sm_resp waits `early_receipt_ttl_s` at
  most, and never longer than the link it came on;
- ids that only match across hex/decimal ("10" is 0x10, or 10 = 0x0A) also need the
  receipt to name the looked-up number, and once a provider has matched exactly,
  alternates are not tried for it at all.
A lookup whose link drops before its receipt is sent again on another bind; one
that sees ESME_RTHROTTLED goes back to the head of the queue and the rate slows
down. When no bind is up for `unbound_grace_s`, waiting lookups fail at once so the
service can fail over (or tell the dialer) instead of waiting out the result timeout.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from ..config import SmppProviderConfig
from ..domain.masking import mask_msisdn
from ..domain.result import HlrAnswer
from ..log_budget import LogBudget
from ..metrics import Metrics
from ..smpp.constants import Status, status_name
from ..smpp.errors import ConnectionLost, RequestTimeout, SmppError, WindowClosed
from ..smpp.expiry import ExpiryQueue
from ..smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DeliverSm,
    DeliverSmResp,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    make_response,
)
from ..smpp.receipts import (
    Receipt,
    alternate_message_ids,
    canonical_message_id,
    receipt_from_pdu,
)
from ..smpp.transport import Handler, LinkConfig, SmppConnection, connect
from .base import NOT_BOUND, ProviderError
from .rate import AdaptiveRate
from .receipt_dialects import dialect_for

log = structlog.get_logger("hlrd.upstream.smpp")

MAX_EARLY_RECEIPTS = 10_000
# An address with at least this many digits names a subscriber; shorter ones are
# short codes or service names ("hlrd", "12345") and say nothing about whose it is.
MIN_NUMBER_DIGITS = 7
# Why a receipt was taken by no lookup (hlrd_upstream_receipts_discarded_total{reason}).
DISCARD_REASONS = (
    "other_number",
    "ambiguous",
    "expired",
    "link_lost",
    "replaced",
    "overflow",
    "not_a_receipt",
)


@dataclass(slots=True, eq=False)
class _Early:
    """A receipt whose submit_sm_resp has not come (yet)."""

    receipt: Receipt
    pdu: DeliverSm
    conn: SmppConnection  # the link it came on: it dies with it
    expires: float


@dataclass(eq=False)
class _Job:
    msisdn: str
    lookup_id: str
    future: asyncio.Future[HlrAnswer]
    attempts: int = 0
    conn: SmppConnection | None = None
    key: str | None = None  # canonical message id, once submit_sm_resp gave it


class _LinkHandler(Handler):
    def __init__(self, provider: SmppProvider) -> None:
        self.provider = provider

    def handle_request(self, conn: SmppConnection, pdu: Pdu) -> Pdu | None:
        if isinstance(pdu, DeliverSm):
            self.provider.on_deliver(pdu, conn)
            return DeliverSmResp(sequence=pdu.sequence)
        return make_response(pdu, Status.ESME_RINVCMDID)

    def connection_lost(self, conn: SmppConnection, exc: Exception | None) -> None:
        self.provider.on_link_lost(conn)

    def slot_freed(self, conn: SmppConnection) -> None:
        self.provider.slot_freed()


class _Bind:
    """One supervised bind (a transceiver, or a transmitter + receiver pair)."""

    def __init__(self, provider: SmppProvider, index: int) -> None:
        self.provider = provider
        self.index = index
        self.tx: SmppConnection | None = None
        self.rx: SmppConnection | None = None
        self.bound = False
        self.task: asyncio.Task[None] | None = None

    async def _open(
        self, cls: type[BindTransceiver | BindTransmitter | BindReceiver]
    ) -> SmppConnection:
        cfg = self.provider.cfg
        conn = await connect(
            cfg.host,
            cfg.port,
            _LinkHandler(self.provider),
            self.provider.link,
            connect_timeout=cfg.connect_timeout_s,
        )
        try:
            await conn.bind(
                cls(system_id=cfg.system_id, password=cfg.password, system_type=cfg.system_type)
            )
        except BaseException:
            conn.abort()
            raise
        return conn

    async def run(self) -> None:
        cfg = self.provider.cfg
        failures = 0
        while not self.provider.stopping:
            try:
                if cfg.bind_mode == "tx_rx":
                    self.rx = await self._open(BindReceiver)
                    self.tx = await self._open(BindTransmitter)
                else:
                    self.tx = self.rx = await self._open(BindTransceiver)
                if self.provider.stopping:
                    # stop() came while this bind was opening: its close() found no link
                    # yet, and its cancel can be lost in connect()'s wait_for (Python
                    # 3.11 returns a connection that is ready instead of raising). Left
                    # open, the link is never closed and stop() waits for this task.
                    await self.close()
                    return
                self.bound = True
                self.provider.bind_up()
                failures = 0
                log.info("upstream.bound", provider=cfg.name, bind=self.index, mode=cfg.bind_mode)
                self.provider.slot_freed()
                waits = {asyncio.ensure_future(c.wait_closed()) for c in {self.tx, self.rx}}
                _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for w in pending:
                    w.cancel()
                if not self.provider.stopping:
                    log.warning("upstream.link_lost", provider=cfg.name, bind=self.index)
            except (OSError, SmppError, TimeoutError) as exc:
                log.warning(
                    "upstream.bind_failed", provider=cfg.name, bind=self.index, error=str(exc)
                )
            finally:
                self.bound = False
                self.provider.bind_down()
                for c in {self.tx, self.rx}:
                    if c is not None and not self.provider.stopping:
                        c.abort()
            if self.provider.stopping:
                return
            failures += 1
            delay = min(cfg.reconnect_max_s, cfg.reconnect_min_s * 2 ** (failures - 1))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def close(self) -> None:
        conns = {c for c in (self.tx, self.rx) if c is not None}
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


class SmppProvider:
    transport = "smpp"

    def __init__(
        self,
        cfg: SmppProviderConfig,
        metrics: Metrics | None = None,
        max_queue: int = 10_000,
        unbound_grace_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.unbound_grace_s = unbound_grace_s
        self.clock = clock  # for early receipts' lifetimes; tests move it
        self.name = cfg.name
        self.dialect = dialect_for(cfg.receipt_dialect, cfg.receipt_mapping)
        self.max_lookup_s = cfg.result_timeout_s  # counted from enqueue (ExpiryQueue)
        self.price = cfg.price
        self.currency = cfg.currency
        self.metrics = metrics
        self.link = LinkConfig(
            window=cfg.window,
            request_timeout=cfg.request_timeout_s,
            enquire_link_interval=cfg.enquire_link_s,
            keepalive_timeout=cfg.keepalive_timeout_s,
        )
        self.rate = AdaptiveRate(cfg.tps)
        self.stopping = False
        self.max_queue = max_queue
        self._binds = [_Bind(self, i) for i in range(cfg.binds)]
        self._queue: deque[_Job] = deque()
        self._queue_ready = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self.bound_event = asyncio.Event()  # set while any bind is up
        self._unbound_timer: asyncio.TimerHandle | None = None
        self._holding: _Job | None = None  # taken from the queue, waiting for rate or link
        # message id key -> jobs awaiting their receipt: one, except when a provider
        # that restarted without dropping its links hands an id out again.
        self._pending: dict[str, list[_Job]] = {}
        self._early: OrderedDict[str, _Early] = OrderedDict()  # in arrival = expiry order
        self.discarded: dict[str, int] = {}  # receipts taken by no lookup, by reason
        self._log_budget = LogBudget(burst=5, interval_s=10.0)
        # How this provider's receipts carry ids: unknown until the first match.
        self._ids_exact: bool | None = {"auto": None, "exact": True, "hex_decimal": False}[
            cfg.message_id_match
        ]
        self._sent: dict[_Job, None] = {}  # sent, not yet answered (an ordered set)
        self._deadlines: ExpiryQueue[_Job] | None = None  # needs the running loop
        self._dispatcher: asyncio.Task[None] | None = None
        if metrics is not None:
            n = cfg.name
            metrics.watch(metrics.binds, (n, "bound"), lambda: sum(b.bound for b in self._binds))
            metrics.watch(metrics.binds, (n, "down"), lambda: sum(not b.bound for b in self._binds))
            metrics.watch(metrics.in_flight, (n,), self._in_flight)
            metrics.watch(metrics.queued, (n,), lambda: len(self._queue))
            metrics.watch(metrics.rate, (n,), lambda: self.rate.current)
            metrics.queue_limit.labels(n).set(max_queue)
            metrics.binds_configured.labels(n).set(cfg.binds)
            metrics.touch(metrics.throttled, n)
            metrics.touch(metrics.retries, n)
            metrics.touch_each(metrics.receipts_discarded, (n,), DISCARD_REASONS)

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def where(self) -> str:
        """For the start-up log: the provider and what it talks to (no credentials)."""
        return f"{self.cfg.name}@{self.cfg.host}:{self.cfg.port}"

    @property
    def ready(self) -> bool:
        return any(b.bound for b in self._binds)

    async def wait_ready(self) -> None:
        """Return when a bind is up (at once if one is)."""
        await self.bound_event.wait()

    def bind_up(self) -> None:
        self.bound_event.set()
        if self._unbound_timer is not None:
            self._unbound_timer.cancel()
            self._unbound_timer = None

    def bind_down(self) -> None:
        """A bind went down; with none left, waiting lookups get a grace period."""
        if self.ready or self.stopping:
            return
        self.bound_event.clear()
        if self._unbound_timer is None:
            loop = asyncio.get_running_loop()
            self._unbound_timer = loop.call_later(self.unbound_grace_s, self._fail_unbound)

    def _fail_unbound(self) -> None:
        self._unbound_timer = None
        if self.ready:
            return
        if self._holding is not None:  # the dispatcher waits with it for a link
            self._fail(self._holding, ProviderError(NOT_BOUND))
        while self._queue:
            self._fail(self._queue.popleft(), ProviderError(NOT_BOUND))

    def _in_flight(self) -> float:
        return float(sum(b.tx.in_flight for b in self._binds if b.tx is not None))

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._deadlines = ExpiryQueue(self._expire)
        for b in self._binds:
            b.task = loop.create_task(b.run())
        self._dispatcher = loop.create_task(self._dispatch())
        self._unbound_timer = loop.call_later(self.unbound_grace_s, self._fail_unbound)

    async def stop(self) -> None:
        """Fail what is queued, unbind every link, and end the background tasks."""
        self.stopping = True
        if self._unbound_timer is not None:
            self._unbound_timer.cancel()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
        while self._queue:
            self._fail(self._queue.popleft(), ProviderError("provider shutting down"))
        for job in list(self._sent):
            self._fail(job, ProviderError("provider shutting down"))
        await asyncio.gather(*(b.close() for b in self._binds), return_exceptions=True)
        tasks = [t for t in (self._dispatcher, *(b.task for b in self._binds)) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- lookups -------------------------------------------------------------------------

    async def lookup(self, msisdn: str, lookup_id: str) -> HlrAnswer:
        if self.stopping:
            raise ProviderError("provider shutting down")
        if not self.ready and self._unbound_timer is None:  # down for longer than the grace
            raise ProviderError(NOT_BOUND)
        if len(self._queue) >= self.max_queue:
            raise ProviderError("provider queue full", "throttled")
        assert self._deadlines is not None, "start() first"
        job = _Job(msisdn, lookup_id, asyncio.get_running_loop().create_future())
        self._deadlines.add(job, self.cfg.result_timeout_s)
        self._enqueue(job)
        try:
            return await job.future
        finally:
            self._forget(job)  # answered, failed, or the caller gave up

    def _enqueue(self, job: _Job, front: bool = False) -> None:
        if front:
            self._queue.appendleft(job)
        else:
            self._queue.append(job)
        self._queue_ready.set()

    def _expire(self, job: _Job) -> None:
        self._fail(
            job,
            ProviderError(f"no receipt within {self.cfg.result_timeout_s}s", "timeout"),
        )
        self._forget(job)  # also when its caller is gone and nobody awaits it

    def _fail(self, job: _Job, exc: Exception) -> None:
        if not job.future.done():
            job.future.set_exception(exc)

    def _forget(self, job: _Job) -> None:
        if self._deadlines is not None:
            self._deadlines.discard(job)
        self._unpend(job)
        self._sent.pop(job, None)

    def slot_freed(self) -> None:
        self._slot_freed.set()

    async def _next_job(self) -> _Job:
        while True:
            while not self._queue:
                self._queue_ready.clear()
                await self._queue_ready.wait()
            job = self._queue.popleft()
            if not job.future.done():
                return job

    async def _pick(self) -> SmppConnection:
        """The bound link with the most free window slots; waits while all are full."""
        while True:
            best: SmppConnection | None = None
            for b in self._binds:
                c = b.tx
                if not b.bound or c is None or c.closing or c.free_slots == 0:
                    continue
                if best is None or c.free_slots > best.free_slots:
                    best = c
            if best is not None:
                return best
            self._slot_freed.clear()
            await self._slot_freed.wait()

    async def _dispatch(self) -> None:
        cfg = self.cfg
        while True:
            job = self._holding = await self._next_job()
            await self.rate.acquire()
            conn = await self._pick()
            self._holding = None
            if job.future.done():
                continue
            submit = SubmitSm(
                source_addr=cfg.source_addr,
                dest_addr_ton=1,
                dest_addr_npi=1,
                destination_addr=job.msisdn,
                registered_delivery=1,
            )
            try:
                conn.send_request(
                    submit, functools.partial(self._on_submit_resp, job), windowed=True
                )
            except SmppError:
                self._enqueue(job, front=True)
                continue
            job.conn = conn
            job.attempts += 1
            self._sent[job] = None

    def _on_submit_resp(self, job: _Job, resp: Pdu | None, exc: Exception | None) -> None:
        if job.future.done():
            return
        if isinstance(exc, ConnectionLost | RequestTimeout | WindowClosed):
            self._retry(job, type(exc).__name__)
            return
        if exc is not None or resp is None:
            self._fail(job, ProviderError(str(exc)))
            return
        if resp.status == Status.ESME_RTHROTTLED:
            self.rate.throttled()
            if self.metrics is not None:
                self.metrics.child(self.metrics.throttled, self.name).inc()
            job.attempts -= 1  # not the link's fault: does not count as an attempt
            self._enqueue(job, front=True)
            return
        if resp.status != Status.ESME_ROK or not isinstance(resp, SubmitSmResp):
            self._fail(job, ProviderError(f"provider answered {status_name(resp.status)}"))
            return
        job.key = canonical_message_id(resp.message_id)
        log.debug(
            "upstream.submitted",
            provider=self.name,
            lookup_id=job.lookup_id,
            sequence=resp.sequence,
            message_id=resp.message_id,
            attempt=job.attempts,
        )
        if self._early:  # usually empty: receipts mostly follow their submit_sm_resp
            early = self._take_early(job, job.key, exact=True)
            exact = early is not None
            if early is None:
                for key in self._alternates(resp.message_id):
                    early = self._take_early(job, key, exact=False)
                    if early is not None:
                        break
            if early is not None:
                self._matched(job, early.receipt, early.pdu, exact=exact)
                return
        self._pending.setdefault(job.key, []).append(job)

    def _take_early(self, job: _Job, key: str, exact: bool) -> _Early | None:
        """The early receipt under `key` if it belongs to `job` (else it is discarded)."""
        self._purge_early()
        early = self._early.get(key)
        if early is None:
            return None
        del self._early[key]
        if not self._belongs(early.pdu, job, exact):
            self._discard("other_number", early.pdu, job)
            return None
        return early

    def _purge_early(self) -> None:
        now = self.clock()
        early = self._early
        while early:
            first = next(iter(early.values()))
            if first.expires > now:
                break
            early.popitem(last=False)
            self._discard("expired")

    def _alternates(self, message_id: str) -> tuple[str, ...]:
        return () if self._ids_exact else alternate_message_ids(message_id)

    def _belongs(self, pdu: DeliverSm, job: _Job, exact: bool) -> bool:
        """Whether a receipt matched by message id is provably this job's.

        A receipt that names a number must name the looked-up one; one that names
        none can only be trusted on an exact id (or when the provider is configured
        to switch bases: `message_id_match = "hex_decimal"`).
        """
        named = False
        for addr in (pdu.source_addr, pdu.destination_addr):
            if addr and addr != self.cfg.source_addr and _digit_count(addr) >= MIN_NUMBER_DIGITS:
                if _same_number(addr, job.msisdn):
                    return True
                named = True
        return not named and (exact or self.cfg.message_id_match == "hex_decimal")

    def _discard(self, reason: str, pdu: DeliverSm | None = None, job: _Job | None = None) -> None:
        """A receipt no lookup takes: counted, and logged within the provider's budget."""
        self.discarded[reason] = self.discarded.get(reason, 0) + 1
        if self.metrics is not None:
            self.metrics.child(self.metrics.receipts_discarded, self.name, reason).inc()
        suppressed = self._log_budget.take()
        if suppressed is not None:
            log.info(
                "upstream.receipt_discarded",
                provider=self.name,
                reason=reason,
                lookup_id=job.lookup_id if job is not None else None,
                receipt_from=mask_msisdn(pdu.source_addr) if pdu is not None else None,
                suppressed=suppressed,
            )

    def _matched(self, job: _Job, receipt: Receipt, pdu: DeliverSm, exact: bool) -> None:
        if self._ids_exact is None:
            self._ids_exact = exact
            log.info(
                "upstream.message_ids", provider=self.name, form="exact" if exact else "hex/decimal"
            )
        self._unpend(job)
        self._resolve(job, receipt, pdu)

    def _retry(self, job: _Job, why: str) -> None:
        self._sent.pop(job, None)
        if job.attempts >= self.cfg.max_attempts:
            self._fail(job, ProviderError(f"gave up after {job.attempts} attempts ({why})"))
            return
        log.info(
            "upstream.retry",
            provider=self.name,
            lookup_id=job.lookup_id,
            msisdn=mask_msisdn(job.msisdn),
            why=why,
        )
        if self.metrics is not None:
            self.metrics.child(self.metrics.retries, self.name).inc()
        self._unpend(job)
        job.key = None
        self._enqueue(job, front=True)

    def on_link_lost(self, conn: SmppConnection) -> None:
        """Lookups submitted on a dropped link may never get their receipt: resend.

        Receipts that came on it and still wait for their submit_sm_resp go with it:
        the provider may restart and hand out the same message ids to new lookups.
        """
        self._slot_freed.set()
        for key in [k for k, e in self._early.items() if e.conn is conn]:
            del self._early[key]
            self._discard("link_lost")
        for job in [j for j in self._sent if j.conn is conn]:
            if not job.future.done():
                self._retry(job, "link lost")

    def on_deliver(self, pdu: DeliverSm, conn: SmppConnection) -> None:
        receipt = receipt_from_pdu(pdu)
        if receipt is None:
            self._discard("not_a_receipt", pdu)
            return
        exact = canonical_message_id(receipt.message_id)
        if exact in self._pending:
            self._claim(exact, receipt, pdu, exact=True)
            return
        for key in self._alternates(receipt.message_id):
            if key in self._pending and self._claim(key, receipt, pdu, exact=False):
                return
        # Receipt before submit_sm_resp (or a late one for a lookup already answered).
        self._purge_early()
        if self._early.pop(exact, None) is not None:
            self._discard("replaced")
        self._early[exact] = _Early(receipt, pdu, conn, self.clock() + self.cfg.early_receipt_ttl_s)
        while len(self._early) > MAX_EARLY_RECEIPTS:
            self._early.popitem(last=False)
            self._discard("overflow")

    def _claim(self, key: str, receipt: Receipt, pdu: DeliverSm, exact: bool) -> bool:
        """Resolve the job waiting under `key` that the receipt provably belongs to.

        An exact id that names another number is a reused id (a restarted provider)
        or a corrupt receipt: discarded. Two jobs under one id and a receipt that
        names no number cannot be told apart: discarded, and both are sent again.
        """
        jobs = self._pending[key]
        owners = [j for j in jobs if not j.future.done() and self._belongs(pdu, j, exact)]
        if len(owners) == 1:
            self._matched(owners[0], receipt, pdu, exact)
            return True
        if not exact:
            return False
        if owners:  # ambiguous: look again, never guess
            self._discard("ambiguous", pdu, owners[0])
            for job in owners:
                self._retry(job, "ambiguous receipt")
        else:
            self._discard("other_number", pdu, jobs[0])
        return True

    def _unpend(self, job: _Job) -> None:
        jobs = self._pending.get(job.key) if job.key is not None else None
        if jobs is None or job not in jobs:
            return
        jobs.remove(job)
        if not jobs:
            del self._pending[job.key]  # type: ignore[arg-type]

    def _resolve(self, job: _Job, receipt: Receipt, pdu: DeliverSm) -> None:
        if job.future.done():
            return
        job.future.set_result(self.dialect.answer(receipt, pdu))


_DIGITS = frozenset("0123456789")


def _digit_count(addr: str) -> int:
    if addr.isascii() and addr.isdigit():  # the usual form: E.164 digits
        return len(addr)
    return sum(c in _DIGITS for c in addr)


def _same_number(receipt_addr: str, msisdn: str) -> bool:
    """Whether a receipt's source address is the looked-up number.

    SMSCs echo the destination back as the receipt's source, sometimes with "+",
    "00" or in national format, so the shorter must end the longer (at least 7 digits).
    """
    if receipt_addr == msisdn:
        return True
    digits = "".join(c for c in receipt_addr if c in _DIGITS).lstrip("0")
    if digits == msisdn:
        return True
    short, long = sorted((digits, msisdn), key=len)
    return len(short) >= 7 and long.endswith(short)
