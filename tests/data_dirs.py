"""Every daemon a test starts keeps its store in that test's own directory.

conftest points HLRD_DATA_DIR at a fresh directory for each test; daemons run as
subprocesses inherit it, and in-process ones take it through DATA_ENV(). Nothing is
ever written into the checkout, and no test sees another's cached answers.
"""

from __future__ import annotations

import os


def DATA_ENV() -> dict[str, str]:
    return {"HLRD_DATA_DIR": os.environ["HLRD_DATA_DIR"]}
