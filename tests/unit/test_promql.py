"""The PromQL reader the metric checks rely on (tests/promql.py)."""

from __future__ import annotations

import pytest

from tests.promql import Matcher, Selector, dashboard_expressions, selectors


def names(expr: str) -> list[str]:
    return [s.metric for s in selectors(expr)]


def test_functions_aggregations_and_label_lists_are_not_metrics() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, queue) (rate(vi_handling_seconds_bucket[5m])))"
        " / on (queue) group_left (service) max without (instance) (vi_ready offset 5m)"
    )
    assert names(expr) == ["vi_handling_seconds_bucket", "vi_ready"]


def test_binary_operators_keywords_and_numbers() -> None:
    expr = "time() - max(a_seconds) > 2 * max(b_seconds) unless c == bool 1e3 and d or up"
    assert names(expr) == ["a_seconds", "b_seconds", "c", "d", "up"]


def test_trailing_grouping_clause_and_subquery() -> None:
    assert names("sum(rate(x_total[5m:30s])) by (queue)") == ["x_total"]
    assert names("rate(x_total[$__rate_interval])") == ["x_total"]


def test_label_matchers_are_read_with_their_escapes() -> None:
    (selector,) = selectors(r'm{queue=~"vi\\.(ingest|email)", outcome!="ok", job=`a"b`}')
    assert selector == Selector(
        "m",
        (
            Matcher("queue", "=~", r"vi\.(ingest|email)"),
            Matcher("outcome", "!=", "ok"),
            Matcher("job", "=", 'a"b'),
        ),
    )
    assert selector.accepts({"queue": "vi.email", "outcome": "failed", "job": 'a"b'})
    assert not selector.accepts({"queue": "vixemail", "outcome": "failed", "job": 'a"b'})
    assert not selector.accepts({"queue": "vi.email", "outcome": "ok", "job": 'a"b'})


def test_strings_are_not_metrics() -> None:
    assert names('label_replace(up, "dst", "$1", "src", "(.*)")') == ["up"]


def test_unreadable_matchers_fail_loudly() -> None:
    with pytest.raises(ValueError):
        selectors("m{queue}")
    with pytest.raises(ValueError):
        selectors("sum(m")


def test_dashboard_expressions_include_rows() -> None:
    dashboard = {
        "panels": [
            {"targets": [{"expr": "a"}]},
            {"type": "row", "panels": [{"targets": [{"expr": "b"}, {"expr": ""}]}]},
        ]
    }
    assert sorted(dashboard_expressions(dashboard)) == ["a", "b"]
