"""Caps on client connections, in total and per address, for one front end.

One peer must only cost a bounded share of descriptors: without a cap, 1,100 idle
connections exhausted the process's descriptors and stopped HTTP, SMPP binds *and*
upstream reconnects. A front end asks `admit()` as a connection is accepted and
closes it at once when refused; the caps are set below the descriptor limit so
accept() itself never fails for lack of descriptors.
"""

from __future__ import annotations

from collections.abc import Callable


class ConnectionLimiter:
    REASONS = ("total", "per_ip")  # why admit() refuses

    def __init__(
        self,
        max_total: int,
        max_per_ip: int,
        on_refuse: Callable[[str], None] | None = None,
    ) -> None:
        """`on_refuse(reason)` hears each refusal ("total" or "per_ip")."""
        self.max_total = max_total
        self.max_per_ip = max_per_ip
        self._on_refuse = on_refuse
        self._per_ip: dict[str, int] = {}  # only addresses with a live connection
        self.total = 0

    def admit(self, ip: str) -> str | None:
        """Count a new connection from `ip`; the reason it is refused, or None."""
        if self.total >= self.max_total:
            reason = "total"
        elif self._per_ip.get(ip, 0) >= self.max_per_ip:
            reason = "per_ip"
        else:
            self.total += 1
            self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
            return None
        if self._on_refuse is not None:
            self._on_refuse(reason)
        return reason

    def release(self, ip: str) -> None:
        """An admitted connection from `ip` closed."""
        n = self._per_ip.get(ip, 0)
        if n <= 0:
            return
        self.total -= 1
        if n == 1:
            del self._per_ip[ip]
        else:
            self._per_ip[ip] = n - 1

    def count(self, ip: str) -> int:
        return self._per_ip.get(ip, 0)
