"""hlrd's SMPP front end, driven by independent SMPP clients over 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import pytest

from hlrd.smpp import codec
from hlrd.smpp.constants import CommandId, MessageState, Status, Tag
from hlrd.smpp.errors import ResponseError
from hlrd.smpp.hlr_fields import hlr_fields_from
from hlrd.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DeliverSm,
    DeliverSmResp,
    GenericNack,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
)
from hlrd.smpp.receipts import parse_receipt_text
from hlrd.smpp.transport import LinkConfig, SmppConnection, connect
from simulator.controller import Simulator

from .daemon_harness import SMPP_SERVER, running_daemon, with_account
from .esme import ReceiptCollector, bound_client, lookup
from .raw_peer import raw_exchange
from .smpplib_peer import smpplib_lookups


def _port(daemon: Any) -> int:
    assert daemon.smpp_server is not None
    return int(daemon.smpp_server.port)


async def test_smpplib_client_reads_the_hlr_answer_from_text_receipts(sim: Simulator) -> None:
    numbers = ["48600000001", "48600000002", "48600000003", "48600000004", "48600000005"]
    async with running_daemon(sim, smpp_server=SMPP_SERVER) as (daemon, _):
        got = await asyncio.to_thread(smpplib_lookups, _port(daemon), "cc", "ccpass", numbers)
    by_number = {g["number"]: g for g in got}
    fields = {
        n: hlr_fields_from(DeliverSm(), parse_receipt_text(g["text"])) for n, g in by_number.items()
    }
    assert all(g["esm_class"] == 0x04 for g in got)
    assert fields["48600000001"].roaming is False
    assert fields["48600000002"].roaming_country == "DE"
    assert fields["48600000003"].roaming is True
    assert fields["48600000003"].roaming_country == "EG"
    assert fields["48600000004"].ported is True
    assert fields["48600000005"].hlr_status == "absent"
    assert "stat:UNDELIV" in by_number["48600000005"]["text"]
    assert "err:027" in by_number["48600000005"]["text"]
    assert by_number["48600000005"]["state"] == MessageState.UNDELIVERABLE
    assert by_number["48600000003"]["state"] == MessageState.DELIVERED


async def test_tlv_receipts_carry_the_vendor_fields(sim: Simulator) -> None:
    server = with_account(receipt_format="tlv", return_imsi=True)
    async with running_daemon(sim, smpp_server=server, lookup={"return_imsi": True}) as (d, _):
        conn, handler = await bound_client(_port(d), "cc", "ccpass")
        receipt, pdu = await lookup(conn, handler, "48600000003")
        absent, absent_pdu = await lookup(conn, handler, "48600000005")
        await conn.close()
    f = hlr_fields_from(pdu, {})
    assert (f.roaming, f.roaming_country, f.ported, f.mccmnc) == (True, "EG", False, "26001")
    assert f.imsi == "260010000000003"
    assert "roaming" not in receipt.extra  # "tlv" format: the text is the bare receipt
    assert pdu.get(Tag.MESSAGE_STATE) == MessageState.DELIVERED
    assert absent_pdu.get(Tag.NETWORK_ERROR_CODE) == b"\x03\x00\x1b"  # GSM, MAP 27
    assert absent.error_code == 27


async def test_imsi_is_not_sent_unless_the_account_may_have_it(sim: Simulator) -> None:
    async with running_daemon(sim, smpp_server=SMPP_SERVER) as (d, _):
        conn, handler = await bound_client(_port(d), "cc", "ccpass")
        receipt, pdu = await lookup(conn, handler, "48600000003")
        await conn.close()
    assert "imsi" not in receipt.extra
    assert hlr_fields_from(pdu, {}).imsi is None


async def test_transmitter_and_receiver_pair(sim: Simulator) -> None:
    async with running_daemon(sim, smpp_server=SMPP_SERVER) as (d, _):
        rx_handler = ReceiptCollector()
        rx = await connect("127.0.0.1", _port(d), rx_handler)
        await rx.bind(BindReceiver(system_id="cc", password="ccpass"))
        tx = await connect("127.0.0.1", _port(d))
        await tx.bind(BindTransmitter(system_id="cc", password="ccpass"))
        resp = await tx.request(SubmitSm(destination_addr="48600000002", registered_delivery=1))
        assert isinstance(resp, SubmitSmResp)
        receipt, _ = await rx_handler.expect(resp.message_id)
        await tx.close()
        await rx.close()
    assert receipt.extra["roaming_country"] == "DE"


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [("cc", "wrong", Status.ESME_RINVPASWD), ("nobody", "ccpass", Status.ESME_RINVSYSID)],
)
async def test_wrong_credentials(
    sim: Simulator, system_id: str, password: str, status: int
) -> None:
    async with running_daemon(sim, smpp_server=SMPP_SERVER) as (d, _):
        conn = await connect("127.0.0.1", _port(d))
        with pytest.raises(ResponseError) as exc:
            await conn.bind(BindTransceiver(system_id=system_id, password=password))
        await conn.close()
        metrics = d.metrics.render().decode()
    assert exc.value.status == status
    assert f'status="{Status(status).name}"' in metrics


async def test_too_many_binds_and_foreign_addresses_are_refused(sim: Simulator) -> None:
    async with running_daemon(sim, smpp_server=with_account(max_binds=1)) as (d, _):
        first, _ = await bound_client(_port(d), "cc", "ccpass")
        second = await connect("127.0.0.1", _port(d))
        with pytest.raises(ResponseError) as exc:
            await second.bind(BindTransceiver(system_id="cc", password="ccpass"))
        await second.close()
        await first.close()
    assert exc.value.status == Status.ESME_RBINDFAIL
    server = with_account(allowed_ips=["10.0.0.0/8"])
    async with running_daemon(sim, smpp_server=server) as (d, _):
        conn = await connect("127.0.0.1", _port(d))
        with pytest.raises(ResponseError) as exc:
            await conn.bind(BindTransceiver(system_id="cc", password="ccpass"))
        await conn.close()
    assert exc.value.status == Status.ESME_RBINDFAIL


async def test_window_overflow_is_msgqful(sim: Simulator) -> None:
    async with running_daemon(sim, smpp_server=with_account(window=2)) as (d, _):
        conn, _ = await bound_client(_port(d), "cc", "ccpass")
        # 48600000090 is never answered upstream: each submit stays in flight.
        statuses = [
            (await conn.request(SubmitSm(destination_addr="48600000090"))).status for _ in range(3)
        ]
        await conn.close()
    assert statuses == [Status.ESME_ROK, Status.ESME_ROK, Status.ESME_RMSGQFUL]


async def test_rate_beyond_the_account_tps_is_throttled(sim: Simulator) -> None:
    async with running_daemon(sim, smpp_server=with_account(tps=1)) as (d, _):
        conn, _ = await bound_client(_port(d), "cc", "ccpass")
        statuses = [
            (await conn.request(SubmitSm(destination_addr="48600000001"))).status for _ in range(3)
        ]
        await conn.close()
        metrics = d.metrics.render().decode()
    assert statuses[0] == Status.ESME_ROK
    assert Status.ESME_RTHROTTLED in statuses[1:]
    assert 'hlrd_smpp_server_throttled_total{account="cc"}' in metrics


async def test_malformed_pdu_gets_generic_nack_and_the_session_survives(sim: Simulator) -> None:
    async with running_daemon(sim, smpp_server=SMPP_SERVER) as (d, _):
        bad = struct.pack(">IIII", 16, 0x00000099, 0, 7)
        truncated = struct.pack(">IIII", 20, CommandId.SUBMIT_SM, 0, 8) + b"\x00\x01\x01x"
        got = await asyncio.to_thread(raw_exchange, _port(d), bad + truncated, "cc", "ccpass", True)
    assert GenericNack(sequence=7, status=Status.ESME_RINVCMDID) in got
    assert SubmitSmResp(sequence=8, status=Status.ESME_RINVCMDLEN) in got
    assert got[-1].command_id == CommandId.ENQUIRE_LINK_RESP  # type: ignore[attr-defined]


def _unbound_submit(port: int) -> Pdu:
    """A raw socket, since our own client refuses to submit before binding."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(codec.encode(SubmitSm(sequence=5, destination_addr="48600000001")))
        framer = codec.Framer()
        got: list[Pdu | Exception] = []
        while not got:
            got += framer.feed(s.recv(65536))
    reply = got[0]
    assert isinstance(reply, Pdu)
    return reply


async def test_submit_before_bind_is_rinvbndsts(sim: Simulator) -> None:
    async with running_daemon(sim, smpp_server=SMPP_SERVER) as (d, _):
        resp = await asyncio.to_thread(_unbound_submit, _port(d))
    assert resp == SubmitSmResp(sequence=5, status=Status.ESME_RINVBNDSTS)


class _FlakyReceiver(ReceiptCollector):
    """Refuses the first receipt (as a busy platform might), accepts the retry."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    def handle_request(self, conn: SmppConnection, pdu: Pdu) -> Pdu | None:
        if isinstance(pdu, DeliverSm) and not self.refused:
            self.refused += 1
            return DeliverSmResp(sequence=pdu.sequence, status=Status.ESME_RX_T_APPN)
        return super().handle_request(conn, pdu)


async def test_unacknowledged_receipt_is_retried(sim: Simulator) -> None:
    async with running_daemon(sim, smpp_server=SMPP_SERVER) as (d, _):
        handler = _FlakyReceiver()
        conn = await connect("127.0.0.1", _port(d), handler)
        await conn.bind(BindTransceiver(system_id="cc", password="ccpass"))
        receipt, _ = await lookup(conn, handler, "48600000001")
        await conn.close()
        metrics = d.metrics.render().decode()
    assert handler.refused == 1
    assert receipt.stat == "DELIVRD"
    assert 'hlrd_smpp_server_receipts_total{account="cc",event="retried"} 1.0' in metrics
    assert 'hlrd_smpp_server_receipts_total{account="cc",event="acked"} 1.0' in metrics


async def test_receipts_wait_for_the_client_to_bind_again(sim: Simulator) -> None:
    async with running_daemon(sim, smpp_server=SMPP_SERVER) as (d, _):
        first = await connect("127.0.0.1", _port(d))
        await first.bind(BindTransceiver(system_id="cc", password="ccpass"))
        resp = await first.request(SubmitSm(destination_addr="48600000003", registered_delivery=1))
        assert isinstance(resp, SubmitSmResp)
        first.abort()  # the platform disconnects before its receipt
        await first.wait_closed()
        handler = ReceiptCollector()
        waiting = handler.expect(resp.message_id)
        second = await connect("127.0.0.1", _port(d), handler)
        await second.bind(BindTransceiver(system_id="cc", password="ccpass"))
        receipt, _ = await waiting
        q = await second.request(QuerySm(message_id=resp.message_id))
        await second.close()
    assert receipt.extra["roaming_country"] == "EG"
    assert isinstance(q, QuerySmResp)
    assert q.message_state == MessageState.DELIVERED


async def test_invalid_numbers_get_a_failure_receipt_or_rinvdstadr(sim: Simulator) -> None:
    async with running_daemon(sim, smpp_server=SMPP_SERVER) as (d, _):
        conn, handler = await bound_client(_port(d), "cc", "ccpass")
        receipt, _ = await lookup(conn, handler, "12x")
        await conn.close()
    assert (receipt.stat, receipt.err) == ("REJECTD", "901")
    assert sim.stats.submits == 0
    async with running_daemon(sim, smpp_server=with_account(reject_invalid=True)) as (d, _):
        conn, _ = await bound_client(_port(d), "cc", "ccpass")
        resp = await conn.request(SubmitSm(destination_addr="+48 22 123 45 67"))
        await conn.close()
    assert resp.status == Status.ESME_RINVDSTADR


async def test_idle_client_is_unbound_after_the_inactivity_timeout(sim: Simulator) -> None:
    server = dict(SMPP_SERVER, inactivity_timeout_s=0.1)
    async with running_daemon(sim, smpp_server=server) as (d, _):
        conn = await connect("127.0.0.1", _port(d), config=LinkConfig(enquire_link_interval=0))
        await conn.bind(BindTransceiver(system_id="cc", password="ccpass"))
        await conn.wait_closed()  # the server unbinds it; our session answers unbind_resp
    assert conn.session.state.value in ("unbound", "closed")
