"""The in-memory tier: a hit costs a dict lookup, never the disk."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ..domain.result import LookupResult


@dataclass(frozen=True, slots=True)
class Entry:
    result: LookupResult  # as answered, lookup id and cache info to be replaced
    checked_at: float  # epoch seconds
    expires_at: float
    kind: str
    cost: float  # what the answer cost (saved again by each hit)
    currency: str


class MemoryTier:
    """Least recently used first out, at most `capacity` entries."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, msisdn: str) -> Entry | None:
        entry = self._entries.get(msisdn)
        if entry is not None:
            self._entries.move_to_end(msisdn)
        return entry

    def put(self, msisdn: str, entry: Entry) -> None:
        if self.capacity <= 0:
            return
        entries = self._entries
        entries[msisdn] = entry
        entries.move_to_end(msisdn)
        while len(entries) > self.capacity:
            entries.popitem(last=False)

    def pop(self, msisdn: str) -> Entry | None:
        return self._entries.pop(msisdn, None)

    def purge(self, checked_before: float | None) -> int:
        if checked_before is None:
            n = len(self._entries)
            self._entries.clear()
            return n
        old = [k for k, e in self._entries.items() if e.checked_at < checked_before]
        for k in old:
            del self._entries[k]
        return len(old)
