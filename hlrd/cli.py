"""`hlrd` command line: run the daemon, one-shot lookups, config checks."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import Any

from . import __version__, audit_cli, cache_cli, lists_cli, wash_cli
from .compliance.lists import ListError
from .config import Config, ConfigError, load_config
from .daemon import Daemon, ListenError
from .domain.numbers import InvalidNumber
from .logging_setup import configure_logging
from .store.base import StoreError

DEFAULT_CONFIG = "config/hlrd.toml"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hlrd", description="HLR/roaming lookup daemon")
    p.add_argument("--version", action="version", version=f"hlrd {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", default=DEFAULT_CONFIG)
    for name, text in (("lookup", "one HLR lookup, printed as JSON"), ("check", "may we call?")):
        c = sub.add_parser(name, help=text)
        c.add_argument("number")
        c.add_argument("--config", default=DEFAULT_CONFIG)
    cache_cli.add_parser(sub, DEFAULT_CONFIG)
    lists_cli.add_parser(sub, DEFAULT_CONFIG)
    lists_cli.add_dnc_parser(sub, DEFAULT_CONFIG)
    lists_cli.add_erase_parser(sub, DEFAULT_CONFIG)
    audit_cli.add_parser(sub, DEFAULT_CONFIG)
    wash_cli.add_parser(sub, DEFAULT_CONFIG)
    cfg = sub.add_parser("config", help="configuration tools")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    chk = cfg_sub.add_parser("check", help="validate a config file")
    chk.add_argument("file")
    return p


def _load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"hlrd: config error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


async def _one_shot(config: Config, number: str, check: bool) -> int:
    daemon = Daemon(config)
    try:
        msisdn = daemon.service.normalize(number)
    except InvalidNumber as exc:
        print(
            json.dumps(
                {
                    "error": {
                        "code": "invalid_number",
                        "field": "number",
                        "reason": exc.problem.value,
                        "message": exc.detail,
                    }
                }
            ),
        )
        return 2
    for p in daemon.providers:
        await p.start()
    try:
        # A lookup fails at once when no bind is up; one shot waits for the first bind
        # (as long as a provider's connect may take) instead of failing a cold start.
        wait_s = max(p.cfg.connect_timeout_s for p in daemon.providers)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(daemon.service.wait_ready(), wait_s)
        if check:
            c = await daemon.service.check(msisdn)
            out: dict[str, Any] = {
                "decision": c.decision.verdict.value,
                "call": c.decision.call,
                "reasons": list(c.decision.reasons),
                "lookup": c.result.to_dict(),
            }
        else:
            out = (await daemon.service.lookup(msisdn)).to_dict()
    finally:
        for p in daemon.providers:
            await p.stop()
    print(json.dumps(out, indent=2))
    if check:
        return 0 if out["call"] else 1
    return 0 if out["outcome"] in ("ok", "partial") else 3


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "config":
        try:
            load_config(args.file)
        except ConfigError as exc:
            print(f"{args.file}: {exc}", file=sys.stderr)
            return 2
        print(f"{args.file}: ok")
        return 0
    config = _load(args.config)
    if args.command == "run":
        lg = config.logging
        configure_logging(lg.format, lg.level, max_line_bytes=lg.max_line_bytes)
        try:
            asyncio.run(Daemon(config).run_until_signalled())
        except (ListenError, StoreError, ListError) as exc:
            print(f"hlrd: {exc}", file=sys.stderr)
            return 2
        return 0
    configure_logging("json", "WARNING")
    if args.command == "cache":
        return cache_cli.run(config, args)
    if args.command == "lists":
        return lists_cli.run(config, args)
    if args.command == "dnc":
        return lists_cli.run_dnc(config, args)
    if args.command == "erase":
        return lists_cli.run_erase(config, args)
    if args.command in ("audit", "consent"):
        return audit_cli.run(config, args)
    if args.command == "wash":
        return wash_cli.run(config, args)
    return asyncio.run(_one_shot(config, args.number, args.command == "check"))


if __name__ == "__main__":
    sys.exit(main())
