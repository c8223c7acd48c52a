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
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from hlrd.smpp.constants import CommandId, Status
from hlrd.smpp.flow import TokenBucket
from hlrd.smpp.hlr_fields import HlrFields
from hlrd.smpp.outbox import ReceiptOutbox
from hlrd.smpp.pdu import (
    Bind,
    DataSm,
    DeliverSm,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    make_response,
)
from hlrd.smpp.receipts import STAT_TO_STATE, Receipt, receipt_pdu
from hlrd.smpp.transport import Handler, SmppConnection

from .restcomm import restcomm_sri_receipt
from .scenario import Answer, Scenario, msisdn_of

log = structlog.get_logger("simulator.smsc")

MAX_PENDING_RECEIPTS = 10_000
MAX_REMEMBERED_IDS = 100_000


def mask(msisdn: str) -> str:
    return "*" * max(0, len(msisdn) - 3) + msisdn[-3:]


@dataclass(slots=True)
class Stats:
    binds: int = 0
    bind_failures: int = 0
    submits: int = 0
    throttled: int = 0


class Smsc:
    """State shared by all connections of one simulator."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.stats = Stats()
        self._loop = asyncio.get_running_loop()
        self._rng = random.Random(scenario.seed)
        self._ids = itertools.count(1)
        self._bucket = TokenBucket(scenario.smpp.tps)
        self.outbox = ReceiptOutbox(
            max_pending=MAX_PENDING_RECEIPTS, retry_delay_s=0.2, listener=self._receipt_event
        )
        self._states: dict[str, tuple[str, int]] = {}  # message id -> (stat, error)
        self.connections: set[SmppConnection] = set()
        # Called with each looked-up number as its submit_sm arrives (tests wait on it).
        self.submit_listeners: list[Callable[[str], None]] = []
        # Called with each receipt event: "sent", "acked", "retried", "expired".
        self.receipt_listeners: list[Callable[[str], None]] = []
        self.bind_listeners: list[Callable[[str], None]] = []  # with each bound system_id
        self.restarts = 0

    def _receipt_event(self, _account: str, event: str) -> None:
        for listener in self.receipt_listeners:
            listener(event)

    def restart(self, drop_links: bool = True) -> None:
        """Imitate a provider restart: every link drops and message ids start at 1.

        Receipts not yet acknowledged stay in the outbox and go out on the next bind,
        as a provider with a persistent receipt store (or a cluster) does: late
        receipts whose ids the restarted provider hands out again. Without
        `drop_links` only the ids start again (a node of a cluster restarting).
        """
        self._ids = itertools.count(1)
        self.restarts += 1
        if drop_links:
            self.drop_links()

    def drop_links(self) -> None:
        """Drop every client link now (no unbind), as a network failure would."""
        for conn in list(self.connections):
            conn.abort()

    def send_receipt(self, system_id: str, receipt: DeliverSm) -> None:
        """Send a receipt of the test's making (a duplicate, a late or a forged one)."""
        self.outbox.send(system_id, receipt)

    def handler(self) -> Handler:
        return _ConnectionHandler(self)

    # -- receipts --------------------------------------------------------------------

    def build_receipt(self, submit: SubmitSm, message_id: str, answer: Answer) -> DeliverSm:
        if self.scenario.smpp.receipt_dialect == "restcomm_sri":
            self._remember(message_id, answer)
            return restcomm_sri_receipt(submit, message_id, answer)
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
        return receipt_pdu(submit, r, fields.tlvs())

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
            self.outbox.stats.acked += 1

    def next_message_id(self) -> str:
        if self.scenario.smpp.receipt_dialect == "restcomm_sri":
            return f"{next(self._ids):010d}"  # RestComm: String.format("%010d", id)
        return f"{next(self._ids):08X}"

    def take_token(self) -> bool:
        return self._bucket.take()

    async def close(self) -> None:
        await self.outbox.close()
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
            self.smsc.outbox.detach(self.system_id, conn)

    def slot_freed(self, conn: SmppConnection) -> None:
        self.smsc.outbox.slot_freed(conn)

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
        for listener in self.smsc.bind_listeners:
            listener(pdu.system_id)
        resp = make_response(pdu, system_id="hlrsim")
        if pdu.command_id == CommandId.BIND_TRANSMITTER:
            return resp
        # Answer the bind first, so queued receipts follow a bound session.
        conn.respond(resp)
        self.smsc.outbox.attach(pdu.system_id, conn)
        return None

    def _submit(self, conn: SmppConnection, pdu: SubmitSm) -> Pdu | None:
        smsc = self.smsc
        smsc.stats.submits += 1
        for listener in smsc.submit_listeners:
            listener(pdu.destination_addr)
        if not smsc.take_token():
            smsc.stats.throttled += 1
            return make_response(pdu, Status.ESME_RTHROTTLED)
        msisdn = msisdn_of(pdu.destination_addr)
        if msisdn is None:
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
            receiver = smsc.outbox.receiver(self.system_id, conn)
            if receiver is not None:
                smsc.outbox.stats.sent += 1
                receiver.send_request_nowait(receipt).add_done_callback(smsc.count_ack)
            return resp
        conn.respond(resp)  # a real SMSC answers the submit_sm before its receipt
        smsc.outbox.send(self.system_id, receipt, prefer=conn, delay_s=answer.latency_s)
        return None
