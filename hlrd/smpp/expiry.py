"""Deadlines for many in-flight items on one timer.

Every request on a link and every lookup has a deadline, and almost all of them are
answered long before it. A `call_later` handle per item costs a heap push, a handle
object and a cancel on every answer; profiles showed it among the largest per-lookup
costs. Items here are grouped by timeout: within a group deadlines come in the order
items were added, so the earliest is always at the front, discarding an answered item
is one dict delete, and one timer handle (armed at the earliest front) serves them all.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

# The loop may run a timer up to its clock resolution early; expiring a millisecond
# early never matters, re-arming for the same instant in a loop would.
_SLACK_S = 0.001


class ExpiryQueue(Generic[K]):
    def __init__(self, on_expire: Callable[[K], None]) -> None:
        self._on_expire = on_expire
        self._loop = asyncio.get_running_loop()
        self._groups: dict[float, OrderedDict[K, float]] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._handle_at = 0.0

    def add(self, key: K, timeout: float) -> None:
        group = self._groups.get(timeout)
        if group is None:
            group = self._groups[timeout] = OrderedDict()
        deadline = self._loop.time() + timeout
        group[key] = deadline
        group.move_to_end(key)  # a key added again keeps the group in deadline order
        if self._handle is None or deadline < self._handle_at:
            self._arm(deadline)

    def discard(self, key: K) -> None:
        for group in self._groups.values():
            if group.pop(key, None) is not None:
                return

    def clear(self) -> None:
        self._groups.clear()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._loop.call_at(when, self._fire)
        self._handle_at = when

    def _fire(self) -> None:
        self._handle = None
        now = self._loop.time() + _SLACK_S
        expired: list[K] = []
        earliest: float | None = None
        for group in self._groups.values():
            while group:
                key = next(iter(group))
                deadline = group[key]
                if deadline > now:
                    if earliest is None or deadline < earliest:
                        earliest = deadline
                    break
                del group[key]
                expired.append(key)
        if earliest is not None:
            self._arm(earliest)
        for key in expired:
            self._on_expire(key)
