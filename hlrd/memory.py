"""Giving freed memory back to the system after a big piece of work (a job).

glibc keeps what a process freed in its heaps (one per thread that allocated) for
reuse; after washing a million rows that is tens of MB the daemon no longer needs
but still holds. `malloc_trim(0)` returns it. Elsewhere (another C library) it
does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable

_trim: Callable[[int], int] | None = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _trim = _libc.malloc_trim
except (OSError, AttributeError):
    _trim = None


def release_memory() -> None:
    """Collect cycles, then hand the C heaps' free pages back (blocking: a thread)."""
    gc.collect()
    if _trim is not None:
        _trim(0)
