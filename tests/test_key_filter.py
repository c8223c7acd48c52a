"""The key filter may say "maybe" wrongly, never "absent" wrongly: a stored answer is
always found, and most numbers never seen skip the disk."""

from __future__ import annotations

import hashlib

from hlrd.cache.key_filter import KeyFilter


def _key(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest()  # as uniform as the HMAC keys


def test_a_stored_key_is_never_called_absent() -> None:
    f = KeyFilter(10_000)
    for i in range(10_000):
        f.add(_key(i))
    f.ready = True
    assert not any(f.absent(_key(i)) for i in range(10_000))
    unseen = sum(f.absent(_key(i)) for i in range(10_000, 20_000))
    assert unseen > 9_700  # about 1% false "maybe" at the sized capacity


def test_until_filled_every_key_may_be_there() -> None:
    f = KeyFilter(1000)
    assert not f.absent(_key(1))
