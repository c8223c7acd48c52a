"""Delivery receipts: the de-facto text format (SMPP 3.4 Appendix B) and receipt TLVs.

HLR providers over SMPP answer a lookup with a receipt. Vendors differ in case,
field order, date precision and which fields they send, and add their own
`key:value` pairs (`imsi:`, `mccmnc:`, `msc:` ...). The parser accepts all of that;
the builder writes the canonical form. Message ids are compared after normalisation
because SMSCs famously answer submit_sm_resp in hex and put the same id in decimal
in the receipt (or pad it with zeros, or change its case).
"""

from __future__ import annotations

import re
import struct
import time
from dataclasses import dataclass, field
from datetime import datetime

from .constants import NETWORK_TYPE_GSM, EsmClass, MessageState, Tag
from .pdu import DeliverSm, Pdu, SubmitSm, Tlv, make_tlv

STAT_TO_STATE: dict[str, MessageState] = {
    "ENROUTE": MessageState.ENROUTE,
    "DELIVRD": MessageState.DELIVERED,
    "DELIVERED": MessageState.DELIVERED,
    "EXPIRED": MessageState.EXPIRED,
    "DELETED": MessageState.DELETED,
    "UNDELIV": MessageState.UNDELIVERABLE,
    "UNDELIVERABLE": MessageState.UNDELIVERABLE,
    "ACCEPTD": MessageState.ACCEPTED,
    "ACCEPTED": MessageState.ACCEPTED,
    "UNKNOWN": MessageState.UNKNOWN,
    "REJECTD": MessageState.REJECTED,
    "REJECTED": MessageState.REJECTED,
}

STATE_TO_STAT: dict[MessageState, str] = {
    MessageState.ENROUTE: "ENROUTE",
    MessageState.DELIVERED: "DELIVRD",
    MessageState.EXPIRED: "EXPIRED",
    MessageState.DELETED: "DELETED",
    MessageState.UNDELIVERABLE: "UNDELIV",
    MessageState.ACCEPTED: "ACCEPTD",
    MessageState.UNKNOWN: "UNKNOWN",
    MessageState.REJECTED: "REJECTD",
}

_KNOWN_STATES = frozenset(int(s) for s in MessageState)

_STANDARD_KEYS = {"id", "sub", "dlvrd", "submit date", "done date", "stat", "err", "text"}


# Not frozen: one is built per receipt, and a frozen dataclass's __init__ costs twice
# as much (a setattr call per field). Treated as a value: nothing changes it later.
@dataclass(slots=True)
class Receipt:
    message_id: str
    stat: str = "UNKNOWN"
    err: str = "000"
    sub: str | None = None
    dlvrd: str | None = None
    submit_time: str = ""  # as sent: YYMMDDhhmm[ss]; parsed only when asked for
    done_time: str = ""
    text: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    network_error: tuple[int, int] | None = None  # (network type, error code) from the TLV

    @property
    def submit_date(self) -> datetime | None:
        return _parse_date(self.submit_time)

    @property
    def done_date(self) -> datetime | None:
        return _parse_date(self.done_time)

    @property
    def state(self) -> MessageState:
        return STAT_TO_STATE.get(self.stat.upper(), MessageState.UNKNOWN)

    @property
    def error_code(self) -> int | None:
        """The error as an int: the network_error_code TLV if sent, else `err:`."""
        if self.network_error is not None:
            return self.network_error[1]
        try:
            return int(self.err, 10)
        except ValueError:
            try:
                return int(self.err, 16)
            except ValueError:
                return None


def _parse_date(value: str) -> datetime | None:
    digits = value.strip()
    for fmt, size in (("%y%m%d%H%M%S", 12), ("%y%m%d%H%M", 10)):
        if len(digits) == size and digits.isdigit():
            try:
                return datetime.strptime(digits, fmt)
            except ValueError:
                return None
    return None


def format_date(value: datetime) -> str:
    return value.strftime("%y%m%d%H%M")


_now_cache: tuple[int, str] = (-1, "")


def _now_text() -> str:
    """The current minute as YYMMDDhhmm, formatted once a minute, not once a receipt."""
    global _now_cache
    minute = int(time.time() // 60)
    if _now_cache[0] != minute:
        _now_cache = (minute, format_date(datetime.now()))
    return _now_cache[1]


def parse_receipt_text(text: str) -> dict[str, str]:
    """Split receipt text into lower-cased keys and values; `text:` takes the rest.

    Words without a `key:` belong to the value before them; "submit date"/"done
    date" (or with "_") are one key; the first of a repeated key wins. Receipts are
    parsed once per lookup and nearly all are plain `key:value` words, which
    `_parse_plain` reads at about twice the speed; anything else goes to the
    tolerant tokenizer, which gives the same answer for plain text too.
    """
    fields = _parse_plain(text)
    return fields if fields is not None else parse_receipt_text_tolerant(text)


def _parse_plain(text: str) -> dict[str, str] | None:
    """Lower-case `key:value` words separated by single blanks, or None."""
    cut = text.find(" text:")
    head = text if cut < 0 else text[:cut]
    if head.startswith("text:"):
        return None
    if "date:" in head:
        head = head.replace("submit date:", "submit_date:", 1).replace(
            "done date:", "done_date:", 1
        )
    fields: dict[str, str] = {}
    for tok in head.split(" "):
        key, colon, value = tok.partition(":")
        if not colon or key in fields or not key.isidentifier() or not key.islower():
            return None
        fields[key] = value
    if "submit_date" in fields:
        fields["submit date"] = fields.pop("submit_date")
    if "done_date" in fields:
        fields["done date"] = fields.pop("done_date")
    if cut >= 0:
        fields["text"] = text[cut + 6 :]
    return fields


def parse_receipt_text_tolerant(text: str) -> dict[str, str]:
    """The general tokenizer: any case, blanks in values, stray words, odd keys."""
    fields: dict[str, str] = {}
    tokens = text.split(" ")
    n = len(tokens)
    offset = 0  # character offset of tokens[i] in text
    key = ""
    i = 0
    while i < n:
        tok = tokens[i]
        colon = tok.find(":")
        name = tok[:colon].lower() if colon > 0 else ""
        if not name and i + 1 < n and tok.lower() in ("submit", "done"):
            nxt = tokens[i + 1]
            if nxt[:5].lower() == "date:":
                key = tok.lower() + " date"
                if key not in fields:
                    fields[key] = nxt[5:]
                offset += len(tok) + len(nxt) + 2
                i += 2
                continue
        if name and name.replace("-", "_").isidentifier():
            if name in ("submit_date", "done_date"):
                name = name.replace("_", " ")
            if name == "text":
                fields["text"] = text[offset + colon + 1 :]
                return fields
            key = name if name not in fields else ""
            if key:
                fields[key] = tok[colon + 1 :]
        elif tok and key:
            fields[key] += " " + tok
        offset += len(tok) + 1
        i += 1
    return fields


def receipt_from_text(text: str) -> Receipt | None:
    """Parse receipt text; None when it has no `id:` (then it is not a receipt)."""
    f = parse_receipt_text(text)
    if "id" not in f:
        return None
    return Receipt(
        message_id=f["id"],
        stat=f.get("stat", "UNKNOWN").upper(),
        err=f.get("err", "000"),
        sub=f.get("sub"),
        dlvrd=f.get("dlvrd"),
        submit_time=f.get("submit date", ""),
        done_time=f.get("done date", ""),
        text=f.get("text", ""),
        extra={k: v for k, v in f.items() if k not in _STANDARD_KEYS},
    )


def receipt_text(r: Receipt) -> str:
    """Canonical receipt text. Vendor fields go between `err:` and `text:`."""
    now = _now_text()
    parts = [
        f"id:{r.message_id}",
        f"sub:{r.sub or '001'}",
        f"dlvrd:{r.dlvrd or ('001' if r.state == MessageState.DELIVERED else '000')}",
        f"submit date:{r.submit_time or now}",
        f"done date:{r.done_time or now}",
        f"stat:{r.stat}",
        f"err:{r.err}",
    ]
    parts += [f"{k}:{v}" for k, v in r.extra.items()]
    parts.append(f"text:{r.text}")
    return " ".join(parts)


def network_error_tlv(code: int, network_type: int = NETWORK_TYPE_GSM) -> Tlv:
    return Tlv(Tag.NETWORK_ERROR_CODE, struct.pack(">BH", network_type, code))


def receipt_tlvs(r: Receipt) -> list[Tlv]:
    tlvs = [
        make_tlv(Tag.RECEIPTED_MESSAGE_ID, r.message_id),
        make_tlv(Tag.MESSAGE_STATE, int(r.state)),
    ]
    code = r.error_code
    if r.network_error is not None:
        tlvs.append(network_error_tlv(r.network_error[1], r.network_error[0]))
    elif code:
        tlvs.append(network_error_tlv(code))
    return tlvs


def receipt_pdu(submit: SubmitSm, r: Receipt, vendor_tlvs: list[Tlv] | None = None) -> DeliverSm:
    """The deliver_sm that answers `submit` with receipt `r` in hlrd's dialect."""
    return receipt_deliver_sm(
        submit, receipt_text(r).encode("latin-1"), receipt_tlvs(r) + (vendor_tlvs or [])
    )


def receipt_deliver_sm(
    submit: SubmitSm, text: bytes, tlvs: list[Tlv], esm_class: int = EsmClass.DELIVERY_RECEIPT
) -> DeliverSm:
    """A receipt's deliver_sm for `submit`, addresses swapped, whatever the text's
    dialect. Text longer than short_message's 254 octets goes in message_payload, as
    SMPP 3.4 §5.3.2.32 prescribes."""
    if len(text) > 254:
        tlvs = [*tlvs, Tlv(Tag.MESSAGE_PAYLOAD, text)]
        text = b""
    return DeliverSm(
        source_addr_ton=submit.dest_addr_ton,
        source_addr_npi=submit.dest_addr_npi,
        source_addr=submit.destination_addr,
        dest_addr_ton=submit.source_addr_ton,
        dest_addr_npi=submit.source_addr_npi,
        destination_addr=submit.source_addr,
        esm_class=esm_class,
        short_message=text,
        tlvs=tlvs,
    )


def is_receipt(pdu: Pdu) -> bool:
    if not isinstance(pdu, DeliverSm):
        return False
    return (pdu.esm_class & EsmClass.MESSAGE_TYPE_MASK) == EsmClass.DELIVERY_RECEIPT or (
        pdu.tlv(Tag.RECEIPTED_MESSAGE_ID) is not None
    )


def receipt_from_pdu(pdu: DeliverSm) -> Receipt | None:
    """The receipt in a deliver_sm: text fields, completed by the receipt TLVs.

    TLVs win where both are present, as they are typed and unambiguous; the text
    keeps the vendor fields the TLVs cannot carry.
    """
    if not isinstance(pdu, DeliverSm):
        return None
    # One pass over the TLVs (the first of a repeated tag counts, as in Pdu.get).
    tlv_id: str | None = None
    tlv_state: int | None = None
    neterr: bytes | None = None
    payload: bytes | None = None
    for tag, value in pdu.tlvs:
        if tag == Tag.RECEIPTED_MESSAGE_ID:
            if tlv_id is None:
                tlv_id = (value[:-1] if value.endswith(b"\0") else value).decode("latin-1")
        elif tag == Tag.MESSAGE_STATE:
            if tlv_state is None:
                tlv_state = int.from_bytes(value, "big")
        elif tag == Tag.NETWORK_ERROR_CODE:
            if neterr is None:
                neterr = value
        elif tag == Tag.MESSAGE_PAYLOAD and payload is None:
            payload = value
    if tlv_id is None and (pdu.esm_class & EsmClass.MESSAGE_TYPE_MASK) != (
        EsmClass.DELIVERY_RECEIPT
    ):
        return None
    body = pdu.short_message or payload
    f = parse_receipt_text(body.decode("latin-1")) if body else {}
    if "id" not in f:
        if tlv_id is None:
            return None
        f = {}
    network_error = None
    if neterr is not None and len(neterr) == 3:
        network_error = (neterr[0], int.from_bytes(neterr[1:], "big"))
    stat = f.get("stat", "UNKNOWN").upper()
    if tlv_state is not None and tlv_state in _KNOWN_STATES:
        stat = STATE_TO_STAT[MessageState(tlv_state)]
    return Receipt(
        message_id=tlv_id if tlv_id else f.get("id", ""),
        stat=stat,
        err=f.get("err", "000") if network_error is None else f"{network_error[1]:03d}",
        sub=f.get("sub"),
        dlvrd=f.get("dlvrd"),
        submit_time=f.get("submit date", ""),
        done_time=f.get("done date", ""),
        text=f.get("text", ""),
        extra={k: v for k, v in f.items() if k not in _STANDARD_KEYS},
        network_error=network_error,
    )


_HEX = re.compile(r"^[0-9a-f]+$")


def canonical_message_id(message_id: str) -> str:
    """Case-folded, without surrounding blanks or leading zeros."""
    return message_id.strip().lower().lstrip("0") or "0"


def alternate_message_ids(message_id: str) -> tuple[str, ...]:
    """The canonical forms the same id takes when an SMSC switches hex and decimal.

    Many SMSCs answer submit_sm_resp with a hex id and put it in decimal in the
    receipt (or the other way round). Callers match the exact canonical id first and
    fall back to these, since an id like "10" is legal in both bases: with two
    lookups pending as "0A" and "10", only the exact match is unambiguous.
    """
    c = canonical_message_id(message_id)
    out: list[str] = []
    if c.isdigit():
        out.append(format(int(c), "x"))
    if _HEX.match(c):
        out.append(str(int(c, 16)))
    return tuple(x for x in out if x != c)


def same_message_id(a: str, b: str) -> bool:
    ca, cb = canonical_message_id(a), canonical_message_id(b)
    return ca == cb or cb in alternate_message_ids(a)
