"""External programs tests run (promtool, ...): found, or a clear skip.

CI installs them (`.ci/run`) and sets HLRD_REQUIRE_TOOLS=1, so there a missing one
fails the test instead of skipping it silently.
"""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str, apt_package: str) -> str:
    """The path of `name`; skips (fails under HLRD_REQUIRE_TOOLS=1) when it is missing."""
    found = shutil.which(name)
    if found is not None:
        return found
    why = f"{name} not found: apt-get install -y {apt_package}"
    if os.environ.get("HLRD_REQUIRE_TOOLS") == "1":
        pytest.fail(why)
    pytest.skip(why)
