"""washing: a 1,000,000-row calling list washed end to end through the API, where
no row needs a paid lookup (half the numbers are on a do-not-call list, the other
half already cached), beside Python's csv module reading and writing the same file
in the same run (`csv read+write rows/s`: the floor of any washer in Python); then
a list where every row needs a paid lookup, at the provider's configured rate.

- `rows/s`: upload, preview, run, download of the annotated file, over the rows;
  target at least 25,000.
- `daemon RSS growth MiB`: the daemon's resident memory after the job minus before
  the upload; target under 100. `daemon RSS peak growth MiB`: the most it held
  above that during the job (sampled every 20 ms), what a host must have room for.

Paid lookups (`paid, HLR <n> ms: ...`): a job of PAID_ROWS rows whose numbers are
all distinct and never seen (a fresh daemon and store; +4866 5000000 on, Polish
mobiles the simulator answers from its derived subscribers, ~85% live, the rest
absent/unknown/barred, all with a normal receipt), so each row is one submit_sm to
the provider. The provider is the simulator, in this process on a thread of its own
(the bench's main thread only waits on the job's event stream), with no rate cap of
its own and its subscribers answering after <n> ms: 0, and 200 as a real HLR might
(an SS7 query takes hundreds of ms). The daemon binds it once, window 256, with the
provider's `tps = PAID_TPS` (the `[[upstream.providers]]` key that sets the daemon's
`AdaptiveRate`; `write_config`'s 100000 replaced), so the daemon's rate limiter, not
the simulator, is the ceiling. Each run: upload, wait for the preview (/events),
start, wait until done (/events), then read the job (`started_at`, `finished_at`,
its summary).

- `paid lookups/s`: submit_sm the simulator received between the job's `started_at`
  and `finished_at` (the washer stamps them as it enters and leaves the running
  phase), over that span. Counted at the provider, each submit stamped as it arrives
  (the simulator's submit listener), so it is what the provider really got, not
  what the daemon meant to send. The window is the job's whole run phase, not a
  hand-picked steady stretch: the chunk boundaries (each chunk's last answers
  awaited, its rows written and fsynced, the next chunk read) count against it, as
  they do for a user, and so do the start-up and the wait for the last answers (a
  few ms, and <n> ms, of ~25 s). The run checks that the simulator saw exactly one
  submit per row, all inside the window, and that the job's summary counts every row
  as a paid lookup (a cache hit would make the figure meaningless).
- `configured rate/s`: PAID_TPS.
- `provider rate share %`: `paid lookups/s` over `configured rate/s`; target at
  least 95.
- `longest submit pause ms`: the longest gap between two submits (or the window's
  ends) at the provider. The limiter sends each 100 ms quota (PAID_TPS / 10) back to
  back, so ~100 ms is its own rhythm; a longer pause is the provider left idle: the
  washer had no lookup queued (a chunk boundary: its last answers, <n> ms away, and
  its writes, before the next chunk's lookups start).
"""

from __future__ import annotations

import asyncio
import csv
import json
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from hlrd.compliance.list_formats import ReadOptions
from hlrd.compliance.list_key import ListKeyer
from hlrd.compliance.lists import ListFiles
from hlrd.config import StoreConfig
from hlrd.store.keys import load_key
from simulator.controller import Simulator
from simulator.scenario import load_scenario

from .procs import daemon, rss_mb, simulator, write_config, write_scenario

ROWS = 1_000_000
DISTINCT = 20_000  # numbers: the list repeats them, as campaign lists repeat leads
PAID_TPS = 200  # the provider's configured rate; the simulator answers far faster
PAID_ROWS = 5_000  # ~25 s of lookups at PAID_TPS: the start-up is a small part
PAID_LATENCIES_MS = (0, 200)  # how long the simulated HLR takes to answer
PAID_FIRST = 5_000_000  # the paid numbers: 4866 5000000 on, clear of the others


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


def _upload(port: int, path: Path) -> str:
    """A job of the CSV at `path`; its id."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/jobs",
        data=path.open("rb"),
        method="POST",
        headers={"Content-Type": "text/csv", "Content-Length": str(path.stat().st_size)},
    )
    with urllib.request.urlopen(req, timeout=600) as r:
        job: str = json.load(r)["id"]
        return job


def _run(port: int, job: str) -> None:
    """Preview, start, and wait until the job is done."""
    _wait(port, job)
    _call(port, "POST", f"/v1/jobs/{job}/start")
    if _wait(port, job) != "done":
        raise RuntimeError(f"the job did not finish: {_call(port, 'GET', f'/v1/jobs/{job}')}")


def _wash(port: int, path: Path, out: Path) -> float:
    started = time.perf_counter()
    job = _upload(port, path)
    _run(port, job)
    with (
        urllib.request.urlopen(
            f"http://127.0.0.1:{port}/v1/jobs/{job}/files/annotated.csv", timeout=600
        ) as r,
        out.open("wb") as f,
    ):
        while chunk := r.read(1 << 20):
            f.write(chunk)
    return ROWS / (time.perf_counter() - started)


# -- paid lookups ----------------------------------------------------------------------


@contextmanager
def _counting_simulator(latency_ms: float) -> Iterator[tuple[int, list[float]]]:
    """(smpp port, the time.time() of every submit_sm it received) of a simulator
    running on a thread of this process: the same scenario as `procs.simulator`."""
    scenario = load_scenario(write_scenario(latency_ms))
    sim = Simulator(scenario, "127.0.0.1", 0)
    submits: list[float] = []
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="simulator", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(sim.start(), loop).result(30)
        assert sim.smsc is not None
        sim.smsc.submit_listeners.append(lambda _number: submits.append(time.time()))
        yield sim.smpp_port, submits
    finally:
        try:
            asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)
            loop.close()


def _paid_config(sim_port: int) -> Path:
    """`write_config`'s daemon, its provider's rate set to PAID_TPS."""
    config = write_config(sim_port, 256)
    text = config.read_text()
    provider_rate = "\ntps = 100000\n"
    if text.count(provider_rate) != 1:
        raise RuntimeError(f"cannot find the provider's tps in {config}:\n{text}")
    config.write_text(text.replace(provider_rate, f"\ntps = {PAID_TPS}\n"))
    return config


def _write_paid_list(path: Path, first: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(["lead_id", "first_name", "last_name", "phone", "city"])
        for i in range(PAID_ROWS):
            w.writerow([f"P{i}", "Anna", "Nowak", f"+4866{first + i:07d}", "Warszawa"])


def _stamp(iso: object) -> float:
    if not isinstance(iso, str):
        raise RuntimeError(f"the job has no time stamp: {iso!r}")
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _paid_run(port: int, path: Path, submits: list[float]) -> tuple[float, float]:
    """One paid job: (submits/s at the provider over the job's run phase, the longest
    pause between two submits in it, ms)."""
    before = len(submits)
    job = _upload(port, path)
    _run(port, job)
    shown = _call(port, "GET", f"/v1/jobs/{job}")
    started, finished = _stamp(shown["started_at"]), _stamp(shown["finished_at"])
    summary = shown["summary"]
    paid = summary.get("cache", {}).get("lookup", 0) if isinstance(summary, dict) else 0
    if paid != PAID_ROWS:
        raise RuntimeError(f"{paid} of {PAID_ROWS} rows were paid lookups: {summary}")
    mine = submits[before:]
    inside = [t for t in mine if started <= t <= finished]
    if len(mine) != PAID_ROWS or len(inside) != PAID_ROWS:
        raise RuntimeError(
            f"the simulator saw {len(mine)} submits for {PAID_ROWS} rows, "
            f"{len(inside)} of them while the job ran"
        )
    pause = max(b - a for a, b in zip([started, *inside], [*inside, finished], strict=True))
    return len(inside) / (finished - started), pause * 1000


def _measure_paid(runs: int, tmp: Path, add: Callable[[str, float], None]) -> None:
    for latency_ms in PAID_LATENCIES_MS:
        name = f"paid, HLR {latency_ms} ms"
        with _counting_simulator(latency_ms) as (sim_port, submits):
            with daemon(_paid_config(sim_port)) as (port, _, _pid):
                for run in range(runs):
                    source = tmp / f"paid-{latency_ms}-{run}.csv"
                    _write_paid_list(source, PAID_FIRST + run * PAID_ROWS)
                    rate, pause = _paid_run(port, source, submits)
                    add(f"{name}: paid lookups/s", rate)
                    add(f"{name}: configured rate/s", PAID_TPS)
                    add(f"{name}: provider rate share % (target >= 95)", 100 * rate / PAID_TPS)
                    add(f"{name}: longest submit pause ms", pause)


@contextmanager
def _peak_rss(pid: int) -> Iterator[list[float]]:
    """The highest resident memory of `pid` while the block runs, in [0]."""
    peak = [rss_mb(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], rss_mb(pid))


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
                    with _peak_rss(pid) as peak:
                        rate = _wash(port, source, Path(tmp) / "w.csv")
                    add("rows/s (target >= 25000)", rate)
                    add("daemon RSS growth MiB (target < 100)", rss_mb(pid) - before)
                    add("daemon RSS peak growth MiB", peak[0] - before)
        _measure_paid(runs, Path(tmp), add)
    return out
