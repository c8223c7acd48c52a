"""How an SMPP provider's delivery receipts say what the HLR said: a receipt dialect.

No two SMPP HLR gateways carry the result alike. hlrd's own simulator puts it in
vendor TLVs 0x1400-0x1408 and `key:value` text; RestComm's SMSC, asked for an
SRI-only lookup, answers `stat:UNDELIV err:226 ... text:hlr imsi:<IMSI>
nnn_digits:<VLR GT> nnn_an:1 nnn_np:1` with RestComm's own error numbers and no TLVs
(docs/vendors/restcomm-sri-receipts.md). A `ReceiptMapping` says, for one gateway,
where each field is (a text key or a TLV tag, with the TLV's encoding), which stat
words and error codes mean "reachable", and how the gateway's error numbers translate
to MAP errors. The presets are mappings too; `[upstream.providers.receipt_mapping]`
writes one in TOML for any other gateway.

This module imports nothing of hlrd's configuration: the configuration imports it to
check a mapping when it loads (a ValueError names the key below the mapping).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FIELDS = (
    "hlr_status",  # a gateway's word for the subscriber's state (see live_statuses)
    "imsi",
    "mccmnc",  # the subscription's network
    "serving_mccmnc",
    "msc",  # the serving MSC/VLR's global title (E.164 digits)
    "msc_nature",  # its nature of address: anything but 1 (international) drops the MSC
    "home_mccmnc",
    "ported",  # a boolean
    "serving_country",  # ISO 3166 alpha-2
)
ENCODINGS = ("cstr", "octets", "u8", "u16", "u32", "tbcd", "hex")
REACHABLE = "reachable"  # an error code's value meaning: the HLR answered, subscriber there


@dataclass(frozen=True, slots=True)
class Source:
    """Where one field is: a receipt text key, a TLV tag (the TLV wins when both are
    there), and how the TLV's octets encode the value."""

    text: str | None = None
    tlv: int | None = None
    encoding: str = "cstr"


@dataclass(frozen=True, slots=True)
class ReceiptMapping:
    name: str
    fields: Mapping[str, Source] = field(default_factory=dict)
    # stat words (upper case) meaning the subscriber is reachable
    reachable_stats: frozenset[str] = frozenset({"DELIVRD"})
    # hlr_status values meaning reachable (compared in lower case)
    live_statuses: frozenset[str] = frozenset()
    # The gateway's error numbers: None = they are MAP error codes as they are;
    # else code -> MAP error, or REACHABLE; a code not listed leaves reachability
    # unknown (never guessed).
    error_codes: Mapping[int, int | str] | None = None
    # Keys read from the receipt's `text:` part too (RestComm appends its fields
    # after the original text).
    fields_in_text: bool = False


# hlrd's own format (the simulator's, and hlrd's SMPP front end's): read by the fast
# path in receipt_dialects.HlrdDialect; listed here for the documentation.
HLRD = ReceiptMapping(
    name="hlrd",
    fields={
        "hlr_status": Source("hlr", 0x1400),
        "imsi": Source("imsi", 0x1401),
        "mccmnc": Source("mccmnc", 0x1402),
        "serving_mccmnc": Source("serving_mccmnc", 0x1403),
        "msc": Source("msc", 0x1404),
        "ported": Source("ported", 0x1406, "u8"),
        "home_mccmnc": Source("home_mccmnc", 0x1407),
    },
    live_statuses=frozenset({"live"}),
)

# RestComm SMSC gateway, `dropaftersri`: err is RestComm's ErrorCode (R5 of the
# reference), 226 MPROC_SRI_REQUEST_DROP = the SRI succeeded: the subscriber is
# registered at the VLR whose number is nnn_digits.
RESTCOMM_SRI = ReceiptMapping(
    name="restcomm_sri",
    fields={
        "imsi": Source("imsi"),
        "msc": Source("nnn_digits"),
        "msc_nature": Source("nnn_an"),
    },
    reachable_stats=frozenset({"DELIVRD"}),
    error_codes={
        226: REACHABLE,  # MPROC_SRI_REQUEST_DROP
        1: 1,  # UNKNOWN_SUBSCRIBER -> MAP unknownSubscriber
        4: 11,  # TELESERVICE_NOT_PROVISIONED
        5: 13,  # CALL_BARRED
        7: 21,  # FACILITY_NOT_SUPPORTED
        8: 27,  # ABSENT_SUBSCRIBER (SM)
        12: 34,  # SYSTEM_FAILURE
        13: 35,  # DATA_MISSING
        14: 36,  # UNEXPECTED_DATA_VALUE
        # 34 UNEXPECTED_DATA_FROM_HLR, 40 HLR_REJECT_AFTER_ROUTING_INFO (reject,
        # abort, no answer): the HLR said nothing usable; reachability unknown.
    },
    fields_in_text=True,
)

PRESETS = {m.name: m for m in (HLRD, RESTCOMM_SRI)}

_MAX_FIELDS = 32
_MAX_CODES = 1000


def parse_mapping(raw: Any, name: str = "custom") -> ReceiptMapping:
    """A mapping from its TOML table; ValueError names the key that is wrong."""
    if not isinstance(raw, dict):
        raise ValueError(": must be a table")
    known = {"fields", "reachable_stats", "live_statuses", "error_codes", "fields_in_text"}
    for key in raw:
        if key not in known:
            raise ValueError(f"{key}: unknown key; known: {', '.join(sorted(known))}")
    fields = _fields(raw.get("fields", {}))
    if not fields:
        raise ValueError('fields: at least one field (e.g. imsi = { text = "imsi" })')
    return ReceiptMapping(
        name=name,
        fields=fields,
        reachable_stats=frozenset(s.upper() for s in _strings(raw, "reachable_stats", ["DELIVRD"])),
        live_statuses=frozenset(s.lower() for s in _strings(raw, "live_statuses", [])),
        error_codes=_codes(raw["error_codes"]) if "error_codes" in raw else None,
        fields_in_text=_bool(raw, "fields_in_text", False),
    )


def _fields(raw: Any) -> dict[str, Source]:
    if not isinstance(raw, dict):
        raise ValueError("fields: must be a table of field = { text = ..., tlv = ... }")
    if len(raw) > _MAX_FIELDS:
        raise ValueError(f"fields: at most {_MAX_FIELDS}")
    out: dict[str, Source] = {}
    for name, spec in raw.items():
        where = f"fields.{name}"
        if name not in FIELDS:
            raise ValueError(f"{where}: not a field hlrd reads; fields: {', '.join(FIELDS)}")
        if not isinstance(spec, dict):
            raise ValueError(f'{where}: must be a table {{ text = "key" }} or {{ tlv = 0x1401 }}')
        for key in spec:
            if key not in ("text", "tlv", "encoding"):
                raise ValueError(f"{where}.{key}: unknown key; known: encoding, text, tlv")
        text = spec.get("text")
        if text is not None and (
            not isinstance(text, str) or not 1 <= len(text) <= 32 or ":" in text or " " in text
        ):
            raise ValueError(f"{where}.text: a receipt text key, 1-32 characters, no ':' or space")
        tlv = spec.get("tlv")
        if tlv is not None and (
            isinstance(tlv, bool) or not isinstance(tlv, int) or not 0x1400 <= tlv <= 0x3FFF
        ):
            raise ValueError(
                f"{where}.tlv: a vendor-specific tag 0x1400-0x3FFF (SMPP 3.4 section 5.3.2)"
            )
        if text is None and tlv is None:
            raise ValueError(f"{where}: give text, tlv or both")
        encoding = spec.get("encoding", "cstr")
        if encoding not in ENCODINGS:
            raise ValueError(f"{where}.encoding: one of {', '.join(ENCODINGS)}")
        out[name] = Source(text, tlv, encoding)
    return out


def _codes(raw: Any) -> dict[int, int | str]:
    if not isinstance(raw, dict) or len(raw) > _MAX_CODES:
        raise ValueError(f'error_codes: a table of "code" = MAP error or "{REACHABLE}"')
    out: dict[int, int | str] = {}
    for code, meaning in raw.items():
        where = f"error_codes.{code}"
        if not (isinstance(code, str) and code.isascii() and code.isdigit() and len(code) <= 5):
            raise ValueError(f"{where}: the gateway's error number, in decimal")
        if meaning == REACHABLE:
            out[int(code)] = REACHABLE
        elif isinstance(meaning, int) and not isinstance(meaning, bool) and 0 <= meaning <= 255:
            out[int(code)] = meaning
        else:
            raise ValueError(f'{where}: a MAP error code 0-255, or "{REACHABLE}"')
    return out


def _strings(raw: Mapping[str, Any], key: str, default: list[str]) -> list[str]:
    value = raw.get(key, default)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{key}: must be a list of words")
    return value


def _bool(raw: Mapping[str, Any], key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{key}: must be true or false")
    return value
