"""lists: a 10-million-number registry imported, held, and checked against.

- `import_s`: `ListFiles.import_file` of a US-FTC-layout file (`areacode,number` a
  line) of 10,000,000 distinct numbers: read, normalised, keyed, sorted, written.
  Python's own `for line in file` over the same file is reported beside it
  (`read_lines_s`): the floor any importer in Python stands on.
- `bytes_per_number`: resident memory a loaded list adds, per listed number, measured
  in a fresh process (RSS after `load` minus before).
- `checks_per_s_keyed`: numbers checked in bulk (1,000,000, half of them listed),
  keying included; `checks_per_s_keys`: the same, keys already made.
- `/v1/check` with every gate on and off, cached numbers not on the list, wrk
  alternating between the two daemons: `gate on/off` is what the gates cost a
  dialer's check (target: at least 0.85). On: that 10M list and the own list, a
  policy that needs voice consent (each number has a record, so each check finds
  and checks it) and calling hours (open all week, so each check evaluates them
  and goes on to the lookup), and the audit trail recording every answer. Off:
  `[lists] enabled = false` (no lists, consent, hours or audit trail). A third
  daemon has the gates without the audit trail, which records every answer and
  is reported apart: it is record-keeping, not a gate, and its cost is its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from hlrd.compliance.list_formats import ReadOptions
from hlrd.compliance.list_key import ListKeyer
from hlrd.compliance.lists import ListFiles
from hlrd.config import StoreConfig
from hlrd.store.keys import load_key

from .http_check import wrk
from .http_check_cached import LUA, _warm
from .http_check_cached import NUMBERS as NUMBERS_CHECKED
from .procs import ROOT, daemon, simulator, write_config

NUMBERS = 10_000_000
CHECKS = 1_000_000

_LOAD = """
import json, sys
from pathlib import Path
from hlrd.compliance.list_key import ListKeyer
from hlrd.compliance.lists import ListFiles
from hlrd.config import StoreConfig
from hlrd.store.keys import load_key
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
data = sys.argv[1]
files = ListFiles(Path(data) / "lists", ListKeyer(load_key(StoreConfig(data_dir=data))))
before = rss()
loaded = files.load("us")
print(json.dumps({"bytes": rss() - before, "numbers": len(loaded.numbers)}))
"""


def _registry(path: Path) -> None:
    """Area codes 201-999, numbers 2000000-: distinct, in the FTC's layout."""
    with path.open("w") as f:
        per_area = 100_000
        for area in range(201, 201 + NUMBERS // per_area):
            f.write("".join(f"{area},{2_000_000 + i}\n" for i in range(per_area)))


def measure(runs: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}

    def add(metric: str, value: float) -> None:
        out.setdefault(metric, []).append(value)

    with tempfile.TemporaryDirectory(prefix="hlrd-bench-lists-") as tmp:
        source = Path(tmp) / "dnc.txt"
        _registry(source)
        gated = write_config(0, 256)  # rewritten below with the simulator's port
        data_dir = gated.parent / "data"  # the daemon's (procs.data_env)
        keyer = ListKeyer(load_key(StoreConfig(data_dir=str(data_dir))))
        files = ListFiles(data_dir / "lists", keyer)
        for _ in range(runs):
            t = time.perf_counter()
            with source.open() as f:
                for _line in f:
                    pass
            add("read_lines_s", time.perf_counter() - t)
            t = time.perf_counter()
            info = files.import_file("us", source, ReadOptions("us_ftc"))
            add("import_s", time.perf_counter() - t)
            add("numbers_listed", info.numbers)
            proc = subprocess.run(
                [sys.executable, "-c", _LOAD, str(data_dir)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            held = json.loads(proc.stdout)
            add("bytes_per_number", held["bytes"] / held["numbers"])
            loaded = files.load("us")
            assert loaded is not None
            # Every other number listed (area codes 201-300 are; 101-200 are not).
            numbers = [f"1{101 + i % 200}{2_000_000 + i // 200}" for i in range(CHECKS)]
            t = time.perf_counter()
            hits = loaded.numbers.contains_each(files.keyer.keys(numbers))
            add("checks_per_s_keyed", CHECKS / (time.perf_counter() - t))
            keys = files.keyer.keys(numbers)
            t = time.perf_counter()
            loaded.numbers.contains_each(keys)
            add("checks_per_s_keys", CHECKS / (time.perf_counter() - t))
            add("checks_listed_share", sum(hits) / CHECKS)
        _gate_cost(gated, runs, add)
    return out


GATES_ON = """
[policy]
consent = "voice"

[hours.PL]
mon-sun = ["00:00-24:00"]
public_holidays = true
"""
CONSENT = b'{"channels": ["voice"], "source": "web_form", "text_version": "bench-1"}'


def _load(port: int) -> None:
    """Each number into the memory of a daemon whose store holds them already."""
    for i in range(NUMBERS_CHECKED):
        url = f"http://127.0.0.1:{port}/v1/lookup/4861{i:07d}"
        with urllib.request.urlopen(url, timeout=10) as r:
            r.read()


def _consent(port: int) -> None:
    """A consent record for each number the checks ask about (no lookup)."""
    for i in range(NUMBERS_CHECKED):
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/consent/4861{i:07d}?lookup=0", data=CONSENT
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            if r.status != 201:
                raise RuntimeError(f"consent not recorded: {r.status}")


def _gate_cost(gated: Path, runs: int, add: Callable[[str, float], None]) -> None:
    """Cached checks through a daemon with every gate, one with every gate but the
    audit trail (the same data directory: the 10M list, the consent records) and one
    without, in turn."""
    with simulator(0) as (sim_port, _):
        gated.write_text(write_config(sim_port, 256).read_text() + GATES_ON)
        unaudited = gated.with_name("unaudited.toml")
        unaudited.write_text(gated.read_text() + "\n[audit]\nenabled = false\n")
        plain = write_config(sim_port, 256)
        plain.write_text(
            plain.read_text() + "\n[lists]\nenabled = false\n\n[audit]\nenabled = false\n"
        )
        with daemon(gated) as (on_port, _, _), daemon(plain) as (off_port, _, _):
            _warm(on_port)
            _warm(off_port)
            _consent(on_port)  # before the second daemon on these files reads them
            with daemon(unaudited) as (gates_port, _, _):
                _load(gates_port)
                for _ in range(runs):
                    off, _p99 = wrk(off_port, LUA)
                    gates, _p99 = wrk(gates_port, LUA)
                    on, _p99 = wrk(on_port, LUA)
                    add("check req/s gate off", off)
                    add("check req/s gates on (10M list, consent, hours)", gates)
                    add("check req/s gates and audit trail on", on)
                    add("gates on/off (target >= 0.85)", gates / off)
                    add("gates and audit trail on/off", on / off)
