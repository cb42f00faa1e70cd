"""marts.customer_activity_trend recomputed in pandas from fct_customer_daily_activity and customer_features."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from segflow.warehouse import connect

WINDOW = 8  # dbt var segflow__trend_window_weeks


def test_activity_trend_matches_its_definition(built_home):
    with connect(built_home, read_only=True) as con:
        trend = con.execute("select * from marts.customer_activity_trend").df().set_index("customer_id")
        features = con.execute("select customer_id, tenure_days, as_of from marts.customer_features").df()
        daily = con.execute("select customer_id, activity_date from marts.fct_customer_daily_activity "
                            "where is_active_day").df()
    as_of_date = pd.Timestamp(features["as_of"].iloc[0]).normalize()
    assert set(trend.index) == set(features["customer_id"])
    days_back = (as_of_date - pd.to_datetime(daily["activity_date"])).dt.days
    daily = daily.assign(weeks_back=(days_back - 1) // 7)[(days_back >= 1) & (days_back <= 7 * WINDOW)]
    grouped = daily.groupby("customer_id")
    active_weeks = grouped["weeks_back"].nunique()
    recent = grouped["weeks_back"].apply(lambda w: int((w < WINDOW / 2).sum()))
    older = grouped["weeks_back"].apply(lambda w: int((w >= WINDOW / 2).sum()))
    checked = 0
    for row in features.itertuples():
        got = trend.loc[row.customer_id]
        observable = min(max(math.ceil(row.tenure_days / 7), 1), WINDOW)
        weeks = int(active_weeks.get(row.customer_id, 0))
        r, o = int(recent.get(row.customer_id, 0)), int(older.get(row.customer_id, 0))
        assert got["observable_weeks"] == observable
        assert (got["active_weeks"], got["recent_active_days"], got["older_active_days"]) == (weeks, r, o)
        assert got["active_week_share"] == min(1.0, weeks / observable)
        if r + o == 0:
            assert pd.isna(got["activity_trend"])
        else:
            assert np.isclose(got["activity_trend"], (r - o) / (r + o))
        checked += weeks > 0
    assert checked > 0.5 * len(features)  # the comparison is not vacuous
