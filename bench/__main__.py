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

SCENARIOS = ["codec", "smpp_upstream", "http_check", "smpp_frontend"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("scenarios", nargs="*", metavar="scenario", help=", ".join(SCENARIOS))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--out", default="bench/results/latest.json")
    args = p.parse_args(argv)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenario {sorted(unknown)[0]!r}; choose from {', '.join(SCENARIOS)}")
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
    print(f"| {'scenario':<14} | {'metric':<52} | {'median':>10} | {'min':>10} | {'max':>10} |")
    print(f"|{'-' * 16}|{'-' * 54}|{'-' * 12}|{'-' * 12}|{'-' * 12}|")
    for name, metrics in report.items():
        for metric, v in metrics.items():
            print(
                f"| {name:<14} | {metric:<52} | {v['median']:>10.2f} | {v['min']:>10.2f} "
                f"| {v['max']:>10.2f} |"
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": sys.version.split()[0], "machine": platform.machine(), "time": time.time()}
    out.write_text(json.dumps({"meta": meta, "runs": args.runs, "results": report}, indent=2))
    print(f"written {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
