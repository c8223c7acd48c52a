"""`hlrd audit verify|show|export` and `hlrd consent show`: the compliance records on
the daemon's files, for the compliance officer and the regulator.

These read the files directly (a running daemon need not be asked: SQLite lets a
reader in beside the writer) with the key the daemon uses. `verify` exits 1 when the
chain is broken, naming the first record at fault; give it the head the daemon last
logged (`audit.head`: seq and mac) to also detect records cut off the end.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from .compliance.audit import AuditError, AuditTrail, head_text, parse_head
from .compliance.consent import ConsentBook
from .config import Config
from .domain.numbers import InvalidNumber, normalize
from .store.base import StoreError
from .store.keys import NumberKeyer, load_key


def add_parser(sub: Any, default_config: str) -> None:
    audit = sub.add_parser("audit", help="the audit trail of decisions: verify, show, export")
    au = audit.add_subparsers(dest="audit_command", required=True)
    verify = au.add_parser("verify", help="check the chain: exit 1 if a record was altered")
    verify.add_argument(
        "--head", default="", help="SEQ:MAC the daemon logged (audit.head): detects a cut end"
    )
    show = au.add_parser("show", help="a number's decisions (a data subject's request)")
    show.add_argument("number")
    show.add_argument("--limit", type=int, default=1000)
    export = au.add_parser("export", help="decisions in a time range, as JSON lines")
    export.add_argument("--since", default="", help="ISO-8601 with offset (default: the first)")
    export.add_argument("--until", default="", help="ISO-8601 with offset (default: now)")
    export.add_argument("--number", default="", help="only this number's")
    export.add_argument("-o", "--output", type=Path, required=True)
    consent = sub.add_parser("consent", help="consent records: a number's evidence")
    cs = consent.add_subparsers(dest="consent_command", required=True)
    evidence = cs.add_parser("show", help="every consent record of a number (for a regulator)")
    evidence.add_argument("number")
    for p in (verify, show, export, evidence):
        p.add_argument("--config", default=default_config)


def _trail(config: Config) -> AuditTrail:
    return AuditTrail.for_data_dir(Path(config.store.data_dir), load_key(config.store))


def _e164(config: Config, raw: str) -> str:
    try:
        return normalize(raw, config.numbers.default_region, mobile_only=False).e164
    except InvalidNumber as exc:
        raise ValueError(f"number: {exc.detail}") from exc


def _instant(raw: str, name: str, default: float) -> float:
    if not raw:
        return default
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise ValueError(f"--{name}: an ISO-8601 date and time with its offset")
    return at.timestamp()


def _head(raw: str) -> tuple[int, str] | None:
    return parse_head(raw) if raw else None


def run(config: Config, args: argparse.Namespace) -> int:
    try:
        if args.command == "consent":
            secret = load_key(config.store)
            book = ConsentBook(Path(config.store.data_dir) / "consent.sqlite3", NumberKeyer(secret))
            print(json.dumps(book.evidence(_e164(config, args.number)), indent=2))
            return 0
        trail = _trail(config)
        if args.audit_command == "verify":
            found = trail.verify(_head(args.head))
            print(
                json.dumps(
                    {
                        "ok": found.ok,
                        "records": found.records,
                        "first_bad_seq": found.first_bad_seq,
                        "problem": found.problem,
                        # Keep it off this machine: `--head` then detects a cut end.
                        "head": head_text(found.head) if found.head is not None else None,
                    }
                )
            )
            return 0 if found.ok else 1
        if args.audit_command == "show":
            records = trail.by_number(_e164(config, args.number), args.limit)
            print(json.dumps({"records": records}, indent=2))
            return 0
        since = _instant(args.since, "since", 0.0)
        until = _instant(args.until, "until", float("inf"))
        number = _e164(config, args.number) if args.number else None
        written = trail.export(args.output, since, until, number)
        print(json.dumps({"exported": written, "file": str(args.output)}))
        return 0
    except (AuditError, StoreError, OSError, ValueError) as exc:
        print(f"hlrd: {exc}", file=sys.stderr)
        return 2
