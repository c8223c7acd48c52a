"""deploy/prometheus: the rules pass promtool, every alert is unit-tested and in the runbook."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest

from .deploy_files import (
    DEPLOY,
    RULE_FILES,
    RULE_TESTS,
    RUNBOOK,
    alerts,
    load_yaml,
    recording_rules,
    rules,
)
from .deploy_tools import tool
from .metrics_contract import metric_labels
from .promql_names import names

SEVERITIES = ("critical", "warning", "info")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], capture_output=True, text=True, timeout=60, cwd=DEPLOY
    )


def test_rule_files_pass_promtool_check() -> None:
    assert RULE_FILES, "no rule files in deploy/prometheus/rules"
    done = promtool("check", "rules", *map(str, RULE_FILES))
    assert done.returncode == 0, done.stdout + done.stderr
    found = sum(int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", done.stdout))
    assert found == len(rules())


def test_alert_unit_tests_pass() -> None:
    assert RULE_TESTS, "no promtool unit tests in deploy/prometheus/tests"
    done = promtool("test", "rules", *map(str, RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def _alert_cases() -> list[dict[str, Any]]:
    return [
        case
        for path in RULE_TESTS
        for test in load_yaml(path)["tests"]
        for case in test.get("alert_rule_test", [])
    ]


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    cases = _alert_cases()
    firing = {c["alertname"] for c in cases if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    names_ = {a["alert"] for a in alerts()}
    assert sorted(names_ - firing) == [], "alerts no unit test sees firing"
    assert sorted(names_ - quiet) == [], "alerts no unit test sees quiet"
    assert sorted((firing | quiet) - names_) == [], "unit tests of alerts that do not exist"


def test_the_unit_tests_load_the_rules_promtool_checks() -> None:
    """A unit-test file that loads other rule files would test something else."""
    for path in RULE_TESTS:
        loaded = {(path.parent / f).resolve() for f in load_yaml(path)["rule_files"]}
        assert loaded == {p.resolve() for p in RULE_FILES}, path


def test_every_alert_tells_on_call_what_it_means() -> None:
    seen: set[str] = set()
    for a in alerts():
        assert a["alert"] not in seen, f"{a['alert']} is defined twice"
        seen.add(a["alert"])
        assert a["labels"]["severity"] in SEVERITIES, a["alert"]
        assert a["annotations"]["summary"].strip(), a["alert"]
        # what it means and what to do: at least a few sentences
        assert len(a["annotations"]["description"].split(". ")) >= 2, a["alert"]


def _runbook_entries() -> dict[str, str]:
    """`### AlertName (severity)` headings under deploy/README.md's runbook."""
    text = RUNBOOK.read_text()
    section = text.split("\n## Runbook", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^### (\w+) \((\w+)\)$", section, flags=re.M))


def test_every_alert_is_in_the_runbook_with_its_severity() -> None:
    wanted = {a["alert"]: a["labels"]["severity"] for a in alerts()}
    assert _runbook_entries() == wanted


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r.get("alert") or r["record"])
def test_rules_use_only_metrics_hlrd_exposes(rule: dict[str, Any]) -> None:
    contract = metric_labels()
    recorded = {r["record"]: _recorded_labels(r) for r in recording_rules()}
    known = contract | recorded
    used = names(rule["expr"])
    assert sorted(used.metrics - known.keys()) == [], "metrics no one exposes or records"
    for metric, label in used.matched:
        assert label in known.get(metric, frozenset()), f"{metric} has no label {label}"
    available = frozenset().union(*(known[m] for m in used.metrics))
    assert sorted(used.grouped - available) == [], "grouping by labels the metrics lack"


def _recorded_labels(rule: dict[str, Any]) -> frozenset[str]:
    """A recording rule keeps the labels it aggregates by (all of them, without a by)."""
    used = names(rule["expr"])
    if used.grouped:
        return frozenset(used.grouped - {"le"})
    contract = metric_labels()
    return frozenset().union(*(contract[m] for m in used.metrics))


def test_recording_rule_names_follow_level_metric_operation() -> None:
    for r in recording_rules():
        assert re.fullmatch(r"hlrd:[a-z0-9_]+:[a-z0-9_]+", r["record"]), r["record"]
