"""washing: a 1,000,000-row calling list washed end to end through the API, where
no row needs a paid lookup (half the numbers are on a do-not-call list, the other
half already cached), beside Python's csv module reading and writing the same file
in the same run (`csv read+write rows/s`: the floor of any washer in Python).

- `rows/s`: upload, preview, run, download of the annotated file, over the rows;
  target at least 25,000.
- `daemon RSS growth MiB`: the daemon's resident memory after the job minus before
  the upload; target under 100.
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
import urllib.request
from pathlib import Path

from hlrd.compliance.list_formats import ReadOptions
from hlrd.compliance.list_key import ListKeyer
from hlrd.compliance.lists import ListFiles
from hlrd.config import StoreConfig
from hlrd.store.keys import load_key

from .procs import daemon, rss_mb, simulator, write_config

ROWS = 1_000_000
DISTINCT = 20_000  # numbers: the list repeats them, as campaign lists repeat leads


def _numbers() -> list[str]:
    return [f"4866{i:07d}" for i in range(DISTINCT)]


def _write_list(path: Path) -> None:
    numbers = _numbers()
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(["lead_id", "first_name", "last_name", "phone", "city"])
        for i in range(ROWS):
            w.writerow([f"L{i}", "Anna", "Nowak", "+" + numbers[i % DISTINCT], "Warszawa"])


def _csv_floor(path: Path, out: Path) -> float:
    started = time.perf_counter()
    with path.open(newline="", encoding="utf-8") as src, out.open("w", newline="") as dst:
        w = csv.writer(dst, delimiter=";")
        for row in csv.reader(src, delimiter=";"):
            w.writerow([*row, "allow", "1", ""])
    return ROWS / (time.perf_counter() - started)


def _call(port: int, method: str, path: str, data: bytes | None = None) -> dict[str, object]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    with urllib.request.urlopen(req, timeout=600) as r:
        result: dict[str, object] = json.load(r)
        return result


def _wait(port: int, job: str) -> str:
    state = ""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/jobs/{job}/events", timeout=3600) as r:
        for raw in r:
            if raw.startswith(b"data: "):
                state = json.loads(raw[6:])["state"]
    return state


def _wash(port: int, path: Path, out: Path) -> float:
    started = time.perf_counter()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/jobs",
        data=path.open("rb"),
        method="POST",
        headers={"Content-Type": "text/csv", "Content-Length": str(path.stat().st_size)},
    )
    with urllib.request.urlopen(req, timeout=600) as r:
        job = json.load(r)["id"]
    _wait(port, job)
    _call(port, "POST", f"/v1/jobs/{job}/start")
    if _wait(port, job) != "done":
        raise RuntimeError("the job did not finish")
    with (
        urllib.request.urlopen(
            f"http://127.0.0.1:{port}/v1/jobs/{job}/files/annotated.csv", timeout=600
        ) as r,
        out.open("wb") as f,
    ):
        while chunk := r.read(1 << 20):
            f.write(chunk)
    return ROWS / (time.perf_counter() - started)


def measure(runs: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}

    def add(metric: str, value: float) -> None:
        out.setdefault(metric, []).append(value)

    with tempfile.TemporaryDirectory(prefix="hlrd-bench-washing-") as tmp:
        source = Path(tmp) / "calls.csv"
        _write_list(source)
        with simulator(0) as (sim_port, _):
            config = write_config(sim_port, 256)
            data_dir = config.parent / "data"
            listed = Path(tmp) / "dnc.txt"
            listed.write_text("".join(f"+{n}\n" for n in _numbers()[::2]))
            keyer = ListKeyer(load_key(StoreConfig(data_dir=str(data_dir))))
            ListFiles(data_dir / "lists", keyer).import_file("dnc", listed, ReadOptions("lines"))
            with daemon(config) as (port, _, pid):
                for n in _numbers()[1::2]:  # the others cached: looked up once now
                    _call(port, "GET", f"/v1/lookup/{n}")
                for _ in range(runs):
                    add("csv read+write rows/s (floor)", _csv_floor(source, Path(tmp) / "f.csv"))
                    before = rss_mb(pid)
                    add("rows/s (target >= 25000)", _wash(port, source, Path(tmp) / "w.csv"))
                    add("daemon RSS growth MiB (target < 100)", rss_mb(pid) - before)
    return out
