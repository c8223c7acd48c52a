"""HLR result fields carried in a delivery receipt: text keys and vendor TLVs.

SMPP HLR providers answer a lookup with a receipt whose text carries extra
`key:value` fields and/or vendor-specific TLVs (0x1400-0x3FFF). This module is the
one place that maps those to named fields, for both directions: the simulator
writes them, the daemon's upstream reads them (and its SMPP front end writes them).

Vendor TLV map (all C-octet strings unless noted):

| tag    | field                | example           |
|--------|----------------------|-------------------|
| 0x1400 | hlr_status           | `live`            |
| 0x1401 | imsi                 | `260011234567890` |
| 0x1402 | mccmnc (subscription)| `26001`           |
| 0x1403 | serving_mccmnc       | `26201`           |
| 0x1404 | msc (global title)   | `4917000000001`   |
| 0x1405 | roaming (u8 0/1)     | `1`               |
| 0x1406 | ported (u8 0/1)      | `0`               |
| 0x1407 | home_mccmnc          | `26001`           |
| 0x1408 | roaming_country (ISO)| `DE`              |
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .pdu import TLV_CSTR, TLV_U8, Pdu, Tlv, make_tlv

TAG_HLR_STATUS = 0x1400
TAG_IMSI = 0x1401
TAG_MCCMNC = 0x1402
TAG_SERVING_MCCMNC = 0x1403
TAG_MSC = 0x1404
TAG_ROAMING = 0x1405
TAG_PORTED = 0x1406
TAG_HOME_MCCMNC = 0x1407
TAG_ROAMING_COUNTRY = 0x1408

# field name -> (tag, TLV kind, receipt text key)
_FIELDS: dict[str, tuple[int, str, str]] = {
    "hlr_status": (TAG_HLR_STATUS, TLV_CSTR, "hlr"),
    "imsi": (TAG_IMSI, TLV_CSTR, "imsi"),
    "mccmnc": (TAG_MCCMNC, TLV_CSTR, "mccmnc"),
    "serving_mccmnc": (TAG_SERVING_MCCMNC, TLV_CSTR, "serving_mccmnc"),
    "msc": (TAG_MSC, TLV_CSTR, "msc"),
    "roaming": (TAG_ROAMING, TLV_U8, "roaming"),
    "ported": (TAG_PORTED, TLV_U8, "ported"),
    "home_mccmnc": (TAG_HOME_MCCMNC, TLV_CSTR, "home_mccmnc"),
    "roaming_country": (TAG_ROAMING_COUNTRY, TLV_CSTR, "roaming_country"),
}

_YES = {"1", "yes", "y", "true", "t"}
_NO = {"0", "no", "n", "false", "f"}


# Not frozen: one is built per receipt, and a frozen dataclass's __init__ costs twice
# as much (a setattr call per field). Treated as a value: nothing changes it later.
@dataclass(slots=True)
class HlrFields:
    hlr_status: str | None = None
    imsi: str | None = None
    mccmnc: str | None = None
    serving_mccmnc: str | None = None
    msc: str | None = None
    roaming: bool | None = None
    ported: bool | None = None
    home_mccmnc: str | None = None
    roaming_country: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def text_fields(self) -> dict[str, str]:
        """Receipt text `key:value` pairs (booleans as yes/no), in a stable order."""
        out: dict[str, str] = {}
        for name, (_, _, key) in _FIELDS.items():
            value = getattr(self, name)
            if value is None:
                continue
            out[key] = ("yes" if value else "no") if isinstance(value, bool) else str(value)
        return out

    def tlvs(self) -> list[Tlv]:
        out = []
        for name, (tag, kind, _) in _FIELDS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if kind == TLV_U8:
                out.append(Tlv(tag, b"\x01" if value else b"\x00"))
            elif isinstance(value, str) and "\0" not in value:
                out.append(Tlv(tag, value.encode("latin-1") + b"\0"))
            else:
                out.append(make_tlv(tag, value, kind))  # raises the precise EncodeError
        return out


def _as_bool(value: str | int | bytes | None) -> bool | None:
    if isinstance(value, int):
        return bool(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in _YES:
            return True
        if v in _NO:
            return False
    return None


def hlr_fields_from(pdu: Pdu, text_fields: dict[str, str]) -> HlrFields:
    """Read HLR fields from a receipt; vendor TLVs win over text, which fills gaps."""
    values: dict[str, str | bool | None] = {}
    for tag, raw in pdu.tlvs:  # one pass; the first of a repeated tag counts
        spec = _BY_TAG.get(tag)
        if spec is None or spec[0] in values:
            continue
        name, kind = spec
        if kind == TLV_U8:
            values[name] = bool(int.from_bytes(raw, "big")) if raw else None
        else:
            text = (raw[:-1] if raw.endswith(b"\0") else raw).decode("latin-1")
            if text:
                values[name] = text
    for name, (_, kind, key) in _FIELDS.items():
        if values.get(name) is None:
            value = text_fields.get(key) or None
            values[name] = _as_bool(value) if kind == TLV_U8 else value
    extra = {k: v for k, v in text_fields.items() if k not in _TEXT_KEYS}
    return HlrFields(**values, extra=extra)  # type: ignore[arg-type]


_BY_TAG: dict[int, tuple[str, str]] = {
    tag: (name, kind) for name, (tag, kind, _) in _FIELDS.items()
}
_TEXT_KEYS = frozenset(key for _, _, key in _FIELDS.values())
