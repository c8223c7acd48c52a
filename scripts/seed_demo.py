"""`make run`'s demo data, put in through the daemon's own API: a small opt-out list
(config/demo-registry.txt, imported as `robinson`) and config/demo-calls.csv washed
as a job, so the page the printed URL opens has a list, a finished wash with its
charts and its downloads. Safe to run again: the list is re-imported (same numbers),
the job is created with an Idempotency-Key and started only if it has not run.

Standard library only; the daemon's address is the first argument.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / "config"
WAIT_S = 60.0


def call(base: str, method: str, path: str, body: bytes | None = None) -> dict[str, object]:
    req = urllib.request.Request(base + path, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "text/plain; charset=utf-8")
        if path.startswith("/v1/jobs"):
            req.add_header("Idempotency-Key", "make-run-demo-calls")
    with urllib.request.urlopen(req, timeout=30) as r:
        answer: dict[str, object] = json.load(r)
        return answer


def settled(base: str, path: str, busy: tuple[str, ...]) -> dict[str, object]:
    """Polls `path` until its state is not one of `busy` (bounded)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        got = call(base, "GET", path)
        if got["state"] not in busy or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def main(base: str) -> int:
    registry = (CONFIG / "demo-registry.txt").read_bytes()
    started = call(base, "POST", "/v1/lists/robinson/import?version=demo", registry)
    settled(base, f"/v1/lists/imports/{started['id']}", ("receiving", "importing"))
    calls = (CONFIG / "demo-calls.csv").read_bytes()
    job = call(base, "POST", "/v1/jobs?name=Demo%3A%20December%20campaign", calls)
    job = settled(base, f"/v1/jobs/{job['id']}", ("previewing",))
    if job["state"] == "ready":
        call(base, "POST", f"/v1/jobs/{job['id']}/start")
    job = settled(base, f"/v1/jobs/{job['id']}", ("running",))
    print(f"  demo data: list 'robinson' imported, demo-calls.csv washed ({job['state']})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"))
