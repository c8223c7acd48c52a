"""The simulator end to end over 127.0.0.1, driven by our own transport."""

from __future__ import annotations

import asyncio
import struct

import aiohttp
import pytest

from hlrd.smpp.constants import CommandId, MessageState, Status
from hlrd.smpp.errors import ResponseError
from hlrd.smpp.hlr_fields import hlr_fields_from
from hlrd.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    GenericNack,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
)
from hlrd.smpp.receipts import parse_receipt_text, same_message_id
from hlrd.smpp.transport import LinkConfig, connect
from simulator.controller import Simulator
from simulator.scenario import Scenario

from .esme import ReceiptCollector, bound_client, lookup
from .raw_peer import raw_exchange


@pytest.mark.parametrize(
    ("msisdn", "stat", "err", "roaming", "ported", "serving", "country"),
    [
        ("48600000001", "DELIVRD", 0, False, False, "26001", None),
        ("48600000002", "DELIVRD", 0, True, False, "26201", "DE"),
        ("48600000003", "DELIVRD", 0, True, False, "60201", "EG"),
        ("48600000004", "DELIVRD", 0, False, True, "26003", None),
        ("48600000005", "UNDELIV", 27, None, False, None, None),
        ("48600000006", "UNDELIV", 1, None, None, None, None),
        ("48600000007", "REJECTD", 13, None, False, None, None),
        ("48600000008", "UNDELIV", 11, None, False, None, None),
        ("48600000009", "UNDELIV", 34, None, False, None, None),
    ],
)
async def test_demo_numbers_answer_with_their_hlr_result(
    sim: Simulator,
    msisdn: str,
    stat: str,
    err: int,
    roaming: bool | None,
    ported: bool | None,
    serving: str | None,
    country: str | None,
) -> None:
    conn, handler = await bound_client(sim.smpp_port)
    receipt, pdu = await lookup(conn, handler, msisdn)
    await conn.close()
    assert receipt.stat == stat
    assert receipt.error_code == err
    assert pdu.source_addr == msisdn
    # The same HLR facts are in the receipt text and in the vendor TLVs.
    from_text = hlr_fields_from(type(pdu)(), parse_receipt_text(pdu.short_message.decode()))
    from_tlvs = hlr_fields_from(pdu, {})
    for fields in (from_text, from_tlvs):
        assert fields.roaming is roaming
        assert fields.ported is ported
        assert fields.serving_mccmnc == serving
        assert fields.roaming_country == country
    if err:
        assert receipt.network_error == (3, err)


async def test_unmatched_numbers_answer_the_same_every_time(sim: Simulator) -> None:
    conn, handler = await bound_client(sim.smpp_port)
    first, _ = await lookup(conn, handler, "4915112345678")
    second, _ = await lookup(conn, handler, "4915112345678")
    await conn.close()
    assert first.extra == second.extra
    assert first.stat == second.stat


async def test_wrong_credentials_are_refused_with_the_specific_status(sim: Simulator) -> None:
    conn = await connect("127.0.0.1", sim.smpp_port)
    with pytest.raises(ResponseError) as exc:
        await conn.bind(BindTransceiver(system_id="hlrd", password="wrong"))
    assert exc.value.status == Status.ESME_RINVPASWD
    with pytest.raises(ResponseError) as exc:
        await conn.bind(BindTransceiver(system_id="nobody", password="secret"))
    assert exc.value.status == Status.ESME_RINVSYSID
    await conn.close()
    assert sim.stats.bind_failures == 2


async def test_tps_cap_answers_throttled(demo: Scenario) -> None:
    async with Simulator(demo.with_smpp(tps=1)) as sim:
        conn, _ = await bound_client(sim.smpp_port)
        statuses = [
            (await conn.request(SubmitSm(destination_addr="48600000001"))).status for _ in range(3)
        ]
        await conn.close()
    assert statuses[0] == Status.ESME_ROK
    assert Status.ESME_RTHROTTLED in statuses[1:]


async def test_receipt_before_submit_resp_fault(sim: Simulator) -> None:
    conn, handler = await bound_client(sim.smpp_port)
    receipt, _ = await lookup(conn, handler, "48600000091")
    await conn.close()
    assert receipt.stat == "DELIVRD"
    assert handler.order == ["deliver_sm"]  # it came while submit_sm_resp was awaited


async def test_decimal_receipt_ids_match_hex_submit_ids(demo: Scenario) -> None:
    async with Simulator(demo.with_smpp(receipt_id_format="decimal")) as sim:
        conn, handler = await bound_client(sim.smpp_port)
        resp = await conn.request(SubmitSm(destination_addr="48600000001", registered_delivery=1))
        assert isinstance(resp, SubmitSmResp)
        receipt, _ = await handler.expect(resp.message_id)
        await conn.close()
    assert receipt.message_id != resp.message_id
    assert same_message_id(receipt.message_id, resp.message_id)


async def test_query_sm_reports_the_lookup_state(sim: Simulator) -> None:
    conn, handler = await bound_client(sim.smpp_port)
    resp = await conn.request(SubmitSm(destination_addr="48600000005", registered_delivery=1))
    assert isinstance(resp, SubmitSmResp)
    await handler.expect(resp.message_id)
    q = await conn.request(QuerySm(message_id=resp.message_id))
    unknown = await conn.request(QuerySm(message_id="FFFFFFFF"))
    await conn.close()
    assert isinstance(q, QuerySmResp)
    assert q.message_state == MessageState.UNDELIVERABLE
    assert q.error_code == 27
    assert unknown.status == Status.ESME_RQUERYFAIL


async def test_tx_rx_pair_gets_receipts_on_the_receiver(sim: Simulator) -> None:
    rx_handler = ReceiptCollector()
    rx = await connect("127.0.0.1", sim.smpp_port, rx_handler)
    await rx.bind(BindReceiver(system_id="hlrd", password="secret"))
    tx = await connect("127.0.0.1", sim.smpp_port)
    await tx.bind(BindTransmitter(system_id="hlrd", password="secret"))
    resp = await tx.request(SubmitSm(destination_addr="48600000003", registered_delivery=1))
    assert isinstance(resp, SubmitSmResp)
    receipt, _ = await rx_handler.expect(resp.message_id)
    await tx.close()
    await rx.close()
    assert receipt.extra["roaming_country"] == "EG"


async def test_receipts_wait_for_a_receiver_to_bind(sim: Simulator) -> None:
    tx = await connect("127.0.0.1", sim.smpp_port)
    await tx.bind(BindTransmitter(system_id="hlrd", password="secret"))
    resp = await tx.request(SubmitSm(destination_addr="48600000001", registered_delivery=1))
    assert isinstance(resp, SubmitSmResp)
    # No receiver yet: the receipt is parked (observed through query_sm's answer
    # being known while nothing was delivered), then flushed on bind.
    rx_handler = ReceiptCollector()
    waiting = rx_handler.expect(resp.message_id)
    rx = await connect("127.0.0.1", sim.smpp_port, rx_handler)
    await rx.bind(BindReceiver(system_id="hlrd", password="secret"))
    receipt, _ = await waiting
    await tx.close()
    await rx.close()
    assert same_message_id(receipt.message_id, resp.message_id)


async def test_malformed_pdu_gets_generic_nack_while_other_sessions_carry_on(
    sim: Simulator,
) -> None:
    conn, handler = await bound_client(sim.smpp_port)
    bad = struct.pack(">IIII", 20, 0x000000AB, 0, 7) + b"junk"
    got = await asyncio.to_thread(raw_exchange, sim.smpp_port, bad, "hlrd", "secret", True)
    receipt, _ = await lookup(conn, handler, "48600000002")
    await conn.close()
    assert GenericNack(sequence=7, status=Status.ESME_RINVCMDID) in got
    assert got[-1].command_id == CommandId.ENQUIRE_LINK_RESP  # type: ignore[attr-defined]
    assert receipt.stat == "DELIVRD"


async def test_impossible_command_length_is_nacked_and_the_link_closed(sim: Simulator) -> None:
    bad = struct.pack(">IIII", 4, CommandId.SUBMIT_SM, 0, 8)
    got = await asyncio.to_thread(raw_exchange, sim.smpp_port, bad, "hlrd", "secret", False)
    assert got[-1] == GenericNack(sequence=8, status=Status.ESME_RINVCMDLEN)  # then EOF


async def test_connection_drop_fault(demo: Scenario) -> None:
    async with Simulator(demo.with_smpp(drop_after_pdus=2)) as sim:
        conn = await connect("127.0.0.1", sim.smpp_port, config=LinkConfig(window=4))
        await conn.bind(BindTransceiver(system_id="hlrd", password="secret"))
        first = await conn.request(SubmitSm(destination_addr="48600000001"))
        with pytest.raises(ConnectionError):
            await conn.request(SubmitSm(destination_addr="48600000001"))
        await conn.wait_closed()
    assert first.status == Status.ESME_ROK


@pytest.mark.parametrize(
    "address", ["\u00b2\u00b2\u00b2486000000", "++48600000001", "+", "4860000x001"]
)
async def test_addresses_that_are_not_numbers_are_refused(sim: Simulator, address: str) -> None:
    """Superscript digits pass str.isdigit(); "++48..." is not a number either."""
    conn, _ = await bound_client(sim.smpp_port)
    try:
        resp = await conn.request(SubmitSm(source_addr="hlrd", destination_addr=address))
    finally:
        await conn.close()
    assert resp.status == Status.ESME_RINVDSTADR


async def test_http_api_refuses_addresses_that_are_not_numbers(demo: Scenario) -> None:
    async with Simulator(demo, http_port=0) as sim:
        base = f"http://127.0.0.1:{sim.http_port}"
        async with aiohttp.ClientSession() as http:
            for bad in ("%C2%B2%C2%B2%C2%B2486000", "++48600000001"):
                async with http.get(f"{base}/v1/hlr/{bad}") as r:
                    assert r.status == 400
                    assert (await r.json())["field"] == "msisdn"
            async with http.get(f"{base}/v1/hlr/+48600000003") as r:
                assert (await r.json())["roaming_country"] == "EG"
