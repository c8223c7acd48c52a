"""http-check-store: what remembering answers costs a live lookup, measured against
the same daemon with its cache switched off, in the same run.

Each run gives two daemons from this tree the same work: DISTINCT_ANSWERS checks of
numbers never asked before (`/v1/check/{n}?format=digit`, wrk as in http_check), so
every check is a live lookup whose answer the first daemon also keeps (memory tier
and SQLite store: HMAC key, payload, a row written by its writer thread) and the
second does not (`[cache] enabled = false`). The daemons' CPU, all threads, divided
by the lookups they answered gives the CPU per lookup of each; `with store / without`
is the figure issue #11 holds to 1.10. The two alternate within a run, so drift in
the machine's speed reaches both. (Numbers are drawn from 10 million: about 0.5% of
100,000 repeat one drawn before, a cache hit for the first daemon.) With
HLRD_BENCH_BASELINE_SRC set to an older source tree, a third daemon from that tree
(default config) answers the same numbers: the cost against the daemon before the
cache existed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from . import procs
from .http_check import fresh_numbers, wrk_requests
from .procs import cpu_seconds, daemon, rss_mb, simulator, write_config

# A source tree from before the cache (`git worktree add /tmp/hlrd-pre 685e514`):
# when set, its daemon answers the same numbers too, the "today".
BASELINE_ENV = "HLRD_BENCH_BASELINE_SRC"

DISTINCT_ANSWERS = 100_000
CHUNK_S = 10  # wrk runs this long at a time, fresh numbers each, until enough answers


def _answer(port: int, pid: int, first_run: int) -> tuple[float, int]:
    """(daemon CPU s, lookups answered) for at least DISTINCT_ANSWERS fresh numbers."""
    cpu = cpu_seconds(pid)
    done = 0
    run = first_run
    while done < DISTINCT_ANSWERS:
        done += wrk_requests(port, fresh_numbers(run), CHUNK_S)
        run += 1
    return cpu_seconds(pid) - cpu, done


def measure(runs: int) -> dict[str, list[float]]:
    if shutil.which("wrk") is None:
        raise SystemExit("http_check_store needs wrk: apt-get install -y wrk")
    out: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        out.setdefault(key, []).append(value)

    daemons: list[tuple[str, bool, Path]] = [
        ("with store", True, procs.DAEMON_SRC),
        ("without", False, procs.DAEMON_SRC),
    ]
    if os.environ.get(BASELINE_ENV):
        daemons.append(("tree before the cache", True, Path(os.environ[BASELINE_ENV])))
    for r in range(runs):
        per: dict[str, float] = {}
        for name, cache, src in daemons:
            with simulator(0) as (sim_port, _):
                config = write_config(sim_port, 256, cache=cache)
                with daemon(config, src) as (http_port, _, pid):
                    # Both daemons get the same numbers (fresh for this run).
                    cpu, done = _answer(http_port, pid, first_run=1000 + r * 100)
                    per[name] = cpu / done * 1e6
                    add(f"daemon cpu us/lookup {name}", per[name])
                    add(f"lookups answered {name}", done)
                    add(f"daemon RSS MiB after, {name}", rss_mb(pid))
        add("with store / without (target <= 1.10)", per["with store"] / per["without"])
        if "tree before the cache" in per:
            add(
                "with store / tree before the cache",
                per["with store"] / per["tree before the cache"],
            )
    return out
