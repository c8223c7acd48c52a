"""The metric and label names a PromQL expression uses, without a PromQL parser.

Enough for the expressions in deploy/: selectors `name{label op "value"}`, function
calls, aggregations with by/without, vector matching with on/ignoring/group_*. A name
followed by `(` is a function; label lists follow by/without/on/ignoring/group_*.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
_MATCHER = re.compile(rf"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*(?:{_STRING})\s*,?")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"})


@dataclass
class Names:
    metrics: set[str] = field(default_factory=set)
    # (metric, label) for each label matcher; metric "" for a bare {label="..."}
    matched: set[tuple[str, str]] = field(default_factory=set)
    grouped: set[str] = field(default_factory=set)  # labels in by(...), on(...), ...


def names(expr: str) -> Names:
    found = Names()
    rest = expr
    for m in re.finditer(rf"({_NAME})?\s*\{{((?:{_STRING}|[^}}\"'`])*)\}}", expr):
        metric = m[1] if m[1] and m[1].lower() not in _KEYWORDS else ""
        body = m[2]
        labels = _matchers(body, expr)
        found.matched |= {(metric, label) for label in labels}
        if metric:
            found.metrics.add(metric)
    # Selectors are done: blank them, the strings, ranges and durations out.
    rest = re.sub(rf"({_NAME})?\s*\{{((?:{_STRING}|[^}}\"'`])*)\}}", " ", rest)
    rest = re.sub(_STRING, " ", rest)
    rest = re.sub(r"\[[^\]]*\]", " ", rest)
    for m in _LABEL_LIST.finditer(rest):
        found.grouped |= {x.strip() for x in m[2].split(",") if x.strip()}
    rest = _LABEL_LIST.sub(" ", rest)
    for m in re.finditer(rf"(?<![\w:.])({_NAME})(\s*\()?", rest):
        word, call = m[1], m[2]
        if call or word.lower() in _KEYWORDS:
            continue
        found.metrics.add(word)
    return found


def _matchers(body: str, expr: str) -> set[str]:
    labels = set()
    pos = 0
    while pos < len(body):
        m = _MATCHER.match(body, pos)
        if m is None:
            if body[pos:].strip():
                raise ValueError(f"cannot read label matchers {body!r} in {expr}")
            break
        labels.add(m[1])
        pos = m.end()
    return labels
