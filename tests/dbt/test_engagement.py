"""Sessions and engagement marts on the generated warehouse, checked against values recomputed here: from the
landing files the generator wrote (device form factors) or in pandas from the marts' inputs
(int_events_sessionized, int_events_stitched, int_sessions_quarantine), never from the marts' own totals."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from segflow.errors import BuildFailed
from segflow.jobs.build import run_dbt
from segflow.warehouse import connect

VIEWS = ("page_view", "screen_view", "product_view")

SESSION_EVENTS = """
    select sessionized.event_id, sessionized.session_id, sessionized.customer_id, sessionized.occurred_at,
        stitched.event_type, stitched.time_on_page_seconds, stitched.scroll_depth
    from intermediate.int_events_sessionized as sessionized
    join intermediate.int_events_stitched as stitched using (event_id)
    where sessionized.session_id not in (select session_id from intermediate.int_sessions_quarantine)
"""


def test_page_views_time_on_page_and_position_recomputed(built_home):
    with connect(built_home, read_only=True) as con:
        events = con.execute(SESSION_EVENTS).df()
        views = con.execute("select event_id, view_index, time_on_page_seconds, time_on_page_source, is_entry, "
                            "is_exit, scroll_depth from marts.fct_page_views").df()
    events = events.sort_values(["session_id", "occurred_at", "event_id"])
    events["next_at"] = events.groupby("session_id")["occurred_at"].shift(-1)
    expected = events[events["event_type"].isin(VIEWS)].copy()
    expected["view_index"] = expected.groupby("session_id").cumcount() + 1
    expected["is_exit"] = expected["view_index"] == expected.groupby("session_id")["view_index"].transform("max")
    tracked = expected["time_on_page_seconds"].where(expected["time_on_page_seconds"] >= 0)
    expected["seconds"] = tracked.fillna((expected["next_at"] - expected["occurred_at"]).dt.total_seconds())
    expected["depth"] = expected["scroll_depth"].where(expected["scroll_depth"].between(0, 100))

    got = views.set_index("event_id").loc[expected["event_id"]]
    assert len(views) == len(expected) > 1000
    assert got["view_index"].tolist() == expected["view_index"].tolist()
    assert got["is_entry"].tolist() == (expected["view_index"] == 1).tolist()
    assert got["is_exit"].tolist() == expected["is_exit"].tolist()
    pd.testing.assert_series_equal(got["time_on_page_seconds"].astype(float).reset_index(drop=True),
                                   expected["seconds"].astype(float).reset_index(drop=True), check_names=False)
    pd.testing.assert_series_equal(got["scroll_depth"].astype("Float64").reset_index(drop=True),
                                   expected["depth"].astype("Float64").reset_index(drop=True), check_names=False)
    assert set(got["time_on_page_source"].dropna()) <= {"tracker", "next_event"}


def test_session_device_is_the_form_factor_the_generator_gave_the_device(built_home):
    device_type: dict[str, str] = {}
    for path in sorted((built_home.landing_dir / "events").glob("*.csv")):
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("anonymous_id") and row.get("device_type"):
                    device_type[row["anonymous_id"]] = row["device_type"]
    with connect(built_home, read_only=True) as con:
        sessions = con.execute("select anonymous_id, device_type, channel, is_app from marts.fct_sessions").fetchall()
    single = [(anonymous_id, device) for anonymous_id, device, _, _ in sessions if device != "mixed"]
    assert len(single) > 1000 and all(device == device_type[anonymous_id] for anonymous_id, device in single)
    assert all(is_app == (channel == "app") for _, _, channel, is_app in sessions)
    assert all(device in ("mobile", "tablet", "mixed") for _, device, channel, _ in sessions if channel == "app")


def _documents(lines: pd.DataFrame) -> pd.DataFrame:
    """Order or return documents from their lines: customer (max), first day, revenue, order named."""
    lines = lines.assign(key=lines["order_id"].fillna(lines["event_id"]))
    return lines.groupby("key").agg(customer_id=("customer_id", "max"), day=("day", "min"),
                                    revenue=("revenue", "sum"), original_order_id=("original_order_id", "max"))


def test_customer_daily_activity_recomputed_from_events_and_sessions(built_home):
    with connect(built_home, read_only=True) as con:
        events = con.execute("select customer_id, event_id, order_id, original_order_id, event_type, "
                             "cast(revenue as double) as revenue, is_interactive, is_order_line, is_reversal, "
                             "cast(occurred_at as date) as day from intermediate.int_events_stitched").df()
        sessions = con.execute(SESSION_EVENTS).df()
        consenting = {c for (c,) in con.execute("select customer_id from intermediate.int_customer_consent "
                                                "where has_analytics_consent").fetchall()}
        got = con.execute("select customer_id, activity_date as day, session_count, event_count, view_count, "
                          "order_count, cast(gross_revenue as double) as gross, "
                          "cast(reversed_revenue as double) as reversed, cast(net_revenue as double) as net, "
                          "is_active_day from marts.fct_customer_daily_activity").df()
    # customers without analytics consent have no facts (docs/privacy.md): the recomputation leaves them out too
    assert set(events["customer_id"].dropna()) - consenting  # the demo has customers who withheld consent
    events = events[events["customer_id"].isna() | events["customer_id"].isin(consenting)]
    interactive = events[events["is_interactive"] & events["customer_id"].notna()]
    expected = interactive.groupby(["customer_id", "day"]).agg(
        event_count=("event_id", "size"), view_count=("event_type", lambda types: types.isin(VIEWS).sum()))
    starts = sessions.dropna(subset=["customer_id"]).groupby("session_id").agg(
        customer_id=("customer_id", "max"), started=("occurred_at", "min"))
    starts["day"] = starts["started"].dt.date
    orders = _documents(events[events["is_order_line"]])
    returns = _documents(events[events["is_reversal"]])
    # a return is charged to the buyer of the order it names when that order exists, else to its own customer
    buyer = returns["original_order_id"].map(orders["customer_id"])
    named = returns["original_order_id"].isin(orders.index)
    returns["customer_id"] = buyer.where(named, returns["customer_id"])
    parts = [expected,
             starts.groupby(["customer_id", "day"]).size().rename("session_count"),
             orders.groupby(["customer_id", "day"]).agg(order_count=("revenue", "size"), gross=("revenue", "sum")),
             returns.groupby(["customer_id", "day"])["revenue"].sum().rename("reversed")]
    expected = pd.concat(parts, axis=1).fillna(0).reset_index()
    expected["day"] = pd.to_datetime(expected["day"])
    got["day"] = pd.to_datetime(got["day"])

    merged = got.merge(expected, on=["customer_id", "day"], how="outer", suffixes=("", "_expected"),
                       indicator=True)
    assert (merged["_merge"] == "both").all() and len(merged) > 1000
    for column in ("session_count", "event_count", "view_count", "order_count"):
        assert (merged[column] == merged[f"{column}_expected"]).all(), column
    for column in ("gross", "reversed"):
        assert (merged[column] - merged[f"{column}_expected"]).abs().max() < 0.005, column
    assert ((merged["net"] - (merged["gross_expected"] - merged["reversed_expected"])).abs() < 0.005).all()
    assert (merged["is_active_day"] == (merged["event_count_expected"] > 0)).all()


def test_engagement_score_weights_that_do_not_sum_to_one_stop_the_build(home_copy):
    bad = {"segflow__engagement_weight_recency": 0.5, "segflow__engagement_weight_frequency": 0.35,
           "segflow__engagement_weight_depth": 0.25}
    with pytest.raises(BuildFailed) as err:
        run_dbt(["compile", "--select", "customer_engagement"], home_copy, extra_vars=bad)
    assert "must be >= 0 and sum to 1" in str(err.value)
