"""Receipt text and TLVs as HLR providers send them, and message id matching."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlrd.smpp import codec
from hlrd.smpp.constants import EsmClass, MessageState, Tag
from hlrd.smpp.hlr_fields import HlrFields, hlr_fields_from
from hlrd.smpp.pdu import DeliverSm, Tlv, make_tlv
from hlrd.smpp.receipts import (
    Receipt,
    alternate_message_ids,
    canonical_message_id,
    parse_receipt_text,
    parse_receipt_text_tolerant,
    receipt_from_pdu,
    receipt_from_text,
    receipt_text,
    receipt_tlvs,
    same_message_id,
)

CANONICAL = (
    "id:0A1B2C sub:001 dlvrd:001 submit date:2611231950 done date:2611231951 "
    "stat:DELIVRD err:000 text:"
)


def test_canonical_receipt_parses_every_field() -> None:
    r = receipt_from_text(CANONICAL)
    assert r is not None
    assert r.message_id == "0A1B2C"
    assert (r.sub, r.dlvrd, r.stat, r.err) == ("001", "001", "DELIVRD", "000")
    assert r.submit_date == datetime(2026, 11, 23, 19, 50)
    assert r.done_date == datetime(2026, 11, 23, 19, 51)
    assert r.state is MessageState.DELIVERED
    assert r.text == ""


@pytest.mark.parametrize(
    "text",
    [
        # lower case keys and values, seconds in dates, underscores in date keys
        "ID:77 SUB:1 DLVRD:1 SUBMIT_DATE:261123195012 DONE_DATE:261123195013 STAT:delivrd ERR:0",
        # fields in another order, no sub/dlvrd/dates/text
        "stat:DELIVRD id:77 err:000",
        # vendor HLR fields between err and text, and a text with colons in it
        "id:77 stat:DELIVRD err:000 imsi:260010000000001 mccmnc:26001 text:a:b c:d",
        # double blanks, a value with a blank in it
        "id:77  sub:001 stat:DELIVRD err:000 msc:48 601 text:",
    ],
)
def test_vendor_variations_are_tolerated(text: str) -> None:
    r = receipt_from_text(text)
    assert r is not None
    assert r.message_id == "77"
    assert r.state is MessageState.DELIVERED


def test_vendor_fields_are_kept_and_text_takes_the_rest() -> None:
    f = parse_receipt_text("id:1 stat:UNDELIV err:027 imsi:26001123 msc:4860 text:x y:z")
    assert f["imsi"] == "26001123"
    assert f["msc"] == "4860"
    assert f["text"] == "x y:z"
    r = receipt_from_text("id:1 stat:UNDELIV err:027 imsi:26001123 text:")
    assert r is not None
    assert r.extra == {"imsi": "26001123"}
    assert r.error_code == 27


def test_text_without_id_is_not_a_receipt() -> None:
    assert receipt_from_text("hello world") is None


def test_built_receipt_parses_back_to_the_same_fields() -> None:
    r = Receipt(
        message_id="FF01",
        stat="UNDELIV",
        err="027",
        submit_time="2601020304",
        done_time="2601020305",
        extra={"imsi": "260010000000005", "roaming": "no"},
    )
    back = receipt_from_text(receipt_text(r))
    assert back is not None
    assert back.message_id == "FF01"
    assert back.stat == "UNDELIV"
    assert back.err == "027"
    assert back.extra == {"imsi": "260010000000005", "roaming": "no"}
    assert back.submit_date == datetime(2026, 1, 2, 3, 4)
    assert back.done_date == datetime(2026, 1, 2, 3, 5)


def test_receipt_tlvs_win_over_text_and_carry_the_map_error() -> None:
    r = Receipt(message_id="1F", stat="UNDELIV", err="027")
    pdu = DeliverSm(
        esm_class=EsmClass.DELIVERY_RECEIPT,
        short_message=b"id:31 stat:ENROUTE err:000 text:",
        tlvs=receipt_tlvs(r),
    )
    got = receipt_from_pdu(codec.decode(codec.encode(pdu)))  # type: ignore[arg-type]
    assert got is not None
    assert got.message_id == "1F"
    assert got.state is MessageState.UNDELIVERABLE
    assert got.network_error == (3, 27)
    assert got.error_code == 27


def test_receipt_only_in_tlvs_and_in_message_payload() -> None:
    tlv_only = DeliverSm(
        tlvs=[make_tlv(Tag.RECEIPTED_MESSAGE_ID, "9"), make_tlv(Tag.MESSAGE_STATE, 2)]
    )
    r = receipt_from_pdu(tlv_only)
    assert r is not None
    assert (r.message_id, r.state) == ("9", MessageState.DELIVERED)
    payload = DeliverSm(
        esm_class=EsmClass.DELIVERY_RECEIPT,
        tlvs=[Tlv(Tag.MESSAGE_PAYLOAD, b"id:12 stat:DELIVRD err:000 text:")],
    )
    r2 = receipt_from_pdu(payload)
    assert r2 is not None
    assert r2.message_id == "12"


def test_an_ordinary_deliver_sm_is_not_a_receipt() -> None:
    assert receipt_from_pdu(DeliverSm(short_message=b"id:1 hello")) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1A2B", "6699"),  # hex in submit_sm_resp, decimal in the receipt
        ("0001a2b", "1A2B"),  # leading zeros and case
        ("00000123", "123"),
        ("msg-ABC", "MSG-abc"),
    ],
)
def test_message_ids_match_after_normalisation(a: str, b: str) -> None:
    assert same_message_id(a, b)


def test_different_message_ids_do_not_match() -> None:
    assert not same_message_id("1A2B", "1A2C")
    assert not same_message_id("msg-1", "msg-2")
    assert canonical_message_id("000") == "0"


def test_alternates_cover_hex_and_decimal_but_exact_comes_first() -> None:
    assert canonical_message_id(" 000A1b ") == "a1b"
    assert alternate_message_ids("0000000A") == ("10",)
    assert set(alternate_message_ids("16")) == {"10", "22"}


def test_hlr_fields_round_trip_through_text_and_tlvs() -> None:
    fields = HlrFields(
        hlr_status="live",
        imsi="260010000000003",
        mccmnc="26001",
        serving_mccmnc="60201",
        msc="201000000100",
        roaming=True,
        ported=False,
        roaming_country="EG",
    )
    via_tlvs = hlr_fields_from(DeliverSm(tlvs=fields.tlvs()), {})
    via_text = hlr_fields_from(DeliverSm(), fields.text_fields())
    assert via_tlvs == fields
    assert via_text == fields
    assert fields.text_fields()["roaming"] == "yes"


def test_a_value_with_blanks_stays_whole() -> None:
    f = parse_receipt_text("id:1 msc:48 601 000 stat:DELIVRD text:")
    assert f["msc"] == "48 601 000"
    assert f["stat"] == "DELIVRD"


_word = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1)


@given(
    extra=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
            lambda k: k not in ("id", "sub", "dlvrd", "stat", "err", "text", "submit", "done")
        ),
        _word,
        max_size=6,
    ),
    text=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
)
@settings(max_examples=200, deadline=None)
def test_any_built_receipt_parses_back(extra: dict[str, str], text: str) -> None:
    r = Receipt(message_id="5A", stat="DELIVRD", err="000", extra=extra, text=text)
    back = receipt_from_text(receipt_text(r))
    assert back is not None
    assert back.extra == extra
    assert back.text == text
    assert (back.message_id, back.stat, back.err) == ("5A", "DELIVRD", "000")


_piece = st.sampled_from(
    [
        "id:",
        "ID:",
        "sub:",
        "stat:",
        "err:",
        "text:",
        "submit",
        "date:",
        "done",
        "done_date:",
        "msc:",
        "x-y:",
        "1a:",
        "_:",
        "imsi:",
        "a",
        "B",
        "7",
        ":",
        "a:b",
        " ",
        "  ",
        "\t",
    ]
)


@given(st.lists(_piece, max_size=14))
@settings(max_examples=400, deadline=None)
def test_fast_path_reads_any_text_as_the_tolerant_parser_does(pieces: list[str]) -> None:
    """Most receipts take a fast path; whatever it accepts, it must read the same."""
    text = " ".join(pieces)
    assert parse_receipt_text(text) == parse_receipt_text_tolerant(text)
