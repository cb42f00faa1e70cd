"""Great Expectations suites on real frames: pass on good data, fail (and stop publication) on bad."""

from __future__ import annotations

import pytest
from tests_support import week_end

from expectations.runner import validate_frame
from expectations.suites import SUITES
from segflow.errors import GateFailed
from segflow.jobs.dq_frames import FrameScope, read_frame
from segflow.jobs.validate import parameters, validate
from segflow.settings import PROJECT_ROOT, Settings
from segflow.warehouse import connect


@pytest.fixture(scope="module")
def frames(built_home):
    scope = FrameScope(as_of=week_end(4), salt="test")
    with connect(built_home, read_only=True) as con:
        return {name: read_frame(con, module, 10**6, 1, scope)[0] for name, module in SUITES.items()}


PARAMS = {**parameters(Settings(), week_end(4)), "min_customers": 50, "min_events": 50, "max_quantity": 10_000,
          "max_price": 100_000, "min_identified_share": 0.5}
HEAD = {**PARAMS, "fresh_after": PARAMS["earliest_event"]}  # the first rows of the events are not the newest


@pytest.mark.parametrize("name", sorted(SUITES))
def test_suites_pass_on_built_data(frames, name):
    summary = validate_frame(frames[name], SUITES[name], PARAMS)
    assert summary.success, summary.describe_failures()
    assert summary.evaluated >= 7
    assert summary.rows == len(frames[name]) > 0


def test_feature_suite_catches_corruption(frames):
    bad = frames["customer_features"].copy()
    bad.loc[0, "cart_abandonment_rate"] = 1.5
    bad.loc[1, "customer_id"] = bad.loc[2, "customer_id"]
    bad.loc[3, "monetary"] = -10.0
    summary = validate_frame(bad, SUITES["customer_features"], PARAMS)
    assert not summary.success
    failed = {(o.expectation, o.column) for o in summary.failures()}
    assert ("expect_column_values_to_be_between", "cart_abandonment_rate") in failed
    assert ("expect_column_values_to_be_unique", "customer_id") in failed
    assert ("expect_column_values_to_be_between", "monetary") in failed
    assert len(failed) == 3


def test_event_suite_catches_unknown_types_and_bad_prices(frames):
    bad = frames["staged_events"].head(2000).copy()
    bad.loc[bad.index[0], "event_type"] = "teleport"
    bad.loc[bad.index[1], "price"] = 10**7
    summary = validate_frame(bad, SUITES["staged_events"], HEAD)
    failed = {(o.expectation, o.column) for o in summary.failures()}
    assert failed == {("expect_column_values_to_be_in_set", "event_type"),
                      ("expect_column_values_to_be_between", "price")}


def test_row_count_floor_is_a_runtime_parameter(frames):
    rows = len(frames["customer_features"])
    summary = validate_frame(frames["customer_features"], SUITES["customer_features"],
                             {"min_customers": rows + 1})
    assert [o.expectation for o in summary.failures()] == ["expect_table_row_count_to_be_between"]


def test_gate_job_records_results_and_raises(home_copy):
    result = validate(home_copy, as_of=week_end(4))
    assert result.success
    strict = home_copy.model_copy(update={"min_customers": 10**6})
    with pytest.raises(GateFailed) as err:
        validate(strict, as_of=week_end(4))
    assert "customer_features" in str(err.value)
    assert f"Thresholds involved: SEGFLOW_MIN_CUSTOMERS is {10**6}" in str(err.value)
    with connect(home_copy, read_only=True) as con:
        rows = con.execute("select suite, success from meta.dq_results where as_of = ? order by suite",
                           [week_end(4)]).fetchall()
    # the failing run replaced the passing one for the same as_of (idempotent by interval)
    assert rows == sorted((name, name != "customer_features") for name in [*SUITES, "run_metrics"])
    with connect(home_copy, read_only=True) as con:
        history = con.execute("select success, checks_failed from meta.dq_history where as_of = ?",
                              [week_end(4)]).fetchall()
    assert history == [(False, 1)]


def test_business_thresholds_come_from_parameters(frames):
    wholesale = frames["staged_events"].head(500).copy()
    wholesale.loc[wholesale.index[0], "quantity"] = 5_000
    assert validate_frame(wholesale, SUITES["staged_events"], HEAD).success
    strict = {**HEAD, "max_quantity": 1_000}
    failed = {(o.expectation, o.column) for o in validate_frame(wholesale, SUITES["staged_events"], strict).failures()}
    assert failed == {("expect_column_values_to_be_between", "quantity")}


def test_identity_share_catches_a_feed_whose_user_ids_resolve_to_nobody(frames):
    broken = frames["staged_events"].head(500).copy()
    broken["customer_id"] = None
    summary = validate_frame(broken, SUITES["staged_events"], HEAD)
    assert [(o.expectation, o.column) for o in summary.failures()] == [
        ("expect_column_values_to_not_be_null", "customer_id")]


def test_suites_only_check_columns_the_sources_provide(frames):
    """A purchase-only feed has no scroll depth, channel or sessions: it is not judged on them."""
    orders = frames["staged_events"].head(500).copy()
    for column in ("scroll_depth", "channel"):
        orders[column] = None
    full = validate_frame(frames["staged_events"].head(500), SUITES["staged_events"], HEAD)
    partial = validate_frame(orders, SUITES["staged_events"], HEAD)
    assert partial.success
    checked = {o.column for o in partial.outcomes}
    assert "scroll_depth" not in checked and "channel" not in checked
    assert {"scroll_depth", "channel"} <= {o.column for o in full.outcomes}

    features = frames["customer_features"].copy()
    features["sessions_28d"] = 0  # constant: a broken build when the sources have sessions
    with_sessions = validate_frame(features, SUITES["customer_features"], HEAD,
                                   provided={"recency_days", "sessions_28d", "monetary"})
    assert [(o.expectation, o.column) for o in with_sessions.failures()] == [
        ("expect_column_stdev_to_be_between", "sessions_28d")]
    without = validate_frame(features, SUITES["customer_features"], HEAD, provided={"recency_days", "monetary"})
    assert without.success


def test_gx_logs_nothing_at_info_level():
    """GX's import and a validation log hundreds of INFO lines unless kept at WARNING: a process that logs at
    INFO (as an Airflow task does) sees none of them."""
    import subprocess
    import sys

    code = ("import logging; logging.basicConfig(level=logging.INFO)\n"
            "import pandas as pd\n"
            "from expectations.runner import validate_frame\n"
            "from expectations.suites import run_metrics\n"
            "s = validate_frame(pd.DataFrame([{'reject_rate': 0.0}]), run_metrics, "
            "{'reject_rate_min': 0, 'reject_rate_max': 0.1}, provided={'reject_rate'})\n"
            "print('evaluated', s.evaluated, s.success)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=str(PROJECT_ROOT))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "evaluated 2 True"
    assert [line for line in proc.stderr.splitlines() if "great_expectations" in line] == []
