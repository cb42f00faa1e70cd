"""The gate's run metrics on a real warehouse: measured independently, stored per run in meta.dq_history, and
compared with the previous passing run (volume) and with earlier passing runs (learned distributions)."""

from __future__ import annotations

import csv
from datetime import timedelta

import pytest
from tests_support import week_end

from segflow.errors import GateFailed
from segflow.jobs.status import summary
from segflow.jobs.status_format import format_summary
from segflow.jobs.validate import validate
from segflow.settings import PROJECT_ROOT
from segflow.warehouse import connect

AS_OF = week_end(4)


def _history(settings) -> list[dict]:
    with connect(settings, read_only=True) as con:
        cursor = con.execute("select * from meta.dq_history order by as_of")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _add_earlier_run(settings, as_of, **values) -> None:
    """An earlier passing run in the history, as a previous gate run would have left it."""
    row = {**_history(settings)[-1], "as_of": as_of, "success": True, **values}
    with connect(settings) as con:
        con.execute(f"insert into meta.dq_history ({', '.join(row)}) values ({', '.join('?' * len(row))})",
                    list(row.values()))


@pytest.fixture
def first_run(home_copy):
    return home_copy, validate(home_copy, as_of=AS_OF)


def test_metrics_match_an_independent_count(first_run):
    settings, result = first_run
    start = AS_OF - timedelta(days=settings.dq_window_days)
    with connect(settings, read_only=True) as con:
        events = con.execute("select received_at, event_type from intermediate.int_events_stitched").df()
        sessions = con.execute("select started_at, duration_seconds from marts.fct_sessions").df()
        orders = con.execute("select ordered_at, revenue from marts.fct_orders").df()
    with open(PROJECT_ROOT / "dbt_project" / "seeds" / "event_types.csv", newline="") as fh:
        seed = {row["event_type"]: row["is_order_line"] == "true" for row in csv.DictReader(fh)}
    in_window = events[(events.received_at >= start) & (events.received_at < AS_OF)]
    recent_sessions = sessions[(sessions.started_at >= start) & (sessions.started_at < AS_OF)]
    recent_orders = orders[(orders.ordered_at >= start) & (orders.ordered_at < AS_OF)]
    m = result.metrics
    assert m["events_in_window"] == len(in_window) > 1000
    assert m["purchase_share"] == pytest.approx(in_window.event_type.map(seed).fillna(False).mean())
    assert m["sessions_in_window"] == len(recent_sessions)
    assert m["median_session_minutes"] == pytest.approx(recent_sessions.duration_seconds.median() / 60)
    assert m["orders_in_window"] == len(recent_orders)
    assert m["median_order_value"] == pytest.approx(float(recent_orders.revenue.astype(float).median()))
    assert m["hours_since_last_event"] == pytest.approx((AS_OF - events.received_at.max()).total_seconds() / 3600,
                                                        abs=0.01)
    assert result.notes and result.notes[0].startswith("first run")
    assert result.suites["run_metrics"]["evaluated"] == 3  # row count + the two delivery rates, nothing compared
    [row] = _history(settings)
    assert row["success"] and row["reference_as_of"] is None and row["baseline_runs"] == 0
    assert row["checks_evaluated"] == sum(s["evaluated"] for s in result.suites.values())
    assert row["data_docs"] == result.data_docs
    text = format_summary(summary(settings))  # `segflow status` shows the run's line and links the docs
    assert f"last gate run    {AS_OF}: {row['checks_passed']}/{row['checks_evaluated']} checks passed" in text
    assert f"Data Docs        {result.data_docs}" in text


def test_volume_collapse_against_the_previous_run_fails_the_gate(first_run):
    settings, result = first_run
    measured = result.metrics["events_in_window"]
    _add_earlier_run(settings, AS_OF - timedelta(days=7), events_in_window=3 * measured)
    with pytest.raises(GateFailed) as err:
        validate(settings, as_of=AS_OF)
    message = str(err.value)
    assert "run_metrics" in message and "events_in_window" in message
    assert "SEGFLOW_DQ_MAX_VOLUME_CHANGE is 0.5" in message
    latest = _history(settings)[-1]
    assert latest["as_of"] == AS_OF and not latest["success"]
    assert latest["reference_as_of"] == AS_OF - timedelta(days=7)


def test_learned_distribution_band_and_a_steady_history_passes(first_run):
    settings, result = first_run
    share = result.metrics["purchase_share"]
    for weeks in (1, 2, 3):  # three earlier runs like this one: the band is centred on this run's value
        _add_earlier_run(settings, AS_OF - timedelta(days=7 * weeks))
    passed = validate(settings, as_of=AS_OF)
    # the row count + not-null and bounds for 3 volumes and 3 distributions (no new loads: no delivery rates)
    assert passed.success and passed.suites["run_metrics"]["evaluated"] == 1 + 2 * 6
    for weeks in (1, 2, 3):  # three earlier runs with triple the purchase share: this run is out of band
        _add_earlier_run(settings, AS_OF - timedelta(days=7 * weeks + 1), purchase_share=3 * share)
    with connect(settings) as con:
        con.execute("delete from meta.dq_history where as_of in (?, ?, ?)",
                    [AS_OF - timedelta(days=7 * w) for w in (1, 2, 3)])
    with pytest.raises(GateFailed, match="purchase_share"):
        validate(settings, as_of=AS_OF)
