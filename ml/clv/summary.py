"""The buy-till-you-die purchase summary from a transaction log (for evaluations; the warehouse builds the same
summary as marts.customer_purchase_summary)."""

from __future__ import annotations

import pandas as pd

__all__ = ["purchase_summary"]


def purchase_summary(transactions: pd.DataFrame, calibration_end, observation_end=None, *,
                     time_unit_days: float = 7.0) -> pd.DataFrame:
    """One row per customer with a purchase on or before ``calibration_end``, indexed by customer.

    ``transactions`` has columns ``customer_id``, ``date`` (day resolution) and ``value``. Transactions are summed
    per customer-day; frequency = purchase days after the first one in the calibration period, recency = first
    to last calibration purchase day, T = first purchase day to ``calibration_end`` (both in units of
    ``time_unit_days``), monetary_value = mean value of the repeat calibration days (0 without repeats),
    frequency_holdout = purchase days in (calibration_end, observation_end].
    """
    missing = {"customer_id", "date", "value"} - set(transactions.columns)
    if missing:
        raise ValueError(f"transactions lack the columns {sorted(missing)}")
    calibration_end = pd.Timestamp(calibration_end)
    observation_end = pd.Timestamp(observation_end) if observation_end is not None else calibration_end
    if observation_end < calibration_end:
        raise ValueError("observation_end must not be before calibration_end")
    frame = transactions.assign(date=pd.to_datetime(transactions["date"]).dt.normalize())
    days = (frame[frame["date"] <= observation_end]
            .groupby(["customer_id", "date"], as_index=False)["value"].sum()
            .sort_values(["customer_id", "date"]))
    calibration = days[days["date"] <= calibration_end]
    grouped = calibration.groupby("customer_id")
    first, last = grouped["date"].min(), grouped["date"].max()
    frequency = grouped.size() - 1
    repeat_value = grouped["value"].sum() - grouped["value"].first()
    out = pd.DataFrame({
        "frequency": frequency,
        "recency": (last - first).dt.days / time_unit_days,
        "T": (calibration_end - first).dt.days / time_unit_days,
        "monetary_value": (repeat_value / frequency.where(frequency > 0)).fillna(0.0),
    })
    holdout = days[days["date"] > calibration_end].groupby("customer_id").size()
    out["frequency_holdout"] = holdout.reindex(out.index, fill_value=0)
    return out
