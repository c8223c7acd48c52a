"""`python -m bench [scenario ...]`: run benchmark scenarios, print a table, write JSON.

Each scenario is a module in this package with `run() -> dict[str, float]`; add one
by adding a module and a line to SCENARIOS. Every figure is the median of several
runs, reported with min and max.
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

SCENARIOS = ["codec"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("scenarios", nargs="*", default=SCENARIOS, choices=SCENARIOS)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out", default="bench/results/latest.json")
    args = p.parse_args(argv)
    report: dict[str, dict[str, dict[str, float]]] = {}
    for name in args.scenarios:
        module = importlib.import_module(f"bench.{name}")
        runs = [module.run() for _ in range(args.runs)]
        report[name] = {
            metric: {
                "median": statistics.median(r[metric] for r in runs),
                "min": min(r[metric] for r in runs),
                "max": max(r[metric] for r in runs),
            }
            for metric in runs[0]
        }
    print(f"{'scenario':<10} {'metric':<40} {'median':>10} {'min':>10} {'max':>10}")
    for name, metrics in report.items():
        for metric, v in metrics.items():
            print(
                f"{name:<10} {metric:<40} {v['median']:>10.2f} {v['min']:>10.2f} {v['max']:>10.2f}"
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": sys.version.split()[0], "machine": platform.machine(), "time": time.time()}
    out.write_text(json.dumps({"meta": meta, "results": report}, indent=2))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
