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


def map_error_name(code: int) -> str:
    """camelCase name as written in TS 29.002, or 'mapError<code>' for others."""
    try:
        words = MapError(code).name.lower().split("_")
    except ValueError:
        return f"mapError{code}"
    return words[0] + "".join(w.capitalize() for w in words[1:])
