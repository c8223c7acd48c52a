"""A process started as a user would (`python -m hlrd run ...`), its JSON log lines
collected by a thread so a test can wait for an event instead of sleeping."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any

from .conftest import ROOT

TIMEOUT = 60.0


class Child:
    """A child process whose stderr lines (JSON logs) a thread collects."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, name: str) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for line in self.lines:
                if line.startswith("{") and name in line:
                    event: dict[str, Any] = json.loads(line)
                    if event.get("event") == name:
                        return event
            return None

        with self._cond:
            ok = self._cond.wait_for(
                lambda: found() is not None or not self._thread.is_alive(), TIMEOUT
            )
            event = found()
        assert ok and event is not None, f"no {name}:\n{''.join(self.lines)}"
        return event

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(TIMEOUT)
        self._thread.join(TIMEOUT)
        return code
