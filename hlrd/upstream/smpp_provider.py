"""An HLR lookup provider over SMPP: N supervised binds, one dispatcher, receipts.

A lookup is a submit_sm to the number with a delivery receipt requested; the answer
is the receipt. Lookups queue (bounded) in front of one dispatcher task, which takes
a rate slot, picks the bind with the most free window slots and sends, without
waiting for the answer. Each lookup is a future resolved by its receipt, matched by
normalised message id — also when the receipt overtakes its submit_sm_resp. Ids that
only match across hex/decimal are ambiguous ("10" is 0x10, or 10 = 0x0A), so such a
match also needs the receipt's source address to be the looked-up number, and once a
provider has matched exactly, alternates are not tried for it at all. A lookup
whose link drops before its receipt is sent again on another bind; one that sees
ESME_RTHROTTLED goes back to the head of the queue and the rate slows down.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections import OrderedDict, deque
from dataclasses import dataclass

import structlog

from ..config import SmppProviderConfig
from ..domain.masking import mask_msisdn
from ..domain.result import HlrAnswer
from ..metrics import Metrics
from ..smpp.constants import MessageState, Status, status_name
from ..smpp.errors import ConnectionLost, RequestTimeout, SmppError, WindowClosed
from ..smpp.expiry import ExpiryQueue
from ..smpp.hlr_fields import hlr_fields_from
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
from .base import ProviderError
from .rate import AdaptiveRate

log = structlog.get_logger("hlrd.upstream.smpp")

MAX_EARLY_RECEIPTS = 10_000


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
            self.provider.on_deliver(pdu)
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
                self.bound = True
                self.provider.bound_event.set()
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
        self, cfg: SmppProviderConfig, metrics: Metrics | None = None, max_queue: int = 10_000
    ) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.max_lookup_s = cfg.result_timeout_s  # counted from enqueue (ExpiryQueue)
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
        self.bound_event = asyncio.Event()  # set once any bind is up
        self._pending: dict[str, _Job] = {}  # message id key -> job awaiting its receipt
        self._early: OrderedDict[str, tuple[Receipt, DeliverSm]] = OrderedDict()
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

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return any(b.bound for b in self._binds)

    async def wait_ready(self) -> None:
        await self.bound_event.wait()

    def _in_flight(self) -> float:
        return float(sum(b.tx.in_flight for b in self._binds if b.tx is not None))

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._deadlines = ExpiryQueue(self._expire)
        for b in self._binds:
            b.task = loop.create_task(b.run())
        self._dispatcher = loop.create_task(self._dispatch())

    async def stop(self) -> None:
        """Fail what is queued, unbind every link, and end the background tasks."""
        self.stopping = True
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
        if job.key is not None and self._pending.get(job.key) is job:
            del self._pending[job.key]
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
            job = await self._next_job()
            await self.rate.acquire()
            conn = await self._pick()
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
                self.metrics.throttled.labels(self.name).inc()
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
        early = self._early.pop(job.key, None)
        if early is not None:
            self._matched(job, *early, exact=True)
            return
        for key in self._alternates(resp.message_id):
            early = self._early.get(key)
            if early is not None and self._same_subscriber(early[1], job):
                del self._early[key]
                self._matched(job, *early, exact=False)
                return
        self._pending[job.key] = job

    def _alternates(self, message_id: str) -> tuple[str, ...]:
        return () if self._ids_exact else alternate_message_ids(message_id)

    def _same_subscriber(self, pdu: DeliverSm, job: _Job) -> bool:
        """Whether a receipt matched only by an alternate id is really this job's."""
        if not pdu.source_addr:  # cannot tell: only if configured to trust alternates
            return self.cfg.message_id_match == "hex_decimal"
        return _same_number(pdu.source_addr, job.msisdn)

    def _matched(self, job: _Job, receipt: Receipt, pdu: DeliverSm, exact: bool) -> None:
        if self._ids_exact is None:
            self._ids_exact = exact
            log.info(
                "upstream.message_ids", provider=self.name, form="exact" if exact else "hex/decimal"
            )
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
            self.metrics.retries.labels(self.name).inc()
        if job.key is not None and self._pending.get(job.key) is job:
            del self._pending[job.key]
        job.key = None
        self._enqueue(job, front=True)

    def on_link_lost(self, conn: SmppConnection) -> None:
        """Lookups submitted on a dropped link may never get their receipt: resend."""
        self._slot_freed.set()
        for job in [j for j in self._sent if j.conn is conn]:
            if not job.future.done():
                self._retry(job, "link lost")

    def on_deliver(self, pdu: DeliverSm) -> None:
        receipt = receipt_from_pdu(pdu)
        if receipt is None:
            return
        exact = canonical_message_id(receipt.message_id)
        job = self._pending.get(exact)
        if job is not None:
            self._matched(job, receipt, pdu, exact=True)
            return
        for key in self._alternates(receipt.message_id):
            job = self._pending.get(key)
            if job is not None and self._same_subscriber(pdu, job):
                self._matched(job, receipt, pdu, exact=False)
                return
        # Receipt before submit_sm_resp (or for a lookup already given up on).
        self._early[exact] = (receipt, pdu)
        while len(self._early) > MAX_EARLY_RECEIPTS:
            self._early.popitem(last=False)

    def _resolve(self, job: _Job, receipt: Receipt, pdu: DeliverSm) -> None:
        if job.future.done():
            return
        f = hlr_fields_from(pdu, receipt.extra)
        delivered = receipt.state == MessageState.DELIVERED or f.hlr_status == "live"
        job.future.set_result(
            HlrAnswer(
                delivered=delivered,
                map_error=receipt.error_code,
                imsi=f.imsi,
                mccmnc=f.mccmnc,
                serving_mccmnc=f.serving_mccmnc,
                msc=f.msc,
                home_mccmnc=f.home_mccmnc,
                ported=f.ported,
                message_id=receipt.message_id,
            )
        )


def _same_number(receipt_addr: str, msisdn: str) -> bool:
    """Whether a receipt's source address is the looked-up number.

    SMSCs echo the destination back as the receipt's source, sometimes with "+",
    "00" or in national format, so the shorter must end the longer (at least 7 digits).
    """
    digits = "".join(c for c in receipt_addr if c.isdigit()).lstrip("0")
    if digits == msisdn:
        return True
    short, long = sorted((digits, msisdn), key=len)
    return len(short) >= 7 and long.endswith(short)
