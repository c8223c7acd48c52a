"""Codec: round trips, strict framing, and the errors a peer is answered with."""

from __future__ import annotations

import struct

import pytest

from hlrd.smpp import codec
from hlrd.smpp.constants import CommandId, Status, Tag
from hlrd.smpp.errors import EncodeError, FramingError, PduError
from hlrd.smpp.pdu import (
    PDU_CLASSES,
    BindTransceiver,
    BindTransceiverResp,
    DataSm,
    DeliverSm,
    EnquireLink,
    GenericNack,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    make_tlv,
)


def _submit(**kw: object) -> SubmitSm:
    return SubmitSm(
        sequence=42,
        service_type="HLR",
        source_addr="hlrd",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="48600000001",
        registered_delivery=1,
        short_message=b"lookup",
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("cls", list(PDU_CLASSES.values()), ids=lambda c: c.__name__)
def test_every_command_round_trips_with_default_fields(cls: type) -> None:
    pdu = cls(sequence=7)
    assert codec.decode(codec.encode(pdu)) == pdu


def test_submit_sm_round_trips_every_field_and_tlv_order() -> None:
    pdu = _submit(
        tlvs=[
            make_tlv(Tag.USER_MESSAGE_REFERENCE, 513),
            Tlv(0x1401, b"\x00\xffvendor"),
            make_tlv(Tag.RECEIPTED_MESSAGE_ID, "ABC"),
        ]
    )
    data = codec.encode(pdu)
    assert struct.unpack(">I", data[:4])[0] == len(data)
    back = codec.decode(data)
    assert back == pdu
    assert [t.tag for t in back.tlvs] == [
        Tag.USER_MESSAGE_REFERENCE,
        0x1401,
        Tag.RECEIPTED_MESSAGE_ID,
    ]
    assert back.get(Tag.USER_MESSAGE_REFERENCE) == 513
    assert back.get(Tag.RECEIPTED_MESSAGE_ID) == "ABC"


def test_unknown_vendor_tlvs_survive_byte_for_byte() -> None:
    raw = codec.encode(
        _submit(tlvs=[Tlv(0x1400, b"\x01\x02"), Tlv(0x3FFF, b""), Tlv(0x2150, b"x")])
    )
    assert codec.encode(codec.decode(raw)) == raw


def test_wire_layout_of_a_known_pdu() -> None:
    pdu = BindTransceiver(sequence=1, system_id="ab", password="pw", interface_version=0x34)
    assert codec.encode(pdu) == (
        struct.pack(">IIII", 16 + 11, CommandId.BIND_TRANSCEIVER, 0, 1)
        + b"ab\0pw\0\0\x34\x00\x00\0"
    )


def test_error_response_without_body_is_accepted() -> None:
    raw = struct.pack(">IIII", 16, CommandId.SUBMIT_SM_RESP, Status.ESME_RTHROTTLED, 9)
    pdu = codec.decode(raw)
    assert isinstance(pdu, SubmitSmResp)
    assert pdu.status == Status.ESME_RTHROTTLED
    assert pdu.sequence == 9


@pytest.mark.parametrize(
    ("pdu", "field"),
    [
        (BindTransceiver(system_id="x" * 16), "system_id"),
        (BindTransceiver(password="123456789"), "password"),
        (SubmitSm(destination_addr="1" * 21), "destination_addr"),
        (SubmitSm(short_message=b"x" * 255), "short_message"),
        (SubmitSm(source_addr="a\0b"), "source_addr"),
        (SubmitSm(esm_class=256), "esm_class"),
        (QuerySmResp(message_id="m" * 65), "message_id"),
    ],
)
def test_encode_refuses_values_beyond_smpp_limits(pdu: object, field: str) -> None:
    with pytest.raises(EncodeError) as exc:
        codec.encode(pdu)  # type: ignore[arg-type]
    assert exc.value.field == field


def _header(length: int, cid: int, seq: int = 5, status: int = 0) -> bytes:
    return struct.pack(">IIII", length, cid, status, seq)


def test_command_length_below_header_size_is_fatal_rinvcmdlen() -> None:
    f = codec.Framer()
    out = f.feed(_header(12, CommandId.ENQUIRE_LINK, seq=77))
    assert len(out) == 1
    err = out[0]
    assert isinstance(err, FramingError)
    assert (err.status, err.sequence, err.fatal) == (Status.ESME_RINVCMDLEN, 77, True)
    assert f.broken


def test_command_length_above_the_configured_maximum_is_fatal() -> None:
    f = codec.Framer(max_length=1024)
    err = f.feed(_header(1025, CommandId.SUBMIT_SM))[0]
    assert isinstance(err, FramingError)
    assert err.status == Status.ESME_RINVCMDLEN


def test_unknown_command_id_is_answered_rinvcmdid_and_stream_continues() -> None:
    f = codec.Framer()
    data = _header(20, 0x00000777, seq=3) + b"abcd" + codec.encode(EnquireLink(sequence=4))
    first, second = f.feed(data)
    assert isinstance(first, PduError)
    assert (first.status, first.sequence, first.nack, first.fatal) == (
        Status.ESME_RINVCMDID,
        3,
        True,
        False,
    )
    assert second == EnquireLink(sequence=4)


def test_truncated_body_names_the_missing_field() -> None:
    good = codec.encode(_submit())
    body = good[16:30]  # stops inside destination_addr
    err = codec.Framer().feed(_header(16 + len(body), CommandId.SUBMIT_SM) + body)[0]
    assert isinstance(err, PduError)
    assert err.status == Status.ESME_RINVCMDLEN
    assert err.field == "destination_addr"
    assert not err.nack  # answered with submit_sm_resp, not generic_nack


def test_c_string_without_nul_within_its_maximum_gets_the_fields_status() -> None:
    body = b"\0" + b"\x01\x01" + b"9" * 30 + b"\0" + b"\0" * 30
    err = codec.Framer().feed(_header(16 + len(body), CommandId.SUBMIT_SM, seq=8) + body)[0]
    assert isinstance(err, PduError)
    assert (err.status, err.field, err.sequence) == (Status.ESME_RINVSRCADR, "source_addr", 8)


def test_sm_length_beyond_the_body_is_rinvcmdlen() -> None:
    good = bytearray(codec.encode(_submit()))
    good[-len(b"lookup") - 1] = 200  # sm_length says 200, body has 6
    err = codec.Framer().feed(bytes(good))[0]
    assert isinstance(err, PduError)
    assert err.status == Status.ESME_RINVCMDLEN


def test_broken_tlv_stream_is_rinvoptparstream() -> None:
    good = codec.encode(_submit())
    bad = good + b"\x14\x00\x00\x09ab"  # TLV claims 9 octets, has 2
    bad = struct.pack(">I", len(bad)) + bad[4:]
    err = codec.Framer().feed(bad)[0]
    assert isinstance(err, PduError)
    assert err.status == Status.ESME_RINVOPTPARSTREAM


def test_known_tlv_with_wrong_length_is_rinvparlen() -> None:
    good = codec.encode(_submit())
    bad = good + struct.pack(">HH", Tag.MESSAGE_STATE, 2) + b"\0\2"
    bad = struct.pack(">I", len(bad)) + bad[4:]
    err = codec.Framer().feed(bad)[0]
    assert isinstance(err, PduError)
    assert err.status == Status.ESME_RINVPARLEN
    assert err.field == "tlv_0x0427"


def test_framer_handles_pdus_split_across_reads_and_packed_together() -> None:
    pdus = [
        _submit(),
        DeliverSm(sequence=2, short_message=b"id:1 stat:DELIVRD"),
        QuerySm(sequence=3, message_id="FF"),
        DataSm(sequence=4, destination_addr="4860"),
        BindTransceiverResp(sequence=5, system_id="sim"),
        GenericNack(sequence=6, status=Status.ESME_RINVCMDID),
    ]
    stream = b"".join(codec.encode(p) for p in pdus)
    f = codec.Framer()
    got: list[object] = []
    for i in range(0, len(stream), 7):  # 7-octet reads split every header and body
        got += f.feed(stream[i : i + 7])
    assert got == pdus
    assert f.buffered == 0
    assert codec.Framer().feed(stream) == pdus


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (Tag.NETWORK_ERROR_CODE, b"\x03\x00"),  # exactly 3 octets
        (Tag.ALERT_ON_MESSAGE_DELIVERY, b"\x01"),  # no value at all
        (Tag.CALLBACK_NUM, b"\x00\x01\x02"),  # at least 4
    ],
)
def test_octet_tlvs_outside_their_spec_length_are_rinvparlen(tag: int, value: bytes) -> None:
    good = codec.encode(DeliverSm(sequence=3))
    bad = good + struct.pack(">HH", tag, len(value)) + value
    bad = struct.pack(">I", len(bad)) + bad[4:]
    err = codec.Framer().feed(bad)[0]
    assert isinstance(err, PduError)
    assert err.status == Status.ESME_RINVPARLEN
