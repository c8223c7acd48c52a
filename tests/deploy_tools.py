"""Prometheus' binaries for the deploy/ tests: found, or the test skips (fails in CI).

Skips and failures go through tests/tools.py, which names every missing tool at the
end of the run and fails instead under HLRD_REQUIRE_TOOLS=1 (.ci/run sets it).
"""

from __future__ import annotations

import os
import shutil

from . import tools

INSTALL = "apt-get install -y prometheus"  # Debian's package has prometheus and promtool


def tool(name: str) -> str:
    """The path of `name`, for the running test; it skips or fails without it."""
    found = shutil.which(name)
    if found is None:
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]
        tools.unavailable(name, INSTALL, test)
    assert found is not None
    return found
