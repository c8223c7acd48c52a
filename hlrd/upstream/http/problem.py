"""RFC 7807 problem details: the one part of a vendor's error that may be quoted.

A problem's `title` and `detail` are free text, and vendors write what was sent into
them (the number included); its `type` is a URI naming the kind of error. Its last
segment or fragment (`.../DataNotParseable`, `...#invalid-json`), when it is a plain
word, says what went wrong and nothing about whom.
"""

from __future__ import annotations

import json
import re

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


def problem_type(body: bytes) -> str | None:
    try:
        problem = json.loads(body)
    except (ValueError, RecursionError):
        return None
    kind = problem.get("type") if isinstance(problem, dict) else None
    if not isinstance(kind, str):
        return None
    name = kind.rsplit("#", 1)[-1] if "#" in kind else kind.rstrip("/").rsplit("/", 1)[-1]
    return name if _NAME.fullmatch(name) else None
