"""MAP error codes (3GPP TS 29.002) that HLR lookups report, with their names.

Providers put these in `err:` of a receipt and in the network_error_code TLV; the
daemon maps them to reachability.
"""

from __future__ import annotations

from enum import IntEnum


class MapError(IntEnum):
    NONE = 0
    UNKNOWN_SUBSCRIBER = 1
    UNIDENTIFIED_SUBSCRIBER = 5
    ABSENT_SUBSCRIBER_SM = 6
    ILLEGAL_SUBSCRIBER = 9
    TELESERVICE_NOT_PROVISIONED = 11
    ILLEGAL_EQUIPMENT = 12
    CALL_BARRED = 13
    FACILITY_NOT_SUPPORTED = 21
    ABSENT_SUBSCRIBER = 27
    SYSTEM_FAILURE = 34
    DATA_MISSING = 35
    UNEXPECTED_DATA_VALUE = 36


_NAMES: dict[int, str] = {
    MapError.UNKNOWN_SUBSCRIBER: "unknownSubscriber",
    MapError.UNIDENTIFIED_SUBSCRIBER: "unidentifiedSubscriber",
    MapError.ABSENT_SUBSCRIBER_SM: "absentSubscriberSM",
    MapError.ILLEGAL_SUBSCRIBER: "illegalSubscriber",
    MapError.TELESERVICE_NOT_PROVISIONED: "teleserviceNotProvisioned",
    MapError.ILLEGAL_EQUIPMENT: "illegalEquipment",
    MapError.CALL_BARRED: "callBarred",
    MapError.FACILITY_NOT_SUPPORTED: "facilityNotSupported",
    MapError.ABSENT_SUBSCRIBER: "absentSubscriber",
    MapError.SYSTEM_FAILURE: "systemFailure",
    MapError.DATA_MISSING: "dataMissing",
    MapError.UNEXPECTED_DATA_VALUE: "unexpectedDataValue",
}


def map_error_name(code: int) -> str:
    """The name as written in TS 29.002, or 'mapError<code>' for others."""
    return _NAMES.get(code, f"mapError{code}")
