"""`hlrd-sim`: run the simulator standalone until Ctrl-C / SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import structlog

from hlrd.logging_setup import configure_logging
from hlrd.runtime import tune_gc

from .controller import Simulator
from .scenario import ScenarioError, load_scenario

log = structlog.get_logger("simulator")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hlrd-sim", description="SMSC/HLR lookup simulator")
    p.add_argument("--scenario", required=True, help="scenario TOML file")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--smpp-port", type=int, default=2775)
    p.add_argument("--http-port", type=int, default=None, help="also serve the JSON HLR API")
    p.add_argument("--log-format", choices=("auto", "json", "console"), default="auto")
    return p


async def _run(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(args.scenario)
    except (OSError, ScenarioError) as exc:
        print(f"hlrd-sim: {exc}", file=sys.stderr)
        return 2
    sim = Simulator(scenario, args.host, args.smpp_port, args.http_port)
    await sim.start()
    tune_gc()
    log.info(
        "sim.listening",
        smpp=f"{args.host}:{sim.smpp_port}",
        http=f"{args.host}:{sim.http_port}" if sim.http_port else None,
        scenario=scenario.name,
        rules=len(scenario.rules),
        system_id=scenario.smpp.system_id,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("sim.stopping")
    await sim.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.log_format)
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
