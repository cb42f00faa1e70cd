"""A/B test readout per segment: control vs treatment conversion and revenue per customer, uplift with
confidence intervals.

- conversion: share of the arm's customers with ``converted``; uplift = treatment - control (percentage points
  as a share), Newcombe hybrid score interval; relative uplift = uplift / control.
- revenue per customer: mean ``revenue`` over the arm's customers (non-buyers count as 0); uplift = difference
  of means, Welch t interval.

Intervals are per comparison: with many segments, about 1 in 20 segments without any real effect shows an
interval that excludes 0 by chance. ``small_sample`` flags a row where an arm has fewer than ``min_arm_size``
customers: its interval is honest but wide, and the normal approximations behind it are least reliable.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ml.intervals import newcombe_diff, welch_diff

__all__ = ["ARMS", "READOUT_COLUMNS", "ab_readout", "validate_assignments", "validate_outcomes"]

ARMS = ("control", "treatment")
READOUT_COLUMNS = ["segment_id", "metric", "control", "treatment", "uplift", "uplift_relative", "ci_low",
                   "ci_high", "n_control", "n_treatment", "small_sample"]


def _require(frame: pd.DataFrame, what: str, columns: tuple[str, ...]) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{what} must be a DataFrame")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lack column(s) {missing} (have {list(frame.columns)})")
    if frame["customer_id"].isna().any():
        raise ValueError(f"{what}: {int(frame['customer_id'].isna().sum())} row(s) without a customer_id")
    dupes = frame["customer_id"].astype(str)[frame["customer_id"].astype(str).duplicated()]
    if len(dupes):
        raise ValueError(f"{what} must hold one row per customer: {dupes.nunique()} customer_id(s) repeated, "
                         f"e.g. {dupes.iloc[0]!r}")


def validate_assignments(assignments: pd.DataFrame) -> pd.DataFrame:
    """customer_id + arm ('control' / 'treatment', case and surrounding blanks ignored), one row per customer,
    both arms present. Returns customer_id (str) and arm."""
    _require(assignments, "assignments", ("customer_id", "arm"))
    arm = assignments["arm"].astype("string").str.strip().str.lower()
    bad = sorted({str(v) for v, ok in zip(assignments["arm"], arm.isin(ARMS).fillna(False), strict=True)
                  if not ok})
    if bad:
        raise ValueError(f"assignments: arm must be 'control' or 'treatment', found {bad[:5]}")
    absent = [a for a in ARMS if not (arm == a).any()]
    if absent:
        raise ValueError(f"assignments: no customer in arm {absent[0]!r}: both arms are needed")
    return pd.DataFrame({"customer_id": assignments["customer_id"].astype(str).to_numpy(),
                         "arm": arm.astype(str).to_numpy()})


def validate_outcomes(outcomes: pd.DataFrame) -> pd.DataFrame:
    """customer_id, converted (bool or 0/1) and revenue (finite number), one row per customer."""
    _require(outcomes, "outcomes", ("customer_id", "converted", "revenue"))
    converted = outcomes["converted"]
    if not (pd.api.types.is_bool_dtype(converted) or pd.api.types.is_numeric_dtype(converted)):
        converted = converted.astype("string").str.strip().str.lower().map(
            {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False})
    if converted.isna().any() or not set(pd.unique(converted)) <= {True, False}:  # 0 and 1 equal False and True
        raise ValueError("outcomes: 'converted' must be true/false or 0/1 for every customer")
    revenue = pd.to_numeric(outcomes["revenue"], errors="coerce")
    if not np.isfinite(revenue.to_numpy(dtype=float)).all():
        raise ValueError("outcomes: 'revenue' must be a finite number for every customer")
    return pd.DataFrame({"customer_id": outcomes["customer_id"].astype(str).to_numpy(),
                         "converted": converted.astype(bool).to_numpy(), "revenue": revenue.to_numpy(dtype=float)})


def _compare(segment: str, g: pd.DataFrame, confidence: float, min_arm_size: int) -> list[dict]:
    treat, ctrl = g[g["arm"] == "treatment"], g[g["arm"] == "control"]
    n1, n0 = len(treat), len(ctrl)
    base = {"segment_id": segment, "n_control": n0, "n_treatment": n1, "small_sample": min(n0, n1) < min_arm_size}
    rows = []
    c1 = int(treat["converted"].sum())
    c0 = int(ctrl["converted"].sum())
    p1, p0 = (c1 / n1 if n1 else math.nan), (c0 / n0 if n0 else math.nan)
    rows.append({**base, "metric": "conversion_rate", "control": p0, "treatment": p1,
                 "ci": newcombe_diff(c1, n1, c0, n0, confidence)})
    m1 = float(treat["revenue"].mean()) if n1 else math.nan
    m0 = float(ctrl["revenue"].mean()) if n0 else math.nan
    rows.append({**base, "metric": "revenue_per_customer", "control": m0, "treatment": m1,
                 "ci": welch_diff(treat["revenue"], ctrl["revenue"], confidence)})
    for row in rows:
        uplift, low, high = row.pop("ci")
        row.update(uplift=uplift, ci_low=low, ci_high=high,
                   uplift_relative=uplift / row["control"] if row["control"] else math.nan)
    return rows


def ab_readout(assignments: pd.DataFrame, outcomes: pd.DataFrame, segments: pd.DataFrame | None = None, *,
               confidence: float = 0.95, min_arm_size: int = 100, overall_label: str = "(all)",
               unsegmented_label: str = "(unsegmented)") -> pd.DataFrame:
    """Uplift of treatment over control per segment and overall (``READOUT_COLUMNS``).

    ``assignments``: customer_id, arm. ``outcomes``: customer_id, converted, revenue; an assigned customer
    without an outcome row counts as not converted with revenue 0 (outcomes usually list buyers only);
    outcome rows of customers outside the experiment are ignored. ``segments``: customer_id, segment_id; an
    assigned customer without a segment goes to ``unsegmented_label``. Raises ValueError on invalid input.
    The number of assigned customers without an outcome row is in ``result.attrs['without_outcome']``."""
    if min_arm_size < 1:
        raise ValueError("min_arm_size must be >= 1")
    data = validate_assignments(assignments)
    out = validate_outcomes(outcomes)
    data = data.merge(out, on="customer_id", how="left", validate="one_to_one")
    without_outcome = int(data["converted"].isna().sum())
    data["converted"] = data["converted"].fillna(False).astype(bool)
    data["revenue"] = data["revenue"].fillna(0.0).astype(float)
    if segments is not None:
        _require(segments, "segments", ("customer_id", "segment_id"))
        seg = pd.DataFrame({"customer_id": segments["customer_id"].astype(str).to_numpy(),
                            "segment_id": segments["segment_id"].astype(str).to_numpy()})
        data = data.merge(seg, on="customer_id", how="left", validate="one_to_one")
        data["segment_id"] = data["segment_id"].fillna(unsegmented_label)
    rows = []
    if segments is not None:
        for segment, g in data.groupby("segment_id", sort=True):
            rows += _compare(str(segment), g, confidence, min_arm_size)
    rows += _compare(overall_label, data, confidence, min_arm_size)
    result = pd.DataFrame(rows)[READOUT_COLUMNS]
    result.attrs["without_outcome"] = without_outcome
    return result
