"""A number's key in a do-not-call list: 64 bits of AES-256 over the number.

Lists hold tens of millions of numbers, so their key is 8 bytes, not the store's
32-byte HMAC, and a registry's import or a CSV wash keys millions at once. A number
(at most 15 digits) padded to one 16-byte block and encrypted under a secret key is a
pseudorandom function of the number — a keyed hash nobody without the key can invert
or recompute — and AES keys a whole batch in one call: ~0.2 µs a number, where a
keyed BLAKE2b or HMAC object per number costs 1-3 µs. (The block mode is ECB because
each number is exactly one block: nothing is encrypted here to be decrypted.)

At 10 million listed numbers the chance that a number not listed shares a listed
one's key is ~5e-13 a check, and such a collision can only block a call, never allow
one. The AES key is derived from the store's hash key (one secret to guard; a list
written under another key is refused, as the store refuses one) and differs from the
store's keys: a list's file cannot be joined with the answers'.
"""

from __future__ import annotations

import hmac
import sys
from array import array
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_FILL = "#"  # pads a number to a block; not a digit, so lengths never collide


LISTS = b"hlrd:do-not-call-lists"


class ListKeyer:
    __slots__ = ("_encrypt",)

    def __init__(self, secret: bytes, purpose: bytes = LISTS) -> None:
        """`purpose`: another one derives another key (the audit trail's numbers are
        not joinable with the lists')."""
        derived = hmac.digest(secret, purpose, "sha256")
        self._encrypt = Cipher(algorithms.AES(derived), modes.ECB()).encryptor().update

    def key(self, e164: str) -> int:
        """`e164`: 1-15 digits, no '+' (the caller normalised them)."""
        return int.from_bytes(self._encrypt(e164.ljust(16, _FILL).encode("ascii"))[:8], "big")

    def block(self, e164: str) -> bytes:
        """The whole 16-byte block: a 128-bit keyed hash, where 64 bits would let two
        numbers of a large store share a key (the audit trail finds a person's
        records by it)."""
        if len(e164) > 15 or not e164.isdigit():
            raise ValueError("a number is 1-15 digits")
        result: bytes = self._encrypt(e164.ljust(16, _FILL).encode("ascii"))
        return result

    def keys(self, numbers: Sequence[str]) -> array[int]:
        """`key` of each, in one call (a wash or an import): the same values."""
        if not numbers:
            return array("Q")
        blocks = self._encrypt("".join([n.ljust(16, _FILL) for n in numbers]).encode("ascii"))
        out = array("Q")
        out.frombytes(blocks)
        out = out[::2]  # the first 8 bytes of each block
        if sys.byteorder == "little":
            out.byteswap()  # big-endian, as key() reads them
        return out

    def check(self) -> str:
        """This key's fingerprint, kept with each list: a list written under another
        key is refused rather than silently matching nothing."""
        return f"{self.key('hlrd-key-check'):016x}"

    def __repr__(self) -> str:
        return "ListKeyer(<secret>)"
