"""Failed binds per address: after too many, that address may not bind for a while.

A wrong password cost a guesser 0.2 ms and nothing else (400 guesses in 80 ms). Here
an address gets `max_failures` failed binds within `window_s`; the failure that
reaches the limit locks the address out until `window_s` after it, and while locked
out its binds are refused even with the right password, so a guesser learns nothing
from them. A success does not clear the count: otherwise an attacker holding one
account could reset it between guesses at another.

IPv6 addresses are counted per /64, the block one subscriber is usually given;
counting each address would let one host guess from 2^64 of them. The map is
bounded (least recently failed forgotten first), so a spread of sources costs
bounded memory; forgetting an address only ever lets it guess again sooner.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_ADDRESSES = 10_000


@dataclass(slots=True)
class _Record:
    # Times of the failures still within the window, oldest first, at most
    # max_failures of them (a list: 10,000 deques would cost ~6 MiB).
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0


class BindGuard:
    def __init__(
        self,
        max_failures: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock  # tests move it instead of sleeping
        self.max_addresses = max_addresses
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def locked(self, ip: str) -> bool:
        """Whether binds from `ip` are refused now."""
        record = self._records.get(address_key(ip))
        return record is not None and self.clock() < record.locked_until

    def failed(self, ip: str) -> bool:
        """Count a failed bind from `ip`; True when this failure locks the address out."""
        key = address_key(ip)
        now = self.clock()
        record = self._records.pop(key, None) or _Record()
        self._records[key] = record  # most recently failed last
        while len(self._records) > self.max_addresses:
            self._records.popitem(last=False)
        if now < record.locked_until:
            return False  # already locked out: the lockout is not extended
        horizon = now - self.window_s
        recent = [t for t in record.failures if t > horizon]
        failures = recent[max(0, len(recent) - self.max_failures + 1) :]
        failures.append(now)
        if len(failures) < self.max_failures:
            record.failures = failures
            return False
        record.failures = []
        record.locked_until = now + self.window_s
        return True


def address_key(ip: str) -> str:
    """The unit failures are counted by: an IPv4 address, or an IPv6 /64."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)
