"""`hlrd wash calls.csv -o washed.csv`: a calling list washed by the running daemon.

The file is uploaded as it is read, previewed (the counts and cost are printed before
anything is spent), run, watched through the job's event stream with a progress bar
on stderr, and the annotated file written to `-o`; the summary ends it. A job that
stops without finishing (cancelled, failed) exits 1.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, TextIO

from .config import Config

TIMEOUT_S = 30.0


def add_parser(sub: Any, default_config: str) -> None:
    wash = sub.add_parser("wash", help="wash a calling list (CSV) through the running daemon")
    wash.add_argument("file", type=Path)
    wash.add_argument("-o", "--output", type=Path, required=True, help="the annotated CSV")
    wash.add_argument("--column", default="", help="the phone column: header name or position")
    wash.add_argument("--policy", default="", help="the call policy (default: default)")
    wash.add_argument("--clean", type=Path, default=None, help="also the callable rows only")
    wash.add_argument("--config", default=default_config)


class _Daemon:
    def __init__(self, config: Config) -> None:
        host = config.http.host if config.http.host not in ("0.0.0.0", "::") else "127.0.0.1"
        self.base = f"http://{host}:{config.http.port}"
        self.token = config.http.auth_tokens[0] if config.http.auth_tokens else None

    def request(
        self, method: str, path: str, data: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        req = urllib.request.Request(self.base + path, data=data, method=method)
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        return urllib.request.urlopen(req, timeout=TIMEOUT_S)

    def json(self, method: str, path: str, **kw: Any) -> Any:
        with self.request(method, path, **kw) as r:
            return json.load(r)


def _bar(out: TextIO, event: dict[str, Any]) -> None:
    width = 40
    filled = int(width * event["percent"] / 100)
    total = event["rows_total"] or "?"
    out.write(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {event['percent']:5.1f}% "
        f"{event['rows_done']}/{total} rows ({event['state']})"
    )
    out.flush()


def _follow(daemon: _Daemon, job: str, out: TextIO, bar: bool) -> str:
    """The job's events until it stops moving; its last state."""
    state = "previewing"
    with daemon.request("GET", f"/v1/jobs/{job}/events") as r:
        for raw in r:
            line = raw.decode("utf-8").strip()
            if line.startswith("data: "):
                event = json.loads(line[6:])
                state = event["state"]
                if bar:
                    _bar(out, event)
    if bar:
        out.write("\n")
    return state


def run(config: Config, args: argparse.Namespace, out: TextIO = sys.stderr) -> int:
    daemon = _Daemon(config)
    query = {k: v for k, v in (("column", args.column), ("policy", args.policy)) if v}
    query["name"] = args.file.name
    try:
        size = args.file.stat().st_size
        with args.file.open("rb") as f:
            job = daemon.json(
                "POST",
                "/v1/jobs?" + urllib.parse.urlencode(query),
                data=f,
                headers={"Content-Type": "text/csv", "Content-Length": str(size)},
            )
        job_id = job["id"]
        layout = job["layout"]
        out.write(
            f"job {job_id}: phone column {layout['phone_column_name']!r} "
            f"({layout['detected_by']})\n"
        )
        _follow(daemon, job_id, out, bar=False)
        preview = daemon.json("GET", f"/v1/jobs/{job_id}")["preview"]
        out.write("preview: " + json.dumps(preview) + "\n")
        daemon.json("POST", f"/v1/jobs/{job_id}/start")
        state = _follow(daemon, job_id, out, bar=True)
        if state != "done":
            out.write(f"hlrd: the job ended {state}\n")
            return 1
        for name, target in (("annotated.csv", args.output), ("clean.csv", args.clean)):
            if target is not None:
                with (
                    daemon.request("GET", f"/v1/jobs/{job_id}/files/{name}") as r,
                    target.open("wb") as dst,
                ):
                    shutil.copyfileobj(r, dst)
        summary = daemon.json("GET", f"/v1/jobs/{job_id}")["summary"]
        print(json.dumps(summary, indent=2))
        return 0
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace")
        out.write(f"hlrd: {exc.code}: {body}\n")
        return 2
    except (OSError, ValueError, KeyError) as exc:
        out.write(f"hlrd: {exc} (is the daemon running? `hlrd run`)\n")
        return 2
