"""codec: encode+decode µs per PDU, ours beside smpplib's PDU layer."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import smpplib.smpp

from hlrd.smpp import codec
from hlrd.smpp.constants import Tag
from hlrd.smpp.pdu import DeliverSm, SubmitSm, make_tlv


class _SeqClient:
    """smpplib wants a client object for sequence numbers even to parse."""

    sequence = 1

    def next_sequence(self) -> int:
        return 1


def _per_call_us(fn: Callable[[], Any], seconds: float = 0.5) -> float:
    n = 0
    batch = 200
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(batch):
            fn()
        n += batch
    return (time.perf_counter() - start) / n * 1e6


def measure(runs: int) -> dict[str, list[float]]:
    return (
        {k: [v] for k, v in _once().items()}
        if runs == 1
        else _merge([_once() for _ in range(runs)])
    )


def _merge(samples: list[dict[str, float]]) -> dict[str, list[float]]:
    return {k: [s[k] for s in samples] for k in samples[0]}


def _once() -> dict[str, float]:
    submit = SubmitSm(
        sequence=7,
        source_addr="hlrd",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="48600000001",
        registered_delivery=1,
        short_message=b"HLR",
    )
    receipt = DeliverSm(
        sequence=8,
        source_addr="48600000003",
        esm_class=4,
        short_message=b"id:0000000A sub:001 dlvrd:001 submit date:2611231950 "
        b"done date:2611231950 stat:DELIVRD err:000 text:",
        tlvs=[make_tlv(Tag.RECEIPTED_MESSAGE_ID, "0000000A"), make_tlv(Tag.MESSAGE_STATE, 2)],
    )
    client = _SeqClient()

    def smpplib_submit() -> None:
        p = smpplib.smpp.make_pdu(
            "submit_sm",
            client=client,
            source_addr="hlrd",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="48600000001",
            registered_delivery=1,
            short_message=b"HLR",
        )
        smpplib.smpp.parse_pdu(p.generate(), client=client, allow_unknown_opt_params=True)

    receipt_bytes = codec.encode(receipt)

    def smpplib_receipt() -> None:
        smpplib.smpp.parse_pdu(receipt_bytes, client=client, allow_unknown_opt_params=True)

    return {
        "hlrd submit_sm encode+decode us": _per_call_us(lambda: codec.decode(codec.encode(submit))),
        "smpplib submit_sm encode+decode us": _per_call_us(smpplib_submit),
        "hlrd receipt deliver_sm decode us": _per_call_us(lambda: codec.decode(receipt_bytes)),
        "smpplib receipt deliver_sm decode us": _per_call_us(smpplib_receipt),
    }
