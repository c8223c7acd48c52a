"""A small ESME built on our transport, for tests: binds, submits, collects receipts."""

from __future__ import annotations

import asyncio

from hlrd.smpp.pdu import BindTransceiver, DeliverSm, DeliverSmResp, Pdu, SubmitSm, SubmitSmResp
from hlrd.smpp.receipts import (
    Receipt,
    alternate_message_ids,
    canonical_message_id,
    receipt_from_pdu,
)
from hlrd.smpp.transport import Handler, LinkConfig, SmppConnection, connect


def message_id_keys(message_id: str) -> list[str]:
    return [canonical_message_id(message_id), *alternate_message_ids(message_id)]


class ReceiptCollector(Handler):
    """Acknowledges every deliver_sm and hands out receipts by message id."""

    def __init__(self) -> None:
        self.order: list[str] = []  # command names in arrival order of requests
        self._waiting: dict[str, asyncio.Future[tuple[Receipt, DeliverSm]]] = {}
        self._early: dict[str, tuple[Receipt, DeliverSm]] = {}

    def handle_request(self, conn: SmppConnection, pdu: Pdu) -> Pdu | None:
        self.order.append(pdu.command_name)
        if isinstance(pdu, DeliverSm):
            r = receipt_from_pdu(pdu)
            if r is not None:
                for key in message_id_keys(r.message_id):
                    fut = self._waiting.pop(key, None)
                    if fut is not None and not fut.done():
                        fut.set_result((r, pdu))
                        break
                else:
                    for key in message_id_keys(r.message_id):
                        self._early[key] = (r, pdu)
            return DeliverSmResp(sequence=pdu.sequence)
        return None

    def expect(self, message_id: str) -> asyncio.Future[tuple[Receipt, DeliverSm]]:
        fut: asyncio.Future[tuple[Receipt, DeliverSm]] = asyncio.get_running_loop().create_future()
        for key in message_id_keys(message_id):
            if key in self._early:
                fut.set_result(self._early.pop(key))
                return fut
        for key in message_id_keys(message_id):
            self._waiting[key] = fut
        return fut


async def bound_client(
    port: int,
    system_id: str = "hlrd",
    password: str = "secret",
    config: LinkConfig | None = None,
) -> tuple[SmppConnection, ReceiptCollector]:
    handler = ReceiptCollector()
    conn = await connect("127.0.0.1", port, handler, config or LinkConfig(window=16))
    await conn.bind(BindTransceiver(system_id=system_id, password=password))
    return conn, handler


async def lookup(
    conn: SmppConnection, handler: ReceiptCollector, msisdn: str
) -> tuple[Receipt, DeliverSm]:
    resp = await conn.request(
        SubmitSm(source_addr="hlrd", destination_addr=msisdn, registered_delivery=1)
    )
    assert isinstance(resp, SubmitSmResp) and resp.status == 0, resp
    return await handler.expect(resp.message_id)
