"""SMPP receipt dialects: the same HLR answer, carried the way each gateway carries it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from hlrd.config import ConfigError, parse_config
from hlrd.daemon import Daemon
from hlrd.domain.map_errors import MapError
from hlrd.domain.result import Outcome, Reachability, RoamingStatus
from hlrd.smpp.constants import EsmClass
from hlrd.smpp.pdu import DeliverSm, Tlv
from hlrd.smpp.receipts import receipt_from_pdu
from hlrd.upstream.receipt_dialects import HlrdDialect, MappedDialect
from hlrd.upstream.receipt_mapping import RESTCOMM_SRI, ReceiptMapping
from simulator.controller import Simulator
from simulator.scenario import Scenario

from .daemon_harness import config_for
from .data_dirs import DATA_ENV


def _pdu(text: str, tlvs: list[Tlv] | None = None) -> DeliverSm:
    return DeliverSm(
        source_addr="79161234567",
        destination_addr="HLRLOOKUP",
        esm_class=EsmClass.DELIVERY_RECEIPT,
        short_message=text.encode("latin-1"),
        tlvs=tlvs or [],
    )


def _read(mapping: ReceiptMapping, text: str, tlvs: list[Tlv] | None = None) -> Any:
    pdu = _pdu(text, tlvs)
    receipt = receipt_from_pdu(pdu)
    assert receipt is not None
    return MappedDialect(mapping).answer(receipt, pdu)


RESTCOMM_HEAD = "id:0000012345 sub:001 dlvrd:000 submit date:2405141230 done date:2405141230"


def test_restcomms_sri_success_is_a_reachable_subscriber_at_the_vlr_it_names() -> None:
    a = _read(
        RESTCOMM_SRI,
        f"{RESTCOMM_HEAD} stat:UNDELIV err:226 text:hlr imsi:250011234567890 "
        "nnn_digits:79160000001 nnn_an:1 nnn_np:1",
    )
    assert (a.delivered, a.map_error) == (True, None)
    assert (a.imsi, a.msc, a.message_id) == ("250011234567890", "79160000001", "0000012345")


@pytest.mark.parametrize(
    ("err", "delivered", "map_error"),
    [
        ("001", False, MapError.UNKNOWN_SUBSCRIBER),
        ("008", False, MapError.ABSENT_SUBSCRIBER),
        ("005", False, MapError.CALL_BARRED),
        ("004", False, MapError.TELESERVICE_NOT_PROVISIONED),
        ("012", False, MapError.SYSTEM_FAILURE),
        ("040", None, None),  # HLR reject or no answer: nothing known, never guessed
        ("255", None, None),
    ],
)
def test_restcomms_error_numbers_become_map_errors_or_nothing(
    err: str, delivered: bool | None, map_error: int | None
) -> None:
    a = _read(RESTCOMM_SRI, f"{RESTCOMM_HEAD} stat:UNDELIV err:{err} text:hlr")
    assert (a.delivered, a.map_error, a.imsi, a.msc) == (delivered, map_error, None, None)


def test_a_vlr_number_that_is_not_international_places_no_one() -> None:
    a = _read(
        RESTCOMM_SRI,
        f"{RESTCOMM_HEAD} stat:UNDELIV err:226 text:hlr imsi:250011234567890 "
        "nnn_digits:9160000001 nnn_an:2 nnn_np:1",
    )
    assert (a.delivered, a.msc, a.imsi) == (True, None, "250011234567890")


def test_the_restcomm_preset_reads_no_hlrd_tlv_and_hlrds_reads_no_restcomm_err() -> None:
    """Dialects are not mixed: a gateway's codes mean what its dialect says only."""
    text = f"{RESTCOMM_HEAD} stat:UNDELIV err:226 text:hlr imsi:250011234567890"
    a = _read(RESTCOMM_SRI, text, [Tlv(0x1404, b"4917000000001\0")])
    assert a.msc is None
    pdu = _pdu(text)
    receipt = receipt_from_pdu(pdu)
    assert receipt is not None
    hlrd = HlrdDialect().answer(receipt, pdu)
    assert (hlrd.delivered, hlrd.map_error) == (False, 226)


# -- a gateway of one's own, mapped in TOML -------------------------------------------

CUSTOM: dict[str, Any] = {
    "reachable_stats": ["DELIVRD", "ACCEPTD"],
    "live_statuses": ["ok"],
    "error_codes": {"0": "reachable", "27": 27, "1": 1},
    "fields": {
        "hlr_status": {"text": "state"},
        "imsi": {"tlv": 0x1501, "encoding": "tbcd"},
        "msc": {"text": "vlr", "tlv": 0x1502},
        "ported": {"tlv": 0x1503, "encoding": "u8"},
        "serving_mccmnc": {"tlv": 0x1504, "encoding": "u32"},
        "serving_country": {"text": "cc"},
    },
}


def _provider(**fields: Any) -> dict[str, Any]:
    return {"upstream": {"providers": [{"name": "gw", **fields}]}}


def test_a_custom_mapping_reads_text_keys_and_tlvs_in_their_encodings() -> None:
    cfg = parse_config(_provider(receipt_dialect="custom", receipt_mapping=CUSTOM))
    mapping = cfg.providers[0].receipt_mapping  # type: ignore[union-attr]
    assert mapping is not None
    tlvs = [
        Tlv(0x1501, bytes.fromhex("62001021436587f9")),  # TBCD of 260001123456789
        Tlv(0x1502, b"4917000000001\0"),
        Tlv(0x1503, b"\x01"),
        Tlv(0x1504, (26201).to_bytes(4, "big")),
    ]
    a = _read(
        mapping,
        "id:7 sub:001 dlvrd:000 submit date:2405141230 done date:2405141230 "
        "stat:UNDELIV err:000 state:OK vlr:4860000000 cc:de text:x",
        tlvs,
    )
    assert (a.delivered, a.map_error) == (True, None)
    assert a.imsi == "260001123456789"
    assert a.msc == "4917000000001"  # the TLV wins over the text key
    assert (a.ported, a.serving_mccmnc, a.serving_country) == (True, "26201", "DE")
    absent = _read(mapping, "id:8 stat:UNDELIV err:027 text:x")
    assert (absent.delivered, absent.map_error) == (False, 27)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"receipt_dialect": "custom"}, "receipt_mapping: receipt_dialect custom needs a mapping"),
        (
            {"receipt_mapping": CUSTOM},
            'receipt_mapping: only with receipt_dialect = "custom"',
        ),
        ({"receipt_dialect": "kannel"}, "receipt_dialect: must be one of"),
        (
            {
                "receipt_dialect": "custom",
                "receipt_mapping": {"fields": {"roaming": {"text": "r"}}},
            },
            "receipt_mapping.fields.roaming: not a field hlrd reads",
        ),
        (
            {"receipt_dialect": "custom", "receipt_mapping": {"fields": {"imsi": {"tlv": 0x0427}}}},
            "receipt_mapping.fields.imsi.tlv: a vendor-specific tag 0x1400-0x3FFF",
        ),
        (
            {
                "receipt_dialect": "custom",
                "receipt_mapping": {"fields": {"imsi": {"tlv": 0x1401, "encoding": "bcd"}}},
            },
            "receipt_mapping.fields.imsi.encoding: one of cstr",
        ),
        (
            {"receipt_dialect": "custom", "receipt_mapping": {"fields": {"imsi": {}}}},
            "receipt_mapping.fields.imsi: give text, tlv or both",
        ),
        (
            {
                "receipt_dialect": "custom",
                "receipt_mapping": {**CUSTOM, "error_codes": {"x1": 27}},
            },
            "receipt_mapping.error_codes.x1: the gateway's error number",
        ),
        (
            {
                "receipt_dialect": "custom",
                "receipt_mapping": {**CUSTOM, "error_codes": {"8": "absent"}},
            },
            'receipt_mapping.error_codes.8: a MAP error code 0-255, or "reachable"',
        ),
        (
            {"receipt_dialect": "custom", "receipt_mapping": {**CUSTOM, "colour": 1}},
            "receipt_mapping.colour: unknown key",
        ),
    ],
)
def test_a_receipt_mapping_that_cannot_work_is_named_precisely(
    fields: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_provider(**fields))
    assert fragment in str(err.value)


# -- end to end: the simulator answers as RestComm, the daemon reads it ---------------


async def test_a_daemon_reads_a_restcomm_gateway_through_the_preset(demo: Scenario) -> None:
    restcomm = replace(demo, smpp=replace(demo.smpp, receipt_dialect="restcomm_sri"))
    async with Simulator(restcomm) as sim:
        data = config_for(
            sim, cache={"enabled": False}, provider={"receipt_dialect": "restcomm_sri"}
        )
        daemon = Daemon(parse_config(data, env=DATA_ENV()))
        await daemon.start()
        try:
            s = daemon.service
            home, germany, egypt, absent, unknown, failure = [
                await s.lookup(s.normalize(n))
                for n in (
                    "48600000001",
                    "48600000002",
                    "48600000003",
                    "48600000005",
                    "48600000006",
                    "48600000009",
                )
            ]
        finally:
            await daemon.stop()
    assert (home.outcome, home.reachability, home.roaming) == (
        Outcome.OK,
        Reachability.CONNECTED,
        RoamingStatus.NOT_ROAMING,
    )
    assert home.imsi == "26001**********"  # read from imsi:, masked (return_imsi is off)
    assert (germany.roaming, germany.visited_country) == (RoamingStatus.ROAMING, "DE")
    assert (egypt.roaming, egypt.visited_country) == (RoamingStatus.ROAMING, "EG")
    assert absent.reachability is Reachability.ABSENT
    assert unknown.reachability is Reachability.INVALID
    assert failure.outcome is Outcome.PARTIAL


@pytest.mark.parametrize(
    "number", [f"4860000000{i}" for i in range(1, 10)] + ["4915112345678", "33612345678"]
)
async def test_the_hlrd_preset_written_as_a_mapping_reads_what_the_fast_path_reads(
    demo: Scenario, number: str
) -> None:
    """HLRD is the documentation of hlrd's own format: held to the code that reads it."""
    from hlrd.smpp.pdu import SubmitSm
    from hlrd.upstream.receipt_mapping import HLRD
    from simulator.smsc import Smsc

    submit = SubmitSm(source_addr="hlrd", destination_addr=number, registered_delivery=1)
    smsc = Smsc(demo)
    try:
        pdu = smsc.build_receipt(submit, "0000002A", demo.answer(number))
    finally:
        await smsc.close()
    receipt = receipt_from_pdu(pdu)
    assert receipt is not None
    assert MappedDialect(HLRD).answer(receipt, pdu) == HlrdDialect().answer(receipt, pdu)
