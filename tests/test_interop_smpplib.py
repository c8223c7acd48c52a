"""smpplib's own blocking Client as an independent SMPP peer of the simulator."""

from __future__ import annotations

import asyncio
from typing import Any

import smpplib.client
import smpplib.consts
import smpplib.exceptions

from hlrd.smpp.hlr_fields import hlr_fields_from
from hlrd.smpp.pdu import DeliverSm
from hlrd.smpp.receipts import parse_receipt_text, same_message_id
from simulator.controller import Simulator

from .smpplib_peer import smpplib_lookups


def _lookup_with_smpplib(port: int, msisdn: str) -> dict[str, Any]:
    (got,) = smpplib_lookups(port, "hlrd", "secret", [msisdn])
    return got


async def test_smpplib_client_reads_hlr_fields_from_the_receipt(sim: Simulator) -> None:
    got = await asyncio.to_thread(_lookup_with_smpplib, sim.smpp_port, "48600000003")
    fields = hlr_fields_from(DeliverSm(), parse_receipt_text(got["text"]))
    assert got["esm_class"] == 0x04
    assert same_message_id(got["id"], got["submit_ids"][0])
    assert got["state"] == 2  # DELIVERED
    assert "stat:DELIVRD" in got["text"]
    assert fields.roaming is True
    assert fields.roaming_country == "EG"
    assert fields.serving_mccmnc == "60201"
    assert fields.ported is False
    assert sim.smsc is not None
    assert sim.smsc.outbox.stats.acked == 1


async def test_smpplib_client_sees_an_absent_subscriber(sim: Simulator) -> None:
    got = await asyncio.to_thread(_lookup_with_smpplib, sim.smpp_port, "48600000005")
    assert "stat:UNDELIV" in got["text"]
    assert "err:027" in got["text"]
    assert got["state"] == 5  # UNDELIVERABLE


def _bind_wrong_password(port: int) -> int:
    client = smpplib.client.Client("127.0.0.1", port, timeout=10, allow_unknown_opt_params=True)
    client.connect()
    try:
        client.bind_transceiver(system_id="hlrd", password="nope")
    except smpplib.exceptions.PDUError as exc:
        return int(exc.args[1])
    finally:
        client.disconnect()
    return 0


async def test_smpplib_client_is_told_its_password_is_wrong(sim: Simulator) -> None:
    status = await asyncio.to_thread(_bind_wrong_password, sim.smpp_port)
    assert status == smpplib.consts.SMPP_ESME_RINVPASWD
