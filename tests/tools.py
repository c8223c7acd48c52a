"""External tools some tests run (Kannel, promtool, Prometheus, Chromium).

.ci/run installs them and sets HLRD_REQUIRE_TOOLS=1, so in CI a missing tool fails
the test that needs it; on a developer's machine those tests skip, and the end of the
run names each missing tool and how to install it, so a skip is never silent.
"""

from __future__ import annotations

import os

import pytest

# tool -> (install hint, tests skipped for it); read by conftest's summary hook.
missing: dict[str, tuple[str, list[str]]] = {}


def required() -> bool:
    return os.environ.get("HLRD_REQUIRE_TOOLS") == "1" or bool(os.environ.get("CI"))


def unavailable(tool: str, install: str, test: str) -> None:
    """Skip (or, where tools are required, fail) the running test: `tool` is absent."""
    why = f"{tool} not found: {install}"
    if required():
        pytest.fail(why + " (HLRD_REQUIRE_TOOLS=1)")
    missing.setdefault(tool, (install, []))[1].append(test)
    pytest.skip(why)
