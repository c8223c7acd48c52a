"""Process-level tuning for a long-running daemon."""

from __future__ import annotations

import gc

# Generation-0 threshold: three times the default. The older generations keep their
# defaults (10, 10); see tune_gc for why they must.
GEN0_THRESHOLD = 2_000


def tune_gc() -> None:
    """Move start-up objects out of the collector's way; keep collecting cycles promptly.

    A full (generation 2) collection walks every live object; with the codec tables
    and phonenumbers' metadata that was tens of milliseconds, which showed up as the
    p99 of lookups. Freezing what exists after start-up takes those objects out of
    every collection, which is what matters for latency.

    The thresholds were once raised to (50_000, 50, 100) as well. That made any
    cyclic garbage live for hundreds of millions of allocations: a peer sending
    600,000 bad PDUs, each leaving a traceback cycle (since fixed), took the daemon
    from 43 to 460 MiB and left 130 MiB held (2,000/50/100: 874 MiB, still held;
    50,000/10/10: 312 MiB peak; 2,000/10/10: 103 MiB peak, 77 after; no tuning at
    all: 84/70). The smpp-frontend benchmark showed no difference in lookups/s or
    p99 between (50_000, 50, 100), (10_000, 10, 10), (2_000, 10, 10) and the
    defaults beyond run-to-run noise, so the next cycle we fail to prevent costs
    about what it would without tuning.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, 10, 10)
