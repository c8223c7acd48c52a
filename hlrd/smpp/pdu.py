"""Typed PDU classes.

Each command is a slotted dataclass whose mandatory parameters are declared in wire
order with their SMPP type and maximum length, so the codec is generated from this
one description and cannot drift from it. TLVs stay a list of raw (tag, bytes) pairs
in arrival order: unknown vendor TLVs (0x1400 and up, where HLR providers put their
results) survive a decode/encode round trip byte for byte; known tags are typed on
access.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, NamedTuple

from .constants import INTERFACE_VERSION_34, CommandId, Status, Tag
from .errors import EncodeError

# Field kinds of mandatory parameters.
CSTR = "cstr"  # C-octet string, NUL terminated, max length includes the NUL
U8 = "u8"
SM = "sm"  # sm_length (1 octet) followed by that many octets of short_message


class FieldSpec(NamedTuple):
    name: str
    kind: str
    max: int  # C-string: octets including NUL; short_message: octets
    status: int  # command_status to answer when this field is malformed


def _cstr(max_len: int, status: int = Status.ESME_RINVCMDLEN) -> Any:
    return field(default="", metadata={"kind": CSTR, "max": max_len, "status": status})


def _u8(default: int = 0) -> Any:
    return field(default=default, metadata={"kind": U8, "max": 1, "status": 0})


def _sm() -> Any:
    return field(default=b"", metadata={"kind": SM, "max": 254, "status": Status.ESME_RINVMSGLEN})


class Tlv(NamedTuple):
    tag: int
    value: bytes


# Known TLV types: tag -> (kind, allowed value lengths or max length).
TLV_U8 = "u8"
TLV_U16 = "u16"
TLV_U32 = "u32"
TLV_CSTR = "cstr"
TLV_OCTETS = "octets"

TLV_TYPES: dict[int, tuple[str, int]] = {
    Tag.DEST_ADDR_SUBUNIT: (TLV_U8, 1),
    Tag.DEST_NETWORK_TYPE: (TLV_U8, 1),
    Tag.DEST_BEARER_TYPE: (TLV_U8, 1),
    Tag.DEST_TELEMATICS_ID: (TLV_U16, 2),
    Tag.SOURCE_ADDR_SUBUNIT: (TLV_U8, 1),
    Tag.SOURCE_NETWORK_TYPE: (TLV_U8, 1),
    Tag.SOURCE_BEARER_TYPE: (TLV_U8, 1),
    Tag.SOURCE_TELEMATICS_ID: (TLV_U8, 1),
    Tag.QOS_TIME_TO_LIVE: (TLV_U32, 4),
    Tag.PAYLOAD_TYPE: (TLV_U8, 1),
    Tag.ADDITIONAL_STATUS_INFO_TEXT: (TLV_CSTR, 256),
    Tag.RECEIPTED_MESSAGE_ID: (TLV_CSTR, 65),
    Tag.MS_MSG_WAIT_FACILITIES: (TLV_U8, 1),
    Tag.PRIVACY_INDICATOR: (TLV_U8, 1),
    Tag.SOURCE_SUBADDRESS: (TLV_OCTETS, 23),
    Tag.DEST_SUBADDRESS: (TLV_OCTETS, 23),
    Tag.USER_MESSAGE_REFERENCE: (TLV_U16, 2),
    Tag.USER_RESPONSE_CODE: (TLV_U8, 1),
    Tag.SOURCE_PORT: (TLV_U16, 2),
    Tag.DESTINATION_PORT: (TLV_U16, 2),
    Tag.SAR_MSG_REF_NUM: (TLV_U16, 2),
    Tag.LANGUAGE_INDICATOR: (TLV_U8, 1),
    Tag.SAR_TOTAL_SEGMENTS: (TLV_U8, 1),
    Tag.SAR_SEGMENT_SEQNUM: (TLV_U8, 1),
    Tag.SC_INTERFACE_VERSION: (TLV_U8, 1),
    Tag.CALLBACK_NUM_PRES_IND: (TLV_U8, 1),
    Tag.CALLBACK_NUM_ATAG: (TLV_OCTETS, 65),
    Tag.NUMBER_OF_MESSAGES: (TLV_U8, 1),
    Tag.CALLBACK_NUM: (TLV_OCTETS, 19),
    Tag.DPF_RESULT: (TLV_U8, 1),
    Tag.SET_DPF: (TLV_U8, 1),
    Tag.MS_AVAILABILITY_STATUS: (TLV_U8, 1),
    Tag.NETWORK_ERROR_CODE: (TLV_OCTETS, 3),
    Tag.MESSAGE_PAYLOAD: (TLV_OCTETS, 65535),
    Tag.DELIVERY_FAILURE_REASON: (TLV_U8, 1),
    Tag.MORE_MESSAGES_TO_SEND: (TLV_U8, 1),
    Tag.MESSAGE_STATE: (TLV_U8, 1),
    Tag.USSD_SERVICE_OP: (TLV_U8, 1),
    Tag.DISPLAY_TIME: (TLV_U8, 1),
    Tag.SMS_SIGNAL: (TLV_U16, 2),
    Tag.MS_VALIDITY: (TLV_U8, 1),
    Tag.ALERT_ON_MESSAGE_DELIVERY: (TLV_OCTETS, 0),
    Tag.ITS_REPLY_TYPE: (TLV_U8, 1),
    Tag.ITS_SESSION_INFO: (TLV_U16, 2),
}

_INT_FORMATS = {TLV_U8: ">B", TLV_U16: ">H", TLV_U32: ">I"}


def make_tlv(tag: int, value: int | str | bytes, kind: str | None = None) -> Tlv:
    """Build a TLV from a Python value, typed by the tag (or `kind` for vendor tags)."""
    kind = kind or TLV_TYPES.get(tag, (TLV_OCTETS, 65535))[0]
    if kind in _INT_FORMATS:
        if not isinstance(value, int):
            raise EncodeError(f"TLV 0x{tag:04X} needs an integer", field=f"tlv_0x{tag:04X}")
        try:
            return Tlv(tag, struct.pack(_INT_FORMATS[kind], value))
        except struct.error as exc:
            raise EncodeError(
                f"TLV 0x{tag:04X} value {value} out of range", field=f"tlv_0x{tag:04X}"
            ) from exc
    if kind == TLV_CSTR:
        if not isinstance(value, str) or "\0" in value:
            raise EncodeError(
                f"TLV 0x{tag:04X} needs a string without NUL", field=f"tlv_0x{tag:04X}"
            )
        return Tlv(tag, value.encode("latin-1") + b"\0")
    if isinstance(value, str):
        return Tlv(tag, value.encode("latin-1"))
    if isinstance(value, int):
        raise EncodeError(f"TLV 0x{tag:04X} needs octets", field=f"tlv_0x{tag:04X}")
    return Tlv(tag, bytes(value))


def tlv_value(t: Tlv, kind: str | None = None) -> int | str | bytes:
    """The typed value of a TLV: int for integer tags, str for C-strings, else bytes."""
    kind = kind or TLV_TYPES.get(t.tag, (TLV_OCTETS, 0))[0]
    if kind in _INT_FORMATS:
        return int.from_bytes(t.value, "big")
    if kind == TLV_CSTR:
        v = t.value
        return (v[:-1] if v.endswith(b"\0") else v).decode("latin-1")
    return t.value


@dataclass(slots=True, kw_only=True)
class Pdu:
    """Common header and TLVs. command_length is derived at encode time."""

    command_id: ClassVar[int] = 0
    layout: ClassVar[tuple[FieldSpec, ...]] = ()

    sequence: int = 0
    status: int = 0
    tlvs: list[Tlv] = field(default_factory=list)

    @property
    def command_name(self) -> str:
        return CommandId(self.command_id).name.lower()

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & 0x80000000)

    def tlv(self, tag: int) -> Tlv | None:
        for t in self.tlvs:
            if t.tag == tag:
                return t
        return None

    def get(self, tag: int, kind: str | None = None) -> int | str | bytes | None:
        """Typed value of the first TLV with `tag`, or None when absent."""
        t = self.tlv(tag)
        return None if t is None else tlv_value(t, kind)

    def set(self, tag: int, value: int | str | bytes, kind: str | None = None) -> None:
        """Replace (or append) the TLV with `tag`, keeping the others in order."""
        new = make_tlv(tag, value, kind)
        for i, t in enumerate(self.tlvs):
            if t.tag == tag:
                self.tlvs[i] = new
                return
        self.tlvs.append(new)


@dataclass(slots=True, kw_only=True)
class GenericNack(Pdu):
    command_id: ClassVar[int] = CommandId.GENERIC_NACK


@dataclass(slots=True, kw_only=True)
class Bind(Pdu):
    system_id: str = _cstr(16, Status.ESME_RINVSYSID)
    password: str = _cstr(9, Status.ESME_RINVPASWD)
    system_type: str = _cstr(13, Status.ESME_RINVSYSTYP)
    interface_version: int = _u8(INTERFACE_VERSION_34)
    addr_ton: int = _u8()
    addr_npi: int = _u8()
    address_range: str = _cstr(41, Status.ESME_RINVPARLEN)


@dataclass(slots=True, kw_only=True)
class BindTransmitter(Bind):
    command_id: ClassVar[int] = CommandId.BIND_TRANSMITTER


@dataclass(slots=True, kw_only=True)
class BindReceiver(Bind):
    command_id: ClassVar[int] = CommandId.BIND_RECEIVER


@dataclass(slots=True, kw_only=True)
class BindTransceiver(Bind):
    command_id: ClassVar[int] = CommandId.BIND_TRANSCEIVER


@dataclass(slots=True, kw_only=True)
class BindResp(Pdu):
    system_id: str = _cstr(16, Status.ESME_RINVSYSID)


@dataclass(slots=True, kw_only=True)
class BindTransmitterResp(BindResp):
    command_id: ClassVar[int] = CommandId.BIND_TRANSMITTER_RESP


@dataclass(slots=True, kw_only=True)
class BindReceiverResp(BindResp):
    command_id: ClassVar[int] = CommandId.BIND_RECEIVER_RESP


@dataclass(slots=True, kw_only=True)
class BindTransceiverResp(BindResp):
    command_id: ClassVar[int] = CommandId.BIND_TRANSCEIVER_RESP


@dataclass(slots=True, kw_only=True)
class _ShortMessage(Pdu):
    """submit_sm and deliver_sm share one body layout (SMPP 3.4 §4.4.1, §4.6.1)."""

    service_type: str = _cstr(6, Status.ESME_RINVSERTYP)
    source_addr_ton: int = _u8()
    source_addr_npi: int = _u8()
    source_addr: str = _cstr(21, Status.ESME_RINVSRCADR)
    dest_addr_ton: int = _u8()
    dest_addr_npi: int = _u8()
    destination_addr: str = _cstr(21, Status.ESME_RINVDSTADR)
    esm_class: int = _u8()
    protocol_id: int = _u8()
    priority_flag: int = _u8()
    schedule_delivery_time: str = _cstr(17, Status.ESME_RINVSCHED)
    validity_period: str = _cstr(17, Status.ESME_RINVEXPIRY)
    registered_delivery: int = _u8()
    replace_if_present_flag: int = _u8()
    data_coding: int = _u8()
    sm_default_msg_id: int = _u8()
    short_message: bytes = _sm()


@dataclass(slots=True, kw_only=True)
class SubmitSm(_ShortMessage):
    command_id: ClassVar[int] = CommandId.SUBMIT_SM


@dataclass(slots=True, kw_only=True)
class DeliverSm(_ShortMessage):
    command_id: ClassVar[int] = CommandId.DELIVER_SM


@dataclass(slots=True, kw_only=True)
class _MessageIdResp(Pdu):
    message_id: str = _cstr(65, Status.ESME_RINVMSGID)


@dataclass(slots=True, kw_only=True)
class SubmitSmResp(_MessageIdResp):
    command_id: ClassVar[int] = CommandId.SUBMIT_SM_RESP


@dataclass(slots=True, kw_only=True)
class DeliverSmResp(_MessageIdResp):
    command_id: ClassVar[int] = CommandId.DELIVER_SM_RESP


@dataclass(slots=True, kw_only=True)
class DataSmResp(_MessageIdResp):
    command_id: ClassVar[int] = CommandId.DATA_SM_RESP


@dataclass(slots=True, kw_only=True)
class DataSm(Pdu):
    command_id: ClassVar[int] = CommandId.DATA_SM

    service_type: str = _cstr(6, Status.ESME_RINVSERTYP)
    source_addr_ton: int = _u8()
    source_addr_npi: int = _u8()
    source_addr: str = _cstr(65, Status.ESME_RINVSRCADR)
    dest_addr_ton: int = _u8()
    dest_addr_npi: int = _u8()
    destination_addr: str = _cstr(65, Status.ESME_RINVDSTADR)
    esm_class: int = _u8()
    registered_delivery: int = _u8()
    data_coding: int = _u8()


@dataclass(slots=True, kw_only=True)
class QuerySm(Pdu):
    command_id: ClassVar[int] = CommandId.QUERY_SM

    message_id: str = _cstr(65, Status.ESME_RINVMSGID)
    source_addr_ton: int = _u8()
    source_addr_npi: int = _u8()
    source_addr: str = _cstr(21, Status.ESME_RINVSRCADR)


@dataclass(slots=True, kw_only=True)
class QuerySmResp(Pdu):
    command_id: ClassVar[int] = CommandId.QUERY_SM_RESP

    message_id: str = _cstr(65, Status.ESME_RINVMSGID)
    final_date: str = _cstr(17, Status.ESME_RINVPARLEN)
    message_state: int = _u8()
    error_code: int = _u8()


@dataclass(slots=True, kw_only=True)
class Unbind(Pdu):
    command_id: ClassVar[int] = CommandId.UNBIND


@dataclass(slots=True, kw_only=True)
class UnbindResp(Pdu):
    command_id: ClassVar[int] = CommandId.UNBIND_RESP


@dataclass(slots=True, kw_only=True)
class EnquireLink(Pdu):
    command_id: ClassVar[int] = CommandId.ENQUIRE_LINK


@dataclass(slots=True, kw_only=True)
class EnquireLinkResp(Pdu):
    command_id: ClassVar[int] = CommandId.ENQUIRE_LINK_RESP


PDU_CLASSES: dict[int, type[Pdu]] = {
    cls.command_id: cls
    for cls in (
        GenericNack,
        BindTransmitter,
        BindTransmitterResp,
        BindReceiver,
        BindReceiverResp,
        BindTransceiver,
        BindTransceiverResp,
        SubmitSm,
        SubmitSmResp,
        DeliverSm,
        DeliverSmResp,
        DataSm,
        DataSmResp,
        QuerySm,
        QuerySmResp,
        Unbind,
        UnbindResp,
        EnquireLink,
        EnquireLinkResp,
    )
}

BIND_CLASSES = (BindTransmitter, BindReceiver, BindTransceiver)


def _layout_of(cls: type[Pdu]) -> tuple[FieldSpec, ...]:
    return tuple(
        FieldSpec(f.name, f.metadata["kind"], f.metadata["max"], f.metadata["status"])
        for f in fields(cls)
        if "kind" in f.metadata
    )


for _cls in PDU_CLASSES.values():
    _cls.layout = _layout_of(_cls)


def response_class(command_id: int) -> type[Pdu]:
    """The class answering a request; generic_nack for unknown commands."""
    return PDU_CLASSES.get(command_id | 0x80000000, GenericNack)


def make_response(request: Pdu, status: int = 0, **values: Any) -> Pdu:
    return response_class(request.command_id)(sequence=request.sequence, status=status, **values)
