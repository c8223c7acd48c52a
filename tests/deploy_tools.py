"""Prometheus' binaries for the deploy/ tests: found, or a skip (a failure in CI)."""

from __future__ import annotations

import os
import shutil

import pytest

APT_PACKAGE = "prometheus"  # Debian's package has both prometheus and promtool


def tool(name: str) -> str:
    """The path of `name`; without it, skip, or fail when HLRD_REQUIRE_TOOLS=1 (CI)."""
    found = shutil.which(name)
    if found is None:
        why = f"{name} not found: apt-get install -y {APT_PACKAGE} (.ci/run installs it)"
        if os.environ.get("HLRD_REQUIRE_TOOLS") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return found
