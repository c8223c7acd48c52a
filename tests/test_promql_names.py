"""The PromQL name reader the deploy/ contract checks rely on."""

from __future__ import annotations

from .promql_names import names


def test_selectors_functions_and_label_lists() -> None:
    found = names(
        'histogram_quantile(0.99, sum by (provider, le) (rate(a_bucket{outcome="ok",'
        ' x=~"$v|}"}[$__rate_interval]))) / on (job) group_left (provider) b_total'
        " > bool 0.5 and absent(up) unless c offset 5m"
    )
    assert found.metrics == {"a_bucket", "b_total", "up", "c"}
    assert found.matched == {("a_bucket", "outcome"), ("a_bucket", "x")}
    assert found.grouped == {"provider", "le", "job"}


def test_recording_rule_names_and_bare_matchers() -> None:
    found = names('hlrd:lookups:rate5m > 0.05 and {__name__="x", job="hlrd"}')
    assert found.metrics == {"hlrd:lookups:rate5m"}
    assert found.matched == {("", "__name__"), ("", "job")}


def test_a_misspelt_metric_is_seen() -> None:
    assert names("sum(rate(hlrd_lookup_total[5m]))").metrics == {"hlrd_lookup_total"}
