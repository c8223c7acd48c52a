"""A set of numbers kept as sorted 64-bit keyed hashes: 8 bytes a number.

A national registry lists tens of millions of numbers, and a Python set of them
would cost ~60 bytes each; and numbers must not be kept in the clear anyway. The
keys live in one sorted `array('Q')`; an index of where each bucket of keys (by
their top bits, about 2 keys a bucket; 4-byte positions, so ~2 more bytes a number)
starts narrows every search to a comparison or two (bisect in C), with no allocation
beyond the ints compared. (8 a bucket saved a byte a number and cost bulk checks
~8%: each comparison boxes an array item into an int.)
"""

from __future__ import annotations

import heapq
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator

_PER_BUCKET = 2
_MAX_BUCKET_BITS = 26


class NumberSet:
    __slots__ = ("_index", "_keys", "_shift")

    def __init__(self, sorted_keys: array[int]) -> None:
        """`sorted_keys`: strictly increasing (use `build` for anything else)."""
        self._keys = sorted_keys
        bits = min(_MAX_BUCKET_BITS, max(1, (len(sorted_keys) // _PER_BUCKET).bit_length()))
        self._shift = 64 - bits
        self._index = _bucket_index(sorted_keys, bits)

    @classmethod
    def build(cls, keys: Iterable[int]) -> NumberSet:
        """From keys in any order, repeats allowed. Keys are uniform (a keyed hash),
        so their top byte splits them into 256 even parts, each sorted on its own:
        faster than one sort of them all, and the transient Python ints are a part's
        (1/256), not the whole list's."""
        parts = [array("Q") for _ in range(256)]
        for k in keys:
            parts[k >> 56].append(k)
        out = array("Q")
        for i, part in enumerate(parts):
            out.extend(array("Q", sorted(set(part))))
            parts[i] = array("Q")  # freed as we go
        return cls(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> NumberSet:
        """Keys as `to_bytes` wrote them (little-endian)."""
        keys = array("Q")
        keys.frombytes(data)
        if sys.byteorder != "little":
            keys.byteswap()
        return cls(keys)

    def to_bytes(self) -> bytes:
        if sys.byteorder == "little":
            return self._keys.tobytes()
        swapped = array("Q", self._keys)
        swapped.byteswap()
        return swapped.tobytes()

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, int):
            return False
        b = key >> self._shift
        index = self._index
        lo, hi = index[b], index[b + 1]
        keys = self._keys
        i = bisect_left(keys, key, lo, hi)
        return i < hi and keys[i] == key

    def contains_each(self, keys: Iterable[int]) -> list[bool]:
        """`k in self` for each key, in one loop (a wash checks millions)."""
        out: list[bool] = []
        put = out.append
        mine, index, shift, find = self._keys, self._index, self._shift, bisect_left
        for k in keys:
            b = k >> shift
            lo, hi = index[b], index[b + 1]
            i = find(mine, k, lo, hi)
            put(i < hi and mine[i] == k)
        return out

    def __iter__(self) -> Iterator[int]:
        return iter(self._keys)

    def with_changes(self, added: Iterable[int], removed: Iterable[int]) -> NumberSet:
        """A new set: this one plus `added`, less `removed` (a registry's change list).
        This one is left as it is: readers keep using it until the swap."""
        gone = NumberSet.build(removed)
        kept = (k for k in self._keys if k not in gone)
        new = NumberSet.build(added)
        return NumberSet(array("Q", _distinct(heapq.merge(kept, new._keys))))

    def nbytes(self) -> int:
        """Memory held: the keys and the bucket index."""
        return len(self._keys) * 8 + len(self._index) * self._index.itemsize


def _distinct(ascending: Iterable[int]) -> Iterator[int]:
    last = -1
    for k in ascending:
        if k != last:
            yield k
            last = k


def _bucket_index(keys: array[int], bits: int) -> array[int]:
    """index[b] = position of the first key whose top `bits` bits are >= b."""
    buckets = 1 << bits
    code = "I" if len(keys) < 1 << 32 else "Q"  # positions: 4 bytes while they fit
    index = array(code, bytes(array(code).itemsize * (buckets + 1)))
    n = len(keys)
    shift = 64 - bits
    pos = 0
    for b in range(buckets):
        index[b] = pos
        pos = bisect_left(keys, (b + 1) << shift, pos, n)
    index[buckets] = n
    return index
