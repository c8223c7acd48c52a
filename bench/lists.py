"""lists: a 10-million-number registry imported, held, and checked against.

- `import_s`: `ListFiles.import_file` of a US-FTC-layout file (`areacode,number` a
  line) of 10,000,000 distinct numbers: read, normalised, keyed, sorted, written.
  Python's own `for line in file` over the same file is reported beside it
  (`read_lines_s`): the floor any importer in Python stands on.
- `bytes_per_number`: resident memory a loaded list adds, per listed number, measured
  in a fresh process (RSS after `load` minus before).
- `checks_per_s_keyed`: numbers checked in bulk (1,000,000, half of them listed),
  keying included; `checks_per_s_keys`: the same, keys already made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hlrd.compliance.list_formats import ReadOptions
from hlrd.compliance.list_key import ListKeyer
from hlrd.compliance.lists import ListFiles

from .procs import ROOT

NUMBERS = 10_000_000
CHECKS = 1_000_000
SECRET = bytes(range(32))

_LOAD = """
import json, sys
from pathlib import Path
from hlrd.compliance.list_key import ListKeyer
from hlrd.compliance.lists import ListFiles
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
files = ListFiles(Path(sys.argv[1]), ListKeyer(bytes(range(32))))
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
        for _ in range(runs):
            t = time.perf_counter()
            with source.open() as f:
                for _line in f:
                    pass
            add("read_lines_s", time.perf_counter() - t)
            files = ListFiles(Path(tmp) / "lists", ListKeyer(SECRET))
            t = time.perf_counter()
            info = files.import_file("us", source, ReadOptions("us_ftc"))
            add("import_s", time.perf_counter() - t)
            add("numbers_listed", info.numbers)
            proc = subprocess.run(
                [sys.executable, "-c", _LOAD, str(files.directory)],
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
    return out
