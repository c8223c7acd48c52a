"""What deploy/ holds, read for the tests: rules, alerts and the dashboard's queries."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
RULES_DIR = DEPLOY / "prometheus" / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
RULE_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "hlrd.json"
RUNBOOK = DEPLOY / "README.md"

# What the dashboard's variables hold with "All" selected, and Grafana's
# $__rate_interval for a 1 s scrape (it is at least 4 scrape intervals).
DASHBOARD_DEFAULTS = {
    "instance": ".*",
    "provider": ".*",
    "account": ".*",
    "__rate_interval": "1m",
}


@dataclass(frozen=True)
class Query:
    where: str  # a panel's title and refId, or a rule's name
    expr: str


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules() -> list[dict[str, Any]]:
    """Every rule of every rule file, each with its group's name added as `group`."""
    found = []
    for path in RULE_FILES:
        for group in load_yaml(path)["groups"]:
            found += [{**rule, "group": group["name"]} for rule in group["rules"]]
    return found


def alerts() -> list[dict[str, Any]]:
    return [r for r in rules() if "alert" in r]


def recording_rules() -> list[dict[str, Any]]:
    return [r for r in rules() if "record" in r]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows too; rows themselves are left out."""
    found = []
    for panel in board["panels"]:
        if panel["type"] == "row":
            found += panel.get("panels", [])
        else:
            found.append(panel)
    return found


def panel_queries(board: dict[str, Any]) -> list[Query]:
    return [
        Query(f"panel {p['title']!r} {t['refId']}", t["expr"])
        for p in panels(board)
        for t in p.get("targets", [])
    ]


def variable_queries(board: dict[str, Any]) -> list[Query]:
    """The dashboard's query variables, label_values(sel, label) as PromQL."""
    found = []
    for var in board["templating"]["list"]:
        if var["type"] != "query":
            continue
        text = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", text.strip())
        assert m, f"variable {var['name']}: not label_values(selector, label): {text}"
        found.append(Query(f"variable {var['name']}", f"group by ({m[2]}) ({m[1]})"))
    return found


def substitute(expr: str, values: dict[str, str] = DASHBOARD_DEFAULTS) -> str:
    """Grafana's variables ($name, ${name}) replaced by `values`."""

    def value(m: re.Match[str]) -> str:
        name = m[1] or m[2]
        if name not in values:
            raise KeyError(f"unknown dashboard variable ${name} in {expr}")
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)
