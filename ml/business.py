"""Business validation of segments: per-segment KPIs with confidence intervals, and how strongly the segments
separate them.

Input is one row per customer (the caller picks the window), with these columns:

- ``orders`` (int >= 0) and ``revenue`` (net revenue, may be negative after returns) in the window;
- optional ``order_revenue``: the revenue AOV is computed from (e.g. gross order value); default ``revenue``;
- optional ``active_previous`` / ``active_current`` (bool): active in the previous / current window;
- optional ``ever_active`` / ``churned`` (bool): active at least once before the window's end / of those, not
  active for the churn threshold.

KPIs (``kpi`` column of the result; rates are shares 0..1):

========================  =====================================================  ==========================
kpi                       value                                                  interval, ``n``
========================  =====================================================  ==========================
customers                 customers of the segment                               none, customers
conversion_rate           share of customers with >= 1 order                      Wilson, customers
orders_per_customer       mean orders per customer                                t, customers
revenue_per_customer      mean revenue per customer                               t, customers
aov                       sum(order_revenue) / sum(orders) (buyers only)          delta method, buyers
revenue_share             the segment's revenue / all customers' revenue          none, customers
retention_rate            share of ``active_previous`` also ``active_current``    Wilson, active_previous
churn_rate                share of ``ever_active`` that ``churned``               Wilson, ever_active
========================  =====================================================  ==========================

A row with segment ``overall_label`` holds the same KPIs over every customer. The A/B readout per segment
is :func:`ml.ab_readout.ab_readout` (re-exported here).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ml.ab_readout import ab_readout
from ml.intervals import mean_ci, ratio_ci, wilson

__all__ = ["KPI_NAMES", "ab_readout", "customer_kpi_frame", "segment_kpis", "segment_separation"]

KPI_NAMES = ("customers", "conversion_rate", "orders_per_customer", "revenue_per_customer", "aov",
             "revenue_share", "retention_rate", "churn_rate")
_FLAGS = ("active_previous", "active_current", "ever_active", "churned")


def _bool(series: pd.Series, name: str) -> pd.Series:
    if series.isna().any():
        raise ValueError(f"column {name!r} has missing values (expected true/false for every customer)")
    values = set(pd.unique(series))
    if not values <= {True, False}:  # 0 and 1 equal False and True
        raise ValueError(f"column {name!r} must be boolean (true/false or 0/1), found {sorted(map(str, values))[:5]}")
    return series.astype(bool)


def customer_kpi_frame(frame: pd.DataFrame, segment_col: str = "segment_id") -> pd.DataFrame:
    """Check and normalise the per-customer input (see the module doc); raises ValueError on bad input."""
    missing = [c for c in (segment_col, "orders", "revenue") if c not in frame.columns]
    if missing:
        raise ValueError(f"customer KPI frame lacks column(s) {missing}")
    if "customer_id" in frame.columns and frame["customer_id"].duplicated().any():
        raise ValueError("customer KPI frame must hold one row per customer (duplicate customer_id)")
    if frame[segment_col].isna().any():
        raise ValueError(f"column {segment_col!r} has missing segment ids")
    out = pd.DataFrame({"segment": frame[segment_col].astype(str).to_numpy()}, index=frame.index)
    for col in ("orders", "revenue", "order_revenue"):
        if col not in frame.columns:
            continue
        values = pd.to_numeric(frame[col], errors="coerce").astype(float)
        if not np.isfinite(values.to_numpy()).all():
            raise ValueError(f"column {col!r} must be finite numbers for every customer")
        out[col] = values
    if (out["orders"] < 0).any():
        raise ValueError("column 'orders' must be >= 0")
    if "order_revenue" not in out.columns:
        out["order_revenue"] = out["revenue"]
    for col in _FLAGS:
        if col in frame.columns:
            out[col] = _bool(frame[col], col)
    if ("active_previous" in out) != ("active_current" in out):
        raise ValueError("retention needs both 'active_previous' and 'active_current'")
    if ("ever_active" in out) != ("churned" in out):
        raise ValueError("churn needs both 'ever_active' and 'churned'")
    if "churned" in out and (out["churned"] & ~out["ever_active"]).any():
        raise ValueError("a customer who was never active cannot have churned ('churned' implies 'ever_active')")
    return out


def _row(segment, kpi, estimate, n) -> dict:
    value, low, high = estimate if isinstance(estimate, tuple) else (estimate, math.nan, math.nan)
    return {"segment_id": segment, "kpi": kpi, "value": float(value), "ci_low": float(low),
            "ci_high": float(high), "n": int(n)}


def _kpis(segment: str, g: pd.DataFrame, total_revenue: float, confidence: float) -> list[dict]:
    n = len(g)
    buyers = g[g["orders"] > 0]
    rows = [
        _row(segment, "customers", float(n), n),
        _row(segment, "conversion_rate", wilson(len(buyers), n, confidence), n),
        _row(segment, "orders_per_customer", mean_ci(g["orders"], confidence), n),
        _row(segment, "revenue_per_customer", mean_ci(g["revenue"], confidence), n),
        _row(segment, "aov", ratio_ci(buyers["order_revenue"], buyers["orders"], confidence), len(buyers)),
        _row(segment, "revenue_share", g["revenue"].sum() / total_revenue if total_revenue else math.nan, n),
    ]
    if "active_previous" in g:
        base = g[g["active_previous"]]
        rows.append(_row(segment, "retention_rate",
                         wilson(int(base["active_current"].sum()), len(base), confidence), len(base)))
    if "churned" in g:
        base = g[g["ever_active"]]
        rows.append(_row(segment, "churn_rate", wilson(int(base["churned"].sum()), len(base), confidence),
                         len(base)))
    return rows


def segment_kpis(frame: pd.DataFrame, segment_col: str = "segment_id", *, confidence: float = 0.95,
                 overall_label: str = "(all)") -> pd.DataFrame:
    """Per-segment KPIs (long format: segment_id, kpi, value, ci_low, ci_high, n), segments sorted, then the
    ``overall_label`` row. Undefined values (a rate over nobody) are NaN."""
    data = customer_kpi_frame(frame, segment_col)
    if data.empty:
        raise ValueError("customer KPI frame is empty")
    total = float(data["revenue"].sum())
    rows = []
    for segment, g in data.groupby("segment", sort=True):
        rows += _kpis(str(segment), g, total, confidence)
    rows += _kpis(overall_label, data, total, confidence)
    return pd.DataFrame(rows, columns=["segment_id", "kpi", "value", "ci_low", "ci_high", "n"])


def _chi_square(segments: pd.Series, outcome: pd.Series) -> tuple[float, float, float, int, int]:
    """Chi-square test of independence (no continuity correction) and Cramér's V."""
    table = pd.crosstab(segments, outcome.astype(bool))
    n, groups = int(table.to_numpy().sum()), len(table)
    if groups < 2:
        return math.nan, math.nan, math.nan, n, groups
    if table.shape[1] < 2:  # every customer has the same outcome: nothing for segments to separate
        return 0.0, 0.0, 1.0, n, groups
    chi2, p, _, _ = stats.chi2_contingency(table.to_numpy(), correction=False)
    v = math.sqrt(chi2 / (n * (min(table.shape) - 1)))
    return float(chi2), v, float(p), n, groups


def _kruskal(segments: pd.Series, values: pd.Series) -> tuple[float, float, float, int, int]:
    """Kruskal–Wallis H (tie-corrected) and its effect size epsilon² = H / (n - 1)."""
    samples = [g.to_numpy() for _, g in values.groupby(segments, sort=True)]
    n, groups = int(sum(len(s) for s in samples)), len(samples)
    if groups < 2:
        return math.nan, math.nan, math.nan, n, groups
    if np.unique(np.concatenate(samples)).size < 2:
        return 0.0, 0.0, 1.0, n, groups
    h, p = stats.kruskal(*samples)
    return float(h), min(1.0, float(h) / (n - 1)), float(p), n, groups


def segment_separation(frame: pd.DataFrame, segment_col: str = "segment_id") -> pd.DataFrame:
    """How strongly segments separate each per-customer KPI: chi-square + Cramér's V for the binary ones
    (converted, retained, churned), Kruskal–Wallis H + epsilon² for the continuous ones (orders, revenue per
    customer, AOV of buyers). Columns: kpi, test, statistic, effect_size, p_value, n, groups. Segments without
    an observation for a KPI (e.g. nobody active last window) do not count for it; a KPI with one group left
    gets NaN, one that does not vary gets statistic 0, effect 0, p 1."""
    data = customer_kpi_frame(frame, segment_col)
    buyers = data[data["orders"] > 0]
    tests = [("conversion_rate", "chi_square", _chi_square(data["segment"], data["orders"] > 0)),
             ("orders_per_customer", "kruskal_wallis", _kruskal(data["segment"], data["orders"])),
             ("revenue_per_customer", "kruskal_wallis", _kruskal(data["segment"], data["revenue"])),
             ("aov", "kruskal_wallis",
              _kruskal(buyers["segment"], buyers["order_revenue"] / buyers["orders"]))]
    if "active_previous" in data:
        base = data[data["active_previous"]]
        tests.append(("retention_rate", "chi_square", _chi_square(base["segment"], base["active_current"])))
    if "churned" in data:
        base = data[data["ever_active"]]
        tests.append(("churn_rate", "chi_square", _chi_square(base["segment"], base["churned"])))
    return pd.DataFrame(
        [{"kpi": kpi, "test": test, "statistic": s, "effect_size": e, "p_value": p, "n": n, "groups": k}
         for kpi, test, (s, e, p, n, k) in tests],
        columns=["kpi", "test", "statistic", "effect_size", "p_value", "n", "groups"])
