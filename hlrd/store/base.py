"""What the rest of hlrd asks of a store, so another engine can replace SQLite.

A store keeps answers under the keyed hash of their number, never the number: the
cache serializes an answer (no number, IMSI masked) into `payload` and keeps what it
needs to choose and expire rows beside it. Reads and writes never run on the event
loop: reads are awaited, writes are queued and written in batches, so a lookup never
waits for the disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

KEY_BYTES = 32  # an HMAC-SHA256: anything else is not a keyed hash (maybe a number)


class StoreError(Exception):
    """A store that cannot be opened or used; the message names the file and the fix."""


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    key: bytes  # HMAC-SHA256 of the number's E.164 digits (NumberKeyer)
    checked_at: float  # epoch seconds: when the provider answered
    expires_at: float  # epoch seconds: served as fresh until then
    provider: str
    kind: str  # the cache's kind of answer (its TTL class)
    payload: bytes  # the answer as the cache serialized it
    cost: float = 0.0  # what the provider charged for this lookup: "cost saved" on a hit
    currency: str = ""  # ISO 4217 of `cost`; "" when unknown (answers from schema 1)


@dataclass(frozen=True, slots=True)
class StoreStats:
    answers: int  # rows
    fresh: int  # rows with expires_at in the future
    oldest_checked_at: float | None
    newest_checked_at: float | None
    bytes_on_disk: int  # database + WAL + journal
    by_provider: dict[str, int]
    by_kind: dict[str, int]
    writes_dropped: int  # puts refused because the write queue was full (or store closed)
    writes_queued: int = 0  # puts waiting for the writer now
    writes_failed: int = 0  # puts the database refused (disk full, locked too long)


class AnswerStore(Protocol):
    async def get(self, key: bytes) -> StoredAnswer | None:
        """The answer kept for `key` (expired or not; the caller decides)."""

    def put(self, answer: StoredAnswer) -> None:
        """Queue a write (it replaces what `key` had). Never blocks; when the queue is
        full the write is dropped and counted: a cache may forget, a lookup may not wait."""

    async def delete(self, key: bytes) -> int:
        """Remove everything kept for one number (erasure); rows removed. Writes queued
        before the call are applied first, so a queued answer cannot come back."""

    async def purge(self, checked_before: float | None) -> int:
        """Remove answers checked before this epoch time (None: all); rows removed."""

    async def keys_after(self, after: bytes, limit: int) -> list[bytes]:
        """Stored keys in order, up to `limit` above `after` (b"": from the start)."""

    async def stats(self) -> StoreStats:
        """Reads every row (a scan): for `hlrd cache stats`, not for each scrape."""

    async def flush(self) -> None:
        """Return once every write queued before the call is on disk."""

    async def close(self) -> None:
        """Write what is queued, stop background work, release the files."""
