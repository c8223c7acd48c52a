"""deploy/grafana: the dashboard parses, every panel queries metrics hlrd exposes."""

from __future__ import annotations

import pytest

from .deploy_files import (
    DASHBOARD_DEFAULTS,
    Query,
    dashboard,
    panel_queries,
    panels,
    substitute,
    variable_queries,
)
from .metrics_contract import HISTOGRAMS, SERIES, metric_labels
from .promql_names import names

DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


def test_every_panel_has_a_title_a_description_and_a_query() -> None:
    board = dashboard()
    assert board["uid"] and board["title"]
    found = panels(board)
    assert len(found) >= 30
    for p in found:
        assert p["title"] and p.get("description"), p["id"]
        exprs = [t.get("expr", "").strip() for t in p.get("targets", [])]
        assert exprs and all(exprs), f"panel {p['title']!r} has no query"
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), f"panel {p['title']!r} repeats a refId"


def test_every_query_uses_the_datasource_variable() -> None:
    board = dashboard()
    ds = [v for v in board["templating"]["list"] if v["name"] == "DS_PROMETHEUS"]
    assert len(ds) == 1 and ds[0]["type"] == "datasource" and ds[0]["query"] == "prometheus"
    for p in panels(board):
        assert p["datasource"] == DATASOURCE, p["title"]
        assert all(t["datasource"] == DATASOURCE for t in p["targets"]), p["title"]


def test_panels_do_not_overlap() -> None:
    taken: dict[tuple[int, int], str] = {}
    for p in dashboard()["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in taken, f"{p['title']!r} overlaps {taken[(x, y)]!r}"
                taken[(x, y)] = p["title"]


def _queries() -> list[Query]:
    board = dashboard()
    return panel_queries(board) + variable_queries(board)


@pytest.mark.parametrize("query", _queries(), ids=lambda q: q.where)
def test_queries_use_only_metrics_and_labels_hlrd_exposes(query: Query) -> None:
    contract = metric_labels()
    used = names(substitute(query.expr))
    assert used.metrics, f"no metric in {query.expr}"
    assert sorted(used.metrics - contract.keys()) == [], "not in tests/metrics_contract.py"
    for metric, label in used.matched:
        assert label in contract[metric], f"{metric} has no label {label}"
    available = frozenset().union(*(contract[m] for m in used.metrics))
    assert sorted(used.grouped - available) == [], "grouping by labels the metrics lack"


def test_the_dashboard_draws_every_metric_hlrd_exposes() -> None:
    drawn = set().union(*(names(substitute(q.expr)).metrics for q in _queries()))
    drawn |= {m.rsplit("_", 1)[0] for m in drawn if m.endswith(("_bucket", "_sum", "_count"))}
    wanted = SERIES.keys() | HISTOGRAMS.keys()
    assert sorted(wanted - drawn) == []


def test_the_live_test_knows_every_variable() -> None:
    """tests/test_deploy_live.py runs the queries with DASHBOARD_DEFAULTS substituted."""
    board = dashboard()
    declared = {v["name"] for v in board["templating"]["list"]} - {"DS_PROMETHEUS"}
    assert declared | {"__rate_interval"} == DASHBOARD_DEFAULTS.keys()
