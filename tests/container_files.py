"""The Dockerfile's instructions and .dockerignore's rules, read as Docker reads them.

.dockerignore follows Docker's pattern matcher: `*` and `?` stay within a path
segment, `**` spans any number of them, `!` re-includes, the last matching pattern
decides, and a pattern that matches a directory excludes everything under it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str


def instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    found: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).strip().partition(" ")
        found.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    return found


def words(args: str) -> list[str]:
    """An instruction's arguments, exec form (JSON array) or shell form."""
    if args.startswith("["):
        value: list[str] = json.loads(args)
        return value
    return shlex.split(args)


def copies(found: list[Instruction]) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY/ADD from the build context."""
    out = []
    for i in found:
        if i.keyword not in ("COPY", "ADD"):
            continue
        parts = words(i.args)
        if any(p.startswith("--from") for p in parts):
            continue
        parts = [p for p in parts if not p.startswith("--")]
        out.append((parts[:-1], parts[-1]))
    return out


def one(found: list[Instruction], keyword: str) -> str:
    matching = [i.args for i in found if i.keyword == keyword]
    assert len(matching) == 1, f"{len(matching)} {keyword} instructions"
    return matching[0]


def healthcheck(found: list[Instruction]) -> tuple[dict[str, str], list[str]]:
    """HEALTHCHECK's options (--timeout=5s -> {"timeout": "5s"}) and its command."""
    options_text, _, command = one(found, "HEALTHCHECK").partition("CMD")
    options = dict(re.findall(r"--(\w[\w-]*)=(\S+)", options_text))
    return options, words(command.strip())


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif c == "*":
            out += "[^/]*"
            i += 1
        elif c == "?":
            out += "[^/]"
            i += 1
        elif c == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(c)
            i += 1
    return re.compile(out)


class DockerIgnore:
    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []  # (re-include, pattern)
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            keep = line.startswith("!")
            line = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
            self.rules.append((keep, _pattern_regex(line)))

    def excluded(self, path: str) -> bool:
        """Whether a path relative to the build context stays out of the context."""
        parts = path.strip("/").split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        excluded = False
        for keep, pattern in self.rules:
            if any(pattern.fullmatch(p) for p in prefixes):
                excluded = not keep
        return excluded


def dockerignore() -> DockerIgnore:
    return DockerIgnore(DOCKERIGNORE.read_text())
