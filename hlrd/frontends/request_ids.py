"""A caller's own request id (`X-Request-Id`, or CAMARA's `x-correlator`).

Echoed on the answer and logged as `request_id`, so a dialer's or gateway's id leads
to hlrd's lines. One that is not printable ASCII of at most MAX_CHARS characters is
ignored (not echoed, not logged), not refused: a dialer must get its answer whatever
its middleware adds. In logs the id is masked like any value (digit runs of 7+ keep
their last 3), because a caller may well put the phone number into it; the echo is
the caller's own bytes back, unmasked.
"""

from __future__ import annotations

from collections.abc import Mapping

HEADERS = ("X-Request-Id", "x-correlator")
MAX_CHARS = 128


def valid(value: str | None) -> str | None:
    """`value` when it is a usable id, else None."""
    if value and len(value) <= MAX_CHARS and value.isascii() and value.isprintable():
        return value
    return None


def caller_ids(headers: Mapping[str, str]) -> dict[str, str]:
    """The valid ids among HEADERS that the request sent, by header name."""
    found: dict[str, str] = {}
    for name in HEADERS:
        value = valid(headers.get(name))
        if value is not None:
            found[name] = value
    return found
