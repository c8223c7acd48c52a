"""A receipt, read in its gateway's dialect, becomes the HlrAnswer every provider gives.

`HlrdDialect` reads hlrd's own format on the path every simulator lookup takes
(hlr_fields, one pass over the TLVs); `MappedDialect` reads any `ReceiptMapping`
(receipt_mapping.py): the RestComm SRI preset or a gateway's mapping from TOML.
"""

from __future__ import annotations

from typing import Protocol

from ..domain.result import HlrAnswer
from ..smpp.constants import MessageState
from ..smpp.hlr_fields import hlr_fields_from
from ..smpp.pdu import DeliverSm
from ..smpp.receipts import Receipt
from .receipt_mapping import PRESETS, REACHABLE, ReceiptMapping, Source

_DIGIT_FIELDS = frozenset({"imsi", "mccmnc", "serving_mccmnc", "msc", "home_mccmnc"})
_YES = frozenset({"1", "yes", "y", "true", "t"})
_NO = frozenset({"0", "no", "n", "false", "f"})


class ReceiptDialect(Protocol):
    def answer(self, receipt: Receipt, pdu: DeliverSm) -> HlrAnswer: ...


class HlrdDialect:
    """hlrd's format: vendor TLVs 0x1400-0x1408 and text keys; `err` is a MAP error."""

    def answer(self, receipt: Receipt, pdu: DeliverSm) -> HlrAnswer:
        f = hlr_fields_from(pdu, receipt.extra)
        return HlrAnswer(
            delivered=receipt.state == MessageState.DELIVERED or f.hlr_status == "live",
            map_error=receipt.error_code,
            imsi=f.imsi,
            mccmnc=f.mccmnc,
            serving_mccmnc=f.serving_mccmnc,
            msc=f.msc,
            home_mccmnc=f.home_mccmnc,
            ported=f.ported,
            message_id=receipt.message_id,
        )


class MappedDialect:
    def __init__(self, mapping: ReceiptMapping) -> None:
        self.mapping = mapping
        self._by_tag: dict[int, tuple[str, Source]] = {
            s.tlv: (name, s) for name, s in mapping.fields.items() if s.tlv is not None
        }
        self._by_key: dict[str, str] = {
            s.text: name for name, s in mapping.fields.items() if s.text is not None
        }

    def answer(self, receipt: Receipt, pdu: DeliverSm) -> HlrAnswer:
        m = self.mapping
        raw: dict[str, str] = {}
        for key, value in receipt.extra.items():
            name = self._by_key.get(key)
            if name is not None and value:
                raw.setdefault(name, value)
        if m.fields_in_text:
            for token in receipt.text.split(" "):
                key, sep, value = token.partition(":")
                name = self._by_key.get(key) if sep else None
                if name is not None and value:
                    raw.setdefault(name, value)
        if self._by_tag:
            seen: set[int] = set()
            for tag, octets in pdu.tlvs:  # the first of a repeated tag counts; TLVs win
                hit = self._by_tag.get(tag)
                if hit is None or tag in seen:
                    continue
                seen.add(tag)
                decoded = _decode(octets, hit[1].encoding)
                if decoded:
                    raw[hit[0]] = decoded
        values = {name: _clean(name, v) for name, v in raw.items()}
        status = values.get("hlr_status")
        code = receipt.error_code
        delivered: bool | None
        map_error: int | None
        reachable = receipt.stat.upper() in m.reachable_stats or (
            status is not None and status.lower() in m.live_statuses
        )
        if m.error_codes is None:
            delivered, map_error = reachable, code
        else:
            meaning = m.error_codes.get(code) if code is not None else None
            if reachable or meaning == REACHABLE:
                delivered, map_error = True, None
            elif isinstance(meaning, int):
                delivered, map_error = False, meaning
            else:
                delivered, map_error = None, None  # a code the mapping does not know
        msc = values.get("msc")
        if msc is not None and values.get("msc_nature", "1") != "1":
            msc = None  # not an international number: no country can be read from it
        ported = values.get("ported")
        return HlrAnswer(
            delivered=delivered,
            map_error=map_error,
            imsi=values.get("imsi"),
            mccmnc=values.get("mccmnc"),
            serving_mccmnc=values.get("serving_mccmnc"),
            msc=msc,
            home_mccmnc=values.get("home_mccmnc"),
            ported=True if ported in _YES else False if ported in _NO else None,
            message_id=receipt.message_id,
            serving_country=values.get("serving_country"),
        )


def dialect_for(name: str, mapping: ReceiptMapping | None) -> ReceiptDialect:
    """The dialect an SMPP provider's `receipt_dialect` names ("custom": its mapping)."""
    if name == "hlrd":
        return HlrdDialect()
    if name == "custom":
        if mapping is None:
            raise ValueError("receipt_dialect custom needs a receipt_mapping")
        return MappedDialect(mapping)
    return MappedDialect(PRESETS[name])


def _decode(octets: bytes, encoding: str) -> str | None:
    if encoding == "cstr":
        return (octets[:-1] if octets.endswith(b"\0") else octets).decode("latin-1")
    if encoding == "octets":
        return octets.decode("latin-1")
    if encoding in ("u8", "u16", "u32"):
        width = {"u8": 1, "u16": 2, "u32": 4}[encoding]
        return str(int.from_bytes(octets, "big")) if len(octets) == width else None
    if encoding == "tbcd":
        digits: list[str] = []
        for b in octets:  # low nibble first; 0xF fills an odd count
            for nibble in (b & 0x0F, b >> 4):
                if nibble == 0x0F:
                    return "".join(digits)
                if nibble > 9:
                    return None
                digits.append(chr(48 + nibble))
        return "".join(digits)
    return octets.hex()  # "hex"


def _clean(name: str, value: str) -> str | None:
    """A value as hlrd reads it, or None: digit fields all digits (a masked IMSI is
    no IMSI), a country two letters."""
    value = value.strip()
    if name in _DIGIT_FIELDS:
        return value if value.isascii() and value.isdigit() and len(value) <= 20 else None
    if name == "serving_country":
        ok = len(value) == 2 and value.isascii() and value.isalpha()
        return value.upper() if ok else None
    if name in ("ported", "hlr_status"):
        return value.lower()
    return value
