"""A washing job's state on disk: what survives a crash, and nothing more.

Each job is a directory `<data_dir>/jobs/<id>/`: the uploaded `input.csv` (the
user's own file, plaintext numbers and all, kept for the retention time only), the
outputs, and `state.json`. The state names how many input rows are done and how
long each output file was when they were: it is written (to a temporary file, then
renamed over the old one) only after the outputs up to there are on disk. A restart
cuts each output back to its recorded length and goes on from the next row, so no
row is lost and none is written twice, whatever instant the process died at.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATES = ("previewing", "ready", "running", "paused", "cancelled", "done", "failed")
OUTPUTS = ("annotated.csv", "clean.csv", "dnc.txt")
_ID_CHARS = "0123456789abcdef"


def new_job_id() -> str:
    return "j_" + secrets.token_hex(10)


def valid_id(job_id: str) -> bool:
    return len(job_id) == 22 and job_id.startswith("j_") and all(c in _ID_CHARS for c in job_id[2:])


@dataclass
class JobState:
    id: str
    name: str
    policy: str
    created_at: float
    state: str = "previewing"
    layout: dict[str, Any] = field(default_factory=dict)
    rows_total: int | None = None  # known after the preview
    rows_done: int = 0
    offsets: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTPUTS, 0))
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # summary tallies
    preview: dict[str, Any] | None = None
    started_at: float | None = None
    finished_at: float | None = None
    run_seconds: float = 0.0  # time spent running, over every resume
    idempotency_key: str | None = None
    webhook: str | None = None  # POSTed the summary when the job ends
    webhook_delivered: bool | None = None
    error: str | None = None

    def save(self, directory: Path) -> None:
        """Atomically: a reader sees the old state or the new, never half of one."""
        tmp = directory / "state.json.tmp"
        with tmp.open("w") as f:
            json.dump(asdict(self), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / "state.json")

    @classmethod
    def load(cls, directory: Path) -> JobState:
        data = json.loads((directory / "state.json").read_text())
        return cls(**data)

    @property
    def ended(self) -> bool:
        """Done, failed or cancelled: nothing more will happen to its rows."""
        return self.state in ("done", "failed", "cancelled")

    def count(self, table: str, key: str, by: int = 1) -> None:
        tally = self.counts.setdefault(table, {})
        tally[key] = tally.get(key, 0) + by
