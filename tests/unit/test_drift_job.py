"""Drift check, segment monitoring and the daily screen on a real built warehouse: tables, idempotency, a planted
shift found for the right reason, the re-cluster request recorded once."""

from __future__ import annotations

import json

import pytest
from tests_support import table_fingerprint, week_end

from segflow.jobs.build import build
from segflow.jobs.drift import check_drift
from segflow.jobs.drift_screen import record_recluster_trigger, screen_drift
from segflow.jobs.monitoring import monitor_segments
from segflow.jobs.segment import recluster
from segflow.warehouse import connect

pytestmark = pytest.mark.slow  # two weekly builds of the test warehouse

TABLES = ("ml.drift_runs", "ml.drift_metrics", "ml.drift_bins", "ml.segment_kpi_series", "ml.spc_signals",
          "ml.trend_breaks")


def _labels(settings, as_of):
    with connect(settings, read_only=True) as con:
        return [s for (s,) in con.execute("select distinct segment_id from ml.segment_assignments where as_of = ?",
                                          [as_of]).fetchall()]


def _two_weeks(settings):
    recluster(settings, as_of=week_end(4))
    first = check_drift(settings, as_of=week_end(4))
    build(settings, as_of=week_end(5))
    recluster(settings, as_of=week_end(5))
    return first


def test_weekly_check_and_monitoring_write_their_week_idempotently(home_copy):
    first = _two_weeks(home_copy)
    assert first.verdict == "no_reference" and first.features == []

    result = check_drift(home_copy, as_of=week_end(5))
    monitoring = monitor_segments(home_copy, as_of=week_end(5))
    assert result.reference_as_of == week_end(4) and result.baseline_as_of == week_end(4)
    assert result.verdict in {"stable", "warn", "drift"}
    with connect(home_copy, read_only=True) as con:
        before = {t: table_fingerprint(con, t) for t in TABLES}
        metrics = con.execute("select comparison, scope, feature, p_value, p_adjusted from ml.drift_metrics "
                              "where as_of = ?", [week_end(5)]).df()
        run = con.execute("select tests, run_kind, reasons from ml.drift_runs where as_of = ?",
                          [week_end(5)]).fetchone()
        bins = con.execute("select feature, cuts from ml.drift_bins where as_of = ? and comparison = 'baseline'",
                           [week_end(5)]).fetchall()
        kpis = con.execute("select sum(customers) from ml.segment_kpi_series where as_of = ?", [week_end(5)]).fetchone()
        customers = con.execute("select count(*) from ml.segment_assignments where as_of = ?",
                                [week_end(5)]).fetchone()
    # only the windowed features are tested (never recency, tenure, lifetime totals), against both references
    population = metrics[metrics["scope"] == "population"]
    assert {"sessions_28d", "orders_28d"} <= set(population["feature"]) <= set(home_copy.drift_features)
    assert set(population["comparison"]) == {"last_week", "baseline"}
    same_ids = set(_labels(home_copy, week_end(4))) == set(_labels(home_copy, week_end(5)))
    assert metrics["scope"].str.startswith("segment:").any() == same_ids
    assert (metrics["p_adjusted"] >= metrics["p_value"] - 1e-12).all()
    assert run == (len(metrics), "weekly", json.dumps(result.reasons))
    assert {f for f, _ in bins} == set(population["feature"]) and all(json.loads(c) is None or
                                                                      len(json.loads(c)) >= 1 for _, c in bins)
    assert kpis == customers and monitoring.segments >= 2

    check_drift(home_copy, as_of=week_end(5))
    monitor_segments(home_copy, as_of=week_end(5))
    with connect(home_copy, read_only=True) as con:
        assert {t: table_fingerprint(con, t) for t in TABLES} == before


def test_planted_shift_is_drift_for_the_right_feature_and_the_screen_asks_once(home_copy):
    _two_weeks(home_copy)
    with connect(home_copy) as con:  # half of everyone's recent sessions disappear
        con.execute("update ml.feature_snapshots set sessions_28d = sessions_28d * 0.3 where as_of = ?",
                    [week_end(5)])
        con.execute("update marts.customer_features set sessions_28d = sessions_28d * 0.3")
    result = check_drift(home_copy, as_of=week_end(5))
    assert result.verdict == "drift"
    assert result.reasons and all("sessions_28d" in r for r in result.reasons)

    screen = screen_drift(home_copy, as_of=week_end(5))
    assert screen.drift.run_kind == "screen" and screen.drift.verdict == "drift"
    assert screen.recluster and screen.trigger_run_id.startswith("drift_recluster__")
    record_recluster_trigger(home_copy, as_of=week_end(5), reason=screen.as_dict()["reason"],
                             dag_run_id=screen.trigger_run_id)
    record_recluster_trigger(home_copy, as_of=week_end(5), reason="again", dag_run_id=screen.trigger_run_id)
    with connect(home_copy, read_only=True) as con:
        rows = con.execute("select reason, dag_run_id from ml.recluster_triggers").fetchall()
    assert rows == [("again", screen.trigger_run_id)]
    # one request per segmentation: the next screen does not ask again
    assert not screen_drift(home_copy, as_of=week_end(5)).recluster
