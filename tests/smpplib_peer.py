"""smpplib's blocking Client as an independent SMPP peer, driven as a user would write it."""

from __future__ import annotations

from typing import Any

import smpplib.client
import smpplib.consts


def smpplib_lookups(
    port: int, system_id: str, password: str, numbers: list[str]
) -> list[dict[str, Any]]:
    """Bind as transceiver, submit one lookup per number, read every receipt, unbind."""
    client = smpplib.client.Client("127.0.0.1", port, timeout=10, allow_unknown_opt_params=True)
    receipts: list[Any] = []
    submit_ids: list[str] = []
    client.set_message_received_handler(lambda pdu: receipts.append(pdu))
    client.set_message_sent_handler(lambda pdu: submit_ids.append(pdu.message_id.decode()))
    client.connect()
    try:
        client.bind_transceiver(system_id=system_id, password=password)
        for n in numbers:
            client.send_message(
                source_addr="dialer",
                dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
                destination_addr=n,
                short_message=b"HLR",
                registered_delivery=1,
            )
        while len(receipts) < len(numbers):
            client.read_once()
        client.unbind()
    finally:
        client.disconnect()
    return [
        {
            "number": r.source_addr.decode(),
            "esm_class": r.esm_class,
            "text": r.short_message.decode(),
            "state": r.message_state,
            "id": r.receipted_message_id.decode(),
            "submit_ids": submit_ids,
        }
        for r in receipts
    ]
