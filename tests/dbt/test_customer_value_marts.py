"""Customer value marts on the built demo warehouse, recomputed in pandas from the order and customer marts.

customer_value and customer_rfm are checked customer by customer against an implementation written here
from fct_orders, fct_returns, dim_customers and the seed file rfm_segments.csv (exact fractions for the
percent_rank quintiles, so no float boundary can hide a wrong score). The scoring and segment rules on tricky
hand-made fixtures (ties, priorities, returns) are dbt unit tests (models/marts/customers/).
"""

from __future__ import annotations

import csv
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from math import floor
from pathlib import Path

import pandas as pd
from tests_support import week_end

from segflow.warehouse import connect

SEED = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "rfm_segments.csv"


def _read(settings, sql: str) -> pd.DataFrame:
    with connect(settings, read_only=True) as con:
        return con.execute(sql).df()


def _expected_value(settings) -> pd.DataFrame:
    # amounts in integer cents: exact sums
    orders = _read(settings, "select customer_id, order_id, cast(revenue * 100 as bigint) as revenue, "
                             "cast(reversed_revenue * 100 as bigint) as reversed_revenue, ordered_at from marts.fct_orders")
    returns = _read(settings, "select customer_id, original_order_id, cast(returned_revenue * 100 as bigint) "
                              "as returned_revenue from marts.fct_returns")
    consenting = set(_read(settings, "select customer_id from marts.dim_customers where has_analytics_consent")
                     ["customer_id"])
    unlinked = returns[~returns["original_order_id"].isin(orders["order_id"])]
    returned = unlinked.groupby("customer_id")["returned_revenue"].sum()
    orders = orders[orders["customer_id"].isin(consenting)]
    by_customer = orders.groupby("customer_id")
    out = pd.DataFrame({
        "order_count": by_customer.size(),
        "purchase_days": by_customer["ordered_at"].agg(lambda t: t.dt.date.nunique()),
        "gross_revenue": by_customer["revenue"].sum(),
        "returned_revenue": by_customer["reversed_revenue"].sum(),
        "last_ordered_at": by_customer["ordered_at"].max(),
    })
    out["returned_revenue"] += returned.reindex(out.index, fill_value=0)
    out["net_revenue"] = out["gross_revenue"] - out["returned_revenue"]
    return out.sort_index()


def _quintile(values: pd.Series) -> pd.Series:
    """1 + floor(5 x percent_rank), capped at 5; percent_rank = share of customers strictly below."""
    n = len(values)
    below = values.rank(method="min") - 1
    return below.map(lambda b: min(5, 1 + floor(5 * Fraction(int(b), n - 1))))


def _segment(r: int, fm: int, rules: list[dict]) -> str:
    matching = [rule for rule in rules if int(rule["r_min"]) <= r <= int(rule["r_max"])
                and int(rule["fm_min"]) <= fm <= int(rule["fm_max"])]
    return min(matching, key=lambda rule: int(rule["priority"]))["segment"]


CENTS = ("gross_revenue", "returned_revenue", "net_revenue")


def _model(settings, table: str, cents: tuple[str, ...]) -> pd.DataFrame:
    as_cents = ", ".join(f"cast({c} * 100 as bigint) as {c}" for c in cents)
    frame = _read(settings, f"select * exclude ({', '.join(cents)}), {as_cents} from marts.{table}")
    return frame.set_index("customer_id").sort_index()


def test_customer_value_equals_the_orders_net_of_returns(built_home):
    model = _model(built_home, "customer_value", CENTS)
    expected = _expected_value(built_home)
    assert len(model) > 100 and list(model.index) == list(expected.index)
    for column in ("order_count", "purchase_days", "gross_revenue", "returned_revenue", "net_revenue",
                   "last_ordered_at"):
        assert (model[column] == expected[column]).all(), column
    assert (model["purchase_days"] < model["order_count"]).any()  # the demo has days with several orders


def test_rfm_scores_and_segments_equal_a_recomputation(built_home):
    model = _model(built_home, "customer_rfm", ("monetary",))
    value = _expected_value(built_home)
    as_of_date = week_end(4).date()
    recency = value["last_ordered_at"].map(lambda t: (as_of_date - t.date()).days)
    scores = pd.DataFrame({
        "recency_days": recency,
        "r_score": _quintile(-recency),  # the most recent scores 5
        "f_score": _quintile(value["purchase_days"]),
        "m_score": _quintile(value["net_revenue"]),
    })
    scores["fm_score"] = [int((Decimal(f + m) / 2).quantize(Decimal(1), rounding=ROUND_HALF_UP))
                          for f, m in zip(scores["f_score"], scores["m_score"], strict=True)]
    with open(SEED, newline="") as fh:
        rules = list(csv.DictReader(fh))
    scores["rfm_segment"] = [_segment(r, fm, rules) for r, fm in zip(scores["r_score"], scores["fm_score"],
                                                                      strict=True)]
    scores["rfm_cell"] = [f"{r}{f}{m}" for r, f, m in zip(scores["r_score"], scores["f_score"], scores["m_score"],
                                                        strict=True)]
    assert list(model.index) == list(scores.index)
    for column in scores.columns:
        assert (model[column] == scores[column]).all(), column
    assert (model["frequency"] == value["purchase_days"]).all() and (model["monetary"] == value["net_revenue"]).all()
    # ties share a score: every distinct frequency maps to one f_score
    assert model.groupby("frequency")["f_score"].nunique().max() == 1


def test_purchase_summary_ends_on_the_day_before_a_midnight_as_of(built_home):
    with connect(built_home, read_only=True) as con:
        bounds = con.execute("select distinct calibration_end_date, observation_end_date, duration_holdout_days "
                             "from marts.customer_purchase_summary").fetchall()
    last_day = (week_end(4) - timedelta(days=1)).date()  # as_of is exclusive: its midnight belongs to no day
    assert bounds == [(last_day, last_day, 0)]
