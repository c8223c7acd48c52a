"""Instants as the API and the files write them: ISO-8601 in UTC, with `Z`."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(at: float | None) -> str | None:
    """Unix seconds as ISO-8601 UTC; None for none, or for a time no calendar shows."""
    if at is None:
        return None
    try:
        return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None
