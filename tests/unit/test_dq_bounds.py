"""How the gate's run-metric bounds come from history: first run not compared (and said so), volume against
the previous passing run, distributions in a band learned from earlier passing runs."""

from __future__ import annotations

from datetime import datetime, timedelta

from segflow.jobs.dq_metrics import bounds
from segflow.settings import Settings

SETTINGS = Settings(dq_max_volume_change=0.5, dq_distribution_tolerance=0.2, dq_min_rows_for_comparison=100,
                    dq_max_reject_rate=0.05, dq_max_quarantine_rate=0.04)
NOW = {"events_in_window": 10_000, "sessions_in_window": 800, "orders_in_window": 150, "purchase_share": 0.03,
       "median_session_minutes": 6.0, "median_order_value": 80.0, "reject_rate": 0.001, "quarantine_rate": None}


def _run(days_ago: int, **values) -> dict:
    row = {"as_of": datetime(2025, 10, 6) - timedelta(days=days_ago), "success": True, **NOW, **values}
    return row


def test_first_run_compares_nothing_and_says_so():
    params, checked, notes = bounds(NOW, [], SETTINGS)
    assert checked == {"reject_rate"}  # nothing quarantined-rate to judge: no rows were loaded
    assert params == {"reject_rate_min": 0.0, "reject_rate_max": 0.05}
    assert notes == ["first run (no earlier passing gate run): volume change and learned distributions "
                     "not compared"]


def test_volume_is_bounded_by_the_previous_passing_run():
    previous = _run(7, events_in_window=12_000, sessions_in_window=1_000, orders_in_window=40)
    params, checked, notes = bounds(NOW, [previous, _run(14, events_in_window=1)], SETTINGS)
    assert (params["events_in_window_min"], params["events_in_window_max"]) == (6_000, 18_000)
    assert (params["sessions_in_window_min"], params["sessions_in_window_max"]) == (500, 1_500)
    assert "orders_in_window" not in checked  # 40 orders before: too few to compare
    assert any(n.startswith("orders_in_window: not compared") and "had 40" in n for n in notes)


def test_distributions_get_a_band_around_the_median_of_earlier_runs():
    history = [_run(7 * i, median_order_value=v) for i, v in enumerate([70.0, 100.0, 80.0, 90.0], start=1)]
    params, checked, _ = bounds(NOW, history, SETTINGS)
    # median 85; tolerance 20 % = 17; MAD 10 * 1.4826 * 3 = 44.478 is wider, so the band is the noisy one
    assert params["median_order_value_min"] == round(85 - 44.478, 3)
    assert params["median_order_value_max"] == round(85 + 44.478, 3)
    steady = [_run(7 * i) for i in range(1, 4)]  # identical history: the tolerance sets the band
    params, _, _ = bounds(NOW, steady, SETTINGS)
    assert (params["purchase_share_min"], params["purchase_share_max"]) == (0.024, 0.036)
    assert {"purchase_share", "median_session_minutes", "median_order_value"} <= checked


def test_a_distribution_on_too_few_rows_is_not_learned_from():
    history = [_run(7, orders_in_window=20, median_order_value=500.0)]
    _, checked, notes = bounds(NOW, history, SETTINGS)
    assert "median_order_value" not in checked
    assert any("median_order_value: not compared" in n for n in notes)
