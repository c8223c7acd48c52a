"""Process-level tuning for a long-running daemon."""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Move start-up objects out of the collector's way and collect young objects less often.

    A full (generation 2) collection walks every live object; with the codec tables,
    phonenumbers' metadata and the in-flight state that is tens of milliseconds,
    which showed up as the p99 of lookups. Freezing what exists after start-up and
    raising the generation-0 threshold keeps collections short and rare; reference
    counting still frees almost everything immediately.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
