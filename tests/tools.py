"""External tools some tests run (Kannel, promtool, Prometheus, Chromium).

.ci/run installs them and sets HLRD_REQUIRE_TOOLS=1, so in CI a missing tool fails
the test that needs it; on a developer's machine those tests skip, and the end of the
run names each missing tool and how to install it, so a skip is never silent.
"""

from __future__ import annotations

import os
import shutil

import pytest

# tool -> (install hint, tests skipped for it); read by conftest's summary hook.
missing: dict[str, tuple[str, list[str]]] = {}


def required() -> bool:
    return os.environ.get("HLRD_REQUIRE_TOOLS") == "1" or bool(os.environ.get("CI"))


def unavailable(tool: str, install: str, test: str = "") -> None:
    """Skip (or, where tools are required, fail) the running test: `tool` is absent."""
    why = f"{tool} not found: {install}"
    if required():
        pytest.fail(why + " (HLRD_REQUIRE_TOOLS=1)")
    missing.setdefault(tool, (install, []))[1].append(
        test or os.environ.get("PYTEST_CURRENT_TEST", "?")
    )
    pytest.skip(why)


def require_tool(name: str, apt_package: str) -> str:
    """The path of program `name`; skips (fails under HLRD_REQUIRE_TOOLS=1) without it."""
    found = shutil.which(name)
    if found is None:
        unavailable(name, f"apt-get install -y {apt_package}")
    assert found is not None
    return found
