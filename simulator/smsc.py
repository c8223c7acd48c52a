"""The simulated SMSC/HLR: answers submit_sm lookups with HLR delivery receipts.

Behaves like an SMPP HLR lookup provider: accepts binds with the scenario's
credentials, answers each submit_sm at once with a message id, and after the
subscriber's latency sends a deliver_sm receipt carrying the HLR result both as
receipt text fields and as vendor TLVs (see hlrd.smpp.hlr_fields). Receipts go to a
receiver-capable bind of the same system_id and wait (bounded) when none is bound.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from hlrd.smpp.constants import CommandId, EsmClass, Status, Tag
from hlrd.smpp.errors import SmppError
from hlrd.smpp.hlr_fields import HlrFields
from hlrd.smpp.pdu import (
    Bind,
    DataSm,
    DeliverSm,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    make_response,
)
from hlrd.smpp.receipts import STAT_TO_STATE, Receipt, receipt_text, receipt_tlvs
from hlrd.smpp.transport import Handler, SmppConnection

from .scenario import Answer, Scenario

log = structlog.get_logger("simulator.smsc")

MAX_PENDING_RECEIPTS = 10_000
MAX_REMEMBERED_IDS = 100_000
RECEIPT_ATTEMPTS = 3


def mask(msisdn: str) -> str:
    return "*" * max(0, len(msisdn) - 3) + msisdn[-3:]


@dataclass(slots=True)
class Stats:
    binds: int = 0
    bind_failures: int = 0
    submits: int = 0
    throttled: int = 0
    receipts_sent: int = 0
    receipts_acked: int = 0
    receipts_pending: int = 0


class TokenBucket:
    """`rate` per second with a burst of at most one second's worth."""

    def __init__(self, rate: int, clock: asyncio.AbstractEventLoop) -> None:
        self.rate = rate
        self._loop = clock
        self._tokens = float(rate)
        self._stamp = clock.time()

    def take(self) -> bool:
        if self.rate <= 0:
            return True
        now = self._loop.time()
        self._tokens = min(float(self.rate), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class Smsc:
    """State shared by all connections of one simulator."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.stats = Stats()
        self._loop = asyncio.get_running_loop()
        self._rng = random.Random(scenario.seed)
        self._ids = itertools.count(1)
        self._bucket = TokenBucket(scenario.smpp.tps, self._loop)
        self._receivers: dict[str, list[SmppConnection]] = {}
        self._pending: dict[str, deque[DeliverSm]] = {}
        self._states: dict[str, tuple[str, int]] = {}  # message id -> (stat, error)
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self.connections: set[SmppConnection] = set()
        # Called with each looked-up number as its submit_sm arrives (tests wait on it).
        self.submit_listeners: list[Callable[[str], None]] = []

    def handler(self) -> Handler:
        return _ConnectionHandler(self)

    # -- receipts --------------------------------------------------------------------

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = self._loop.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def receiver_for(self, system_id: str, prefer: SmppConnection | None) -> SmppConnection | None:
        conns = [c for c in self._receivers.get(system_id, ()) if not c.closing]
        if prefer is not None and prefer in conns:
            return prefer
        return conns[0] if conns else None

    def register_receiver(self, system_id: str, conn: SmppConnection) -> None:
        self._receivers.setdefault(system_id, []).append(conn)
        queue = self._pending.get(system_id)
        while queue:
            self.stats.receipts_pending -= 1
            self._spawn(self._deliver(system_id, queue.popleft(), conn))

    def unregister(self, system_id: str, conn: SmppConnection) -> None:
        conns = self._receivers.get(system_id)
        if conns and conn in conns:
            conns.remove(conn)

    def _park(self, system_id: str, receipt: DeliverSm) -> None:
        queue = self._pending.setdefault(system_id, deque())
        if len(queue) >= MAX_PENDING_RECEIPTS:
            queue.popleft()
            self.stats.receipts_pending -= 1
        queue.append(receipt)
        self.stats.receipts_pending += 1

    def schedule_receipt(
        self, system_id: str, receipt: DeliverSm, delay: float, prefer: SmppConnection
    ) -> None:
        def fire() -> None:
            self._timers.discard(handle)
            self._spawn(self._deliver(system_id, receipt, prefer))

        handle = self._loop.call_later(delay, fire)
        self._timers.add(handle)

    async def _deliver(
        self, system_id: str, receipt: DeliverSm, prefer: SmppConnection | None
    ) -> None:
        for _ in range(RECEIPT_ATTEMPTS):
            conn = self.receiver_for(system_id, prefer)
            if conn is None:
                break
            receipt.sequence = 0  # a fresh sequence number on every attempt
            try:
                self.stats.receipts_sent += 1
                resp = await conn.request(receipt)
            except SmppError:
                prefer = None
                continue
            if resp.status == Status.ESME_ROK:
                self.stats.receipts_acked += 1
                return
            prefer = None
        self._park(system_id, receipt)

    def build_receipt(self, submit: SubmitSm, message_id: str, answer: Answer) -> DeliverSm:
        rid = message_id
        if self.scenario.smpp.receipt_id_format == "decimal":
            rid = str(int(message_id, 16))
        fields = HlrFields(
            hlr_status=answer.status,
            imsi=answer.imsi,
            mccmnc=answer.subscription_mccmnc,
            serving_mccmnc=answer.serving_mccmnc,
            msc=answer.msc,
            roaming=answer.roaming,
            ported=answer.ported,
            home_mccmnc=answer.home_mccmnc,
            roaming_country=answer.roaming_country,
        )
        r = Receipt(
            message_id=rid,
            stat=answer.stat,
            err=f"{answer.map_error:03d}",
            extra=fields.text_fields(),
        )
        self._remember(message_id, answer)
        text = receipt_text(r).encode("latin-1")
        tlvs = receipt_tlvs(r) + fields.tlvs()
        if len(text) > 254:
            # Too long for short_message: SMPP 3.4 puts it in message_payload instead.
            tlvs.append(Tlv(Tag.MESSAGE_PAYLOAD, text))
            text = b""
        return DeliverSm(
            source_addr_ton=submit.dest_addr_ton,
            source_addr_npi=submit.dest_addr_npi,
            source_addr=submit.destination_addr,
            dest_addr_ton=submit.source_addr_ton,
            dest_addr_npi=submit.source_addr_npi,
            destination_addr=submit.source_addr,
            esm_class=EsmClass.DELIVERY_RECEIPT,
            short_message=text,
            tlvs=tlvs,
        )

    def _remember(self, message_id: str, answer: Answer) -> None:
        if len(self._states) >= MAX_REMEMBERED_IDS:
            self._states.pop(next(iter(self._states)))
        self._states[message_id] = (answer.stat, answer.map_error)

    def query(self, pdu: QuerySm) -> Pdu:
        known = self._states.get(pdu.message_id.upper())
        if known is None:
            return make_response(pdu, Status.ESME_RQUERYFAIL)
        stat, error = known
        return QuerySmResp(
            sequence=pdu.sequence,
            message_id=pdu.message_id,
            message_state=int(STAT_TO_STATE[stat]),
            error_code=min(error, 255),
        )

    def count_ack(self, fut: asyncio.Future[Pdu]) -> None:
        if not fut.cancelled() and fut.exception() is None and fut.result().status == 0:
            self.stats.receipts_acked += 1

    def next_message_id(self) -> str:
        return f"{next(self._ids):08X}"

    def take_token(self) -> bool:
        return self._bucket.take()

    async def close(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(c.close() for c in list(self.connections)), return_exceptions=True)


class _ConnectionHandler(Handler):
    def __init__(self, smsc: Smsc) -> None:
        self.smsc = smsc
        self.system_id: str | None = None
        self.pdus = 0

    def connection_made(self, conn: SmppConnection) -> None:
        self.smsc.connections.add(conn)

    def connection_lost(self, conn: SmppConnection, exc: Exception | None) -> None:
        self.smsc.connections.discard(conn)
        if self.system_id is not None:
            self.smsc.unregister(self.system_id, conn)

    def handle_request(self, conn: SmppConnection, pdu: Pdu) -> Pdu | None:
        self.pdus += 1
        limit = self.smsc.scenario.smpp.drop_after_pdus
        if limit and self.pdus > limit:
            log.info("sim.fault_drop", peer=conn.peer, after_pdus=limit)
            conn.abort()
            return None
        if isinstance(pdu, SubmitSm):
            return self._submit(conn, pdu)
        if isinstance(pdu, Bind):
            return self._bind(conn, pdu)
        if isinstance(pdu, QuerySm):
            return self.smsc.query(pdu)
        if isinstance(pdu, DataSm):
            return make_response(pdu, message_id=self.smsc.next_message_id())
        return make_response(pdu, Status.ESME_RINVCMDID)

    def _bind(self, conn: SmppConnection, pdu: Bind) -> Pdu | None:
        settings = self.smsc.scenario.smpp
        if pdu.system_id != settings.system_id:
            status = Status.ESME_RINVSYSID
        elif pdu.password != settings.password:
            status = Status.ESME_RINVPASWD
        else:
            status = Status.ESME_ROK
        if status != Status.ESME_ROK:
            self.smsc.stats.bind_failures += 1
            log.warning("sim.bind_refused", peer=conn.peer, status=status.name)
            return make_response(pdu, status)
        self.system_id = pdu.system_id
        self.smsc.stats.binds += 1
        resp = make_response(pdu, system_id="hlrsim")
        if pdu.command_id == CommandId.BIND_TRANSMITTER:
            return resp
        # Answer the bind first, so queued receipts follow a bound session.
        conn.respond(resp)
        self.smsc.register_receiver(pdu.system_id, conn)
        return None

    def _submit(self, conn: SmppConnection, pdu: SubmitSm) -> Pdu | None:
        smsc = self.smsc
        smsc.stats.submits += 1
        for listener in smsc.submit_listeners:
            listener(pdu.destination_addr)
        if not smsc.take_token():
            smsc.stats.throttled += 1
            return make_response(pdu, Status.ESME_RTHROTTLED)
        msisdn = pdu.destination_addr.lstrip("+")
        if not msisdn.isdigit() or not 6 <= len(msisdn) <= 15:
            return make_response(pdu, Status.ESME_RINVDSTADR)
        answer = smsc.scenario.answer(msisdn, smsc._rng)
        if answer.fault == "never_answer":
            log.info("sim.fault_never_answer", msisdn=mask(msisdn))
            return None
        message_id = smsc.next_message_id()
        resp = SubmitSmResp(sequence=pdu.sequence, message_id=message_id)
        if not pdu.registered_delivery & 0x03 or answer.fault == "no_receipt":
            return resp
        assert self.system_id is not None
        receipt = smsc.build_receipt(pdu, message_id, answer)
        if answer.fault == "receipt_first":
            # The receipt goes out ahead of submit_sm_resp in the same write.
            receiver = smsc.receiver_for(self.system_id, conn)
            if receiver is not None:
                smsc.stats.receipts_sent += 1
                receiver.send_request_nowait(receipt).add_done_callback(smsc.count_ack)
            return resp
        smsc.schedule_receipt(self.system_id, receipt, answer.latency_s, conn)
        return resp
