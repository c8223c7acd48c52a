"""`python -m bench [scenario ...]`: run benchmark scenarios, print a table, write JSON.

A scenario is a module of this package with `measure(runs) -> {metric: [samples]}`;
it sets up what it needs (processes on 127.0.0.1) once and takes `runs` samples of
each metric. Adding one is a module and a line in SCENARIOS. Every figure is
reported as the median of its samples, with min and max.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import statistics
import sys
import time
from pathlib import Path

from hlrd.logging_setup import configure_logging
from hlrd.runtime import tune_gc

from . import procs

SCENARIOS = [
    "codec",
    "smpp_upstream",
    "http_check",
    "http_check_cached",
    "http_check_store",
    "http_upstream",
    "lists",
    "washing",
    "store",
    "smpp_frontend",
    "abuse",
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("scenarios", nargs="*", metavar="scenario", help=", ".join(SCENARIOS))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--out", default="bench/results/latest.json")
    p.add_argument(
        "--daemon-src",
        metavar="PATH",
        help="run the daemon subprocesses from this hlrd source tree (e.g. a git worktree "
        "of an older commit); the bench, simulator and clients still run from this one",
    )
    args = p.parse_args(argv)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenario {sorted(unknown)[0]!r}; choose from {', '.join(SCENARIOS)}")
    if args.daemon_src:
        src = Path(args.daemon_src).resolve()
        if not (src / "hlrd").is_dir():
            p.error(f"--daemon-src {src}: no hlrd package there")
        imported = Path(procs.daemon_hlrd_path(src)).resolve()
        if not imported.is_relative_to(src):
            p.error(f"a daemon started from {src} would import hlrd from {imported}")
        procs.DAEMON_SRC = src
    daemon_hlrd = procs.daemon_hlrd_path(procs.DAEMON_SRC)
    print(f"# daemon imports hlrd from {daemon_hlrd}", file=sys.stderr)
    configure_logging("json", "WARNING")
    tune_gc()
    report: dict[str, dict[str, dict[str, float]]] = {}
    for name in args.scenarios or SCENARIOS:
        module = importlib.import_module(f"bench.{name}")
        started = time.perf_counter()
        samples: dict[str, list[float]] = module.measure(args.runs)
        report[name] = {
            metric: {
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
            }
            for metric, values in samples.items()
        }
        print(f"# {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    width = max([52] + [len(m) for metrics in report.values() for m in metrics])
    head = f"| {'scenario':<14} | {'metric':<{width}} |"
    print(head + f" {'median':>10} | {'min':>10} | {'max':>10} |")
    print(f"|{'-' * 16}|{'-' * (width + 2)}|{'-' * 12}|{'-' * 12}|{'-' * 12}|")
    for name, metrics in report.items():
        for metric, v in metrics.items():
            print(
                f"| {name:<14} | {metric:<{width}} | {v['median']:>10.2f} | {v['min']:>10.2f} "
                f"| {v['max']:>10.2f} |"
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "time": time.time(),
        "daemon_hlrd": daemon_hlrd,
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }
    out.write_text(json.dumps({"meta": meta, "runs": args.runs, "results": report}, indent=2))
    print(f"written {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
