"""`hlrd cache stats` and `hlrd cache purge`: through the running daemon when there is
one (so its memory tier forgets too), else on the store's files directly."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .config import Config

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def add_parser(sub: Any, default_config: str) -> None:
    cache = sub.add_parser("cache", help="what the result cache holds; purge it")
    cs = cache.add_subparsers(dest="cache_command", required=True)
    stats = cs.add_parser("stats", help="counts by kind and provider, size, age")
    stats.add_argument("--config", default=default_config)
    purge = cs.add_parser("purge", help="forget answers")
    which = purge.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every answer")
    which.add_argument("--older-than", metavar="AGE", help="e.g. 3600, 90m, 12h, 7d")
    which.add_argument("--number", help="one number's answers (any format the API takes)")
    purge.add_argument("--config", default=default_config)


def seconds(text: str) -> int:
    m = _DURATION.match(text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"{text!r}: an age such as 3600, 90m, 12h or 7d")
    return int(m.group(1)) * _UNIT_S[m.group(2)]


def run(config: Config, args: argparse.Namespace) -> int:
    if args.cache_command == "stats":
        method, path = "GET", "/v1/cache"
    elif args.number:
        method, path = "DELETE", "/v1/cache/" + urllib.parse.quote(args.number, safe="")
    elif args.all:
        method, path = "DELETE", "/v1/cache?all=1"
    else:
        try:
            age = seconds(args.older_than)
        except argparse.ArgumentTypeError as exc:
            print(f"hlrd: {exc}", file=sys.stderr)
            return 2
        method, path = "DELETE", f"/v1/cache?older_than={age}"
    try:
        status, body = ask_daemon(config, method, path)
    except OSError:  # no daemon: the store's files, directly
        status, body = asyncio.run(_offline(config, args))
    print(json.dumps(body, indent=2))
    return 0 if status == 200 else 2


def ask_daemon(config: Config, method: str, path: str) -> tuple[int, Any]:
    host = config.http.host if config.http.host not in ("0.0.0.0", "::") else "127.0.0.1"
    req = urllib.request.Request(f"http://{host}:{config.http.port}{path}", method=method)
    if config.http.auth_tokens:
        req.add_header("Authorization", f"Bearer {config.http.auth_tokens[0]}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


async def _offline(config: Config, args: argparse.Namespace) -> tuple[int, Any]:
    from .cache.answers import AnswerCache
    from .domain.numbers import InvalidNumber, normalize
    from .metrics import Metrics
    from .store.factory import open_store
    from .store.keys import open_keyer

    keyer = await open_keyer(config.store)
    store = await open_store(config.store, retention_interval_s=None, key_check=keyer.check())
    try:
        cache = AnswerCache(config.cache, store, keyer.key, Metrics())
        if args.cache_command == "stats":
            return 200, {**(await cache.stats()), "daemon": "not running"}
        if args.number:
            try:
                n = normalize(args.number, config.numbers.default_region, False)
            except InvalidNumber as exc:
                return 400, {"error": {"code": "invalid_number", "message": exc.detail}}
            return 200, {"removed": await cache.forget(n.e164)}
        before = None if args.all else cache.clock() - seconds(args.older_than)
        return 200, {"removed": await cache.purge(before)}
    finally:
        await store.close()
