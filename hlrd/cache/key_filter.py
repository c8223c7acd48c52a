"""Which numbers the store certainly does not hold, so a miss skips the disk read.

A Bloom filter over the store's keys. The keys are HMAC-SHA256 outputs, uniformly
random, so slices of the key itself serve as the filter's hash functions: nothing to
compute. It is filled from the store in the background after start (until then every
miss reads the store) and by every answer written; deleted keys stay in it, which only
costs a read. A "maybe" is always checked against the store: the filter never decides
that an answer exists, only that it does not.
"""

from __future__ import annotations

import struct

_HASHES = 7  # with 10 bits per key: ~1% false "maybe"
_BITS_PER_KEY = 10
_WORDS = struct.Struct(f"<{_HASHES}I")  # the key's first 28 bytes as 7 little-endian words


class KeyFilter:
    def __init__(self, capacity: int) -> None:
        self.bits = max(8 * 1024, capacity * _BITS_PER_KEY)
        self._array = bytearray((self.bits + 7) // 8)
        self.ready = False  # filled with every key the store held at start

    def add(self, key: bytes) -> None:
        a, bits = self._array, self.bits
        for word in _WORDS.unpack_from(key):
            p = word % bits
            a[p >> 3] |= 1 << (p & 7)

    def absent(self, key: bytes) -> bool:
        """True only when the store surely has no answer under `key`."""
        if not self.ready:
            return False
        a, bits = self._array, self.bits
        for word in _WORDS.unpack_from(key):
            p = word % bits
            if not a[p >> 3] & (1 << (p & 7)):
                return True
        return False
