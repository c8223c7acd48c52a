"""`hlrd lists import|show|remove` and `hlrd dnc add|remove|show`: do-not-call lists
on the daemon's files.

An import reads the registry file, writes the list beside the store (keyed hashes
only) and prints what it is; a running daemon takes it on its next reload.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import urllib.error
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .cache_cli import ask_daemon
from .compliance.audit import AuditError, AuditTrail
from .compliance.consent import ErasureIncomplete
from .compliance.list_formats import FORMATS, ReadOptions
from .compliance.list_key import ListKeyer
from .compliance.lists import ListError, ListFiles, info_json
from .compliance.own_list import OwnList, OwnListFull
from .config import Config
from .domain.numbers import InvalidNumber, Msisdn, normalize
from .domain.times import iso_utc
from .store.base import StoreError
from .store.keys import load_key


def add_parser(sub: Any, default_config: str) -> None:
    lists = sub.add_parser("lists", help="do-not-call lists: import a registry file, show, remove")
    ls = lists.add_subparsers(dest="lists_command", required=True)
    imp = ls.add_parser("import", help="import (or replace) a list from a file")
    imp.add_argument("name", help="the list's name, e.g. tps, us_dnc, rpo, own")
    imp.add_argument("file", type=Path)
    imp.add_argument("--format", choices=FORMATS, default="lines")
    imp.add_argument("--region", default="", help="national numbers' country (TPS: GB, ...)")
    imp.add_argument("--column", default="", help="csv: header name or 1-based position")
    imp.add_argument("--delimiter", default="", help="csv: , ; or a tab (found when absent)")
    imp.add_argument("--version", default="", help="the registry's own version or date")
    imp.add_argument(
        "--max-age-days", type=float, default=None, help="stale after (TPS 28, FTC 31, RPO 15)"
    )
    imp.add_argument("--change", choices=("add", "delete"), default="", help="a change list")
    show = ls.add_parser("show", help="each list: size, version, age, freshness")
    rm = ls.add_parser("remove", help="remove a list")
    rm.add_argument("name")
    for p in (imp, show, rm):
        p.add_argument("--config", default=default_config)


def add_dnc_parser(sub: Any, default_config: str) -> None:
    dnc = sub.add_parser("dnc", help="the own do-not-call list: add, remove, show a number")
    ds = dnc.add_subparsers(dest="dnc_command", required=True)
    add = ds.add_parser(
        "add", help="put a number on it (a running daemon takes it within reload_s)"
    )
    add.add_argument("number")
    add.add_argument("--reason", required=True, help="why: complaint, objection, ...")
    add.add_argument("--source", default="cli")
    add.add_argument("--expires-days", type=float, default=None, help="default: never")
    for name, text in (("remove", "take a number off it"), ("show", "is a number on it, and why")):
        one = ds.add_parser(name, help=text)
        one.add_argument("number")
    for p in ds.choices.values():
        p.add_argument("--config", default=default_config)


def _number(config: Config, raw: str) -> Msisdn | None:
    """The number as the daemon reads it (landlines too: a list may hold any), or
    None after saying why."""
    try:
        return normalize(raw, config.numbers.default_region, mobile_only=False)
    except InvalidNumber as exc:
        print(f"hlrd: number: {exc.detail}", file=sys.stderr)
        return None


def run_dnc(config: Config, args: argparse.Namespace) -> int:
    msisdn = _number(config, args.number)
    if msisdn is None:
        return 2
    try:
        files = list_files(config)
        own = OwnList(files.directory / "own.sqlite3", files.keyer)
        if args.dnc_command == "add":
            expires = (
                own.clock() + args.expires_days * 86400 if args.expires_days is not None else None
            )
            entry = own.add(msisdn.e164, args.reason, args.source, expires)
            print(json.dumps({"listed": True, "entry": asdict(entry)}))
        elif args.dnc_command == "remove":
            print(json.dumps({"removed": own.remove(msisdn.e164)}))
        else:
            found = own.get(msisdn.e164)
            print(json.dumps({"listed": found is not None, "entry": found and asdict(found)}))
    except (OwnListFull, StoreError, OSError, ValueError) as exc:
        print(f"hlrd: {exc}", file=sys.stderr)
        return 2
    return 0


def add_erase_parser(sub: Any, default_config: str) -> None:
    erase = sub.add_parser(
        "erase", help="erase what is kept for a number (GDPR Art. 17), keep a suppression token"
    )
    erase.add_argument("number")
    erase.add_argument("--config", default=default_config)


def run_erase(config: Config, args: argparse.Namespace) -> int:
    """Through the running daemon (its memory forgets too), else on the files."""
    msisdn = _number(config, args.number)
    if msisdn is None:
        return 2
    try:
        status, body = ask_daemon(config, "DELETE", f"/v1/subjects/%2B{msisdn.e164}")
    except OSError as exc:
        if not _nobody_listens(exc):  # a daemon that is there but slow: not behind its back
            print(f"hlrd: the daemon did not answer ({exc}); try again", file=sys.stderr)
            return 2
        try:
            status, body = 200, asyncio.run(_erase_offline(config, msisdn.e164))
        except (
            OwnListFull,
            StoreError,
            ListError,
            OSError,
            AuditError,
            ErasureIncomplete,
            sqlite3.Error,
        ) as exc:
            print(f"hlrd: {exc} (erasing again finishes the job)", file=sys.stderr)
            return 2
    print(json.dumps(body, indent=2))
    return 0 if status == 200 else 2


def _nobody_listens(exc: OSError) -> bool:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return isinstance(reason, ConnectionRefusedError)


async def _erase_offline(config: Config, e164: str) -> dict[str, Any]:
    from .store.factory import open_store
    from .store.keys import open_keyer

    answers = 0
    if config.cache.enabled:
        keyer = await open_keyer(config.store)
        store = await open_store(config.store, retention_interval_s=None, key_check=keyer.check())
        try:
            answers = await store.delete(keyer.key(e164))
        finally:
            await store.close()
    files = list_files(config)
    OwnList(files.directory / "erased.sqlite3", files.keyer).add(e164, "erasure", "cli")
    own = OwnList(files.directory / "own.sqlite3", files.keyer).remove(e164)
    removed: dict[str, Any] = {"cached_answers": answers, "own_list_entries": int(own)}
    removed.update(_erase_compliance_records(config, e164))
    return {"erased": True, "removed": removed, "suppressed": True, "daemon": "not running"}


def _erase_compliance_records(config: Config, e164: str) -> dict[str, Any]:
    """Consent records (unless the legal hold keeps them) and the audit trail's link,
    as the daemon's erasure does (call_check.CallCheck.erase)."""
    from .compliance.consent import ConsentBook
    from .store.keys import NumberKeyer

    secret = load_key(config.store)
    keyer = NumberKeyer(secret)
    data_dir = Path(config.store.data_dir)
    book = ConsentBook(data_dir / "consent.sqlite3", keyer)
    hold_days = config.compliance.legal_hold_days
    hold_until = book.clock() + hold_days * 86400 if hold_days else None
    erased = book.erase(e164, hold_until)
    removed: dict[str, Any] = {
        "consent_records": erased.deleted,
        "consent_records_held": erased.held,
        "held_until": iso_utc(erased.held_until) if erased.held else None,
    }
    if config.compliance.audit:
        removed["audit_records_unlinked"] = AuditTrail.for_data_dir(data_dir, secret).unlink(e164)
    return removed


def list_files(config: Config) -> ListFiles:
    return ListFiles(Path(config.store.data_dir) / "lists", ListKeyer(load_key(config.store)))


def run(config: Config, args: argparse.Namespace) -> int:
    try:
        files = list_files(config)
        now = files.clock()
        if args.lists_command == "import":
            info = files.import_file(
                args.name,
                args.file,
                ReadOptions(args.format, args.region, args.column, args.delimiter),
                version=args.version,
                max_age_days=args.max_age_days,
                change=args.change,
                default_region=config.numbers.default_region,
            )
            print(json.dumps(info_json(info, now), indent=2))
        elif args.lists_command == "show":
            shown = [info_json(loaded.info, now) for loaded in files.load_all().values()]
            print(json.dumps({"lists": shown}, indent=2))
        elif not files.remove(args.name):
            print(f"hlrd: no list named {args.name!r}", file=sys.stderr)
            return 2
        else:
            print(json.dumps({"removed": args.name}))
    except (ListError, StoreError) as exc:
        print(f"hlrd: {exc}", file=sys.stderr)
        return 2
    return 0
