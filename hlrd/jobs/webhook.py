"""A job's completion webhook: the summary POSTed to the URL the job was created with,
signed, and retried until the receiver takes it.

The signature is `X-Hlrd-Signature: sha256=<hex>`, an HMAC-SHA256 under
`[jobs] webhook_secret` (the receiver holds the same) of `<X-Hlrd-Timestamp>.<body>`:
the time is signed too, so a recorded delivery cannot be replayed as a new one.
Bounded: a few attempts with growing pauses, each with a timeout; a receiver that
never answers costs one task per job for at most the sum of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson
import structlog

log = structlog.get_logger("hlrd.jobs")

ATTEMPTS_BACKOFF_S: tuple[float, ...] = (0.0, 1.0, 5.0, 30.0, 120.0)
TIMEOUT_S = 10.0
MAX_URL = 2048


def check_url(url: str) -> str | None:
    """Why `url` cannot be a webhook, or None."""
    if len(url) > MAX_URL:
        return f"webhook: at most {MAX_URL} characters"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "webhook: an http:// or https:// URL"
    return None


def signature(key: bytes, timestamp: str, body: bytes) -> str:
    """What a receiver recomputes: HMAC-SHA256 over `<timestamp>.<body>`."""
    mac = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


async def deliver(
    url: str,
    payload: dict[str, Any],
    key: bytes,
    backoff_s: Sequence[float] = ATTEMPTS_BACKOFF_S,
) -> bool:
    """True once the receiver answered 2xx; False after the last attempt."""
    body = orjson.dumps(payload)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as http:
        for attempt, pause in enumerate(backoff_s, start=1):
            await asyncio.sleep(pause)
            stamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-Hlrd-Timestamp": stamp,
                "X-Hlrd-Signature": signature(key, stamp, body),
                "X-Hlrd-Attempt": str(attempt),
            }
            try:
                async with http.post(url, data=body, headers=headers) as r:
                    if 200 <= r.status < 300:
                        log.info("job.webhook_delivered", job=payload.get("job"), attempt=attempt)
                        return True
                    problem = f"HTTP {r.status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                problem = type(exc).__name__
            log.warning(
                "job.webhook_failed", job=payload.get("job"), attempt=attempt, problem=problem
            )
    return False
