"""Feature drift between a reference and a current population (Population Stability Index)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

__all__ = ["drift_report", "overall_verdict", "psi"]

_SEVERITY = {"stable": 0, "warn": 1, "drift": 2}


def _clean(values: ArrayLike, side: str) -> np.ndarray:
    if isinstance(values, pd.Series | pd.Index):
        arr = _numeric(pd.Series(values))
    else:
        try:
            arr = np.asarray(values, dtype=np.float64).ravel()
        except (TypeError, ValueError):  # e.g. a list holding pd.NA
            arr = _numeric(pd.Series(np.asarray(values, dtype=object).ravel()))
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        raise ValueError(f"psi: {side} sample is empty (after dropping NaN)")
    if not np.isfinite(arr).all():
        raise ValueError(f"psi: {side} sample contains infinite values")
    return arr


def _cut_points(expected: np.ndarray, bins: int) -> np.ndarray | None:
    """Right-closed cut points from the quantiles of ``expected``; None if it is constant."""
    quantiles = np.quantile(expected, np.linspace(0.0, 1.0, bins + 1))
    edges, counts = np.unique(quantiles, return_counts=True)
    if edges.size < 2:
        return None
    cuts = set(edges[1:-1].tolist())
    # A point mass at the edge of the range (many zeros, rates capped at 1) gets a bin of its own,
    # (nextafter(v, -inf), v], so shifts into or out of it are visible. Interior point masses do not:
    # discrete ratios (1/8 one week, 1/9 the next, as a denominator grows) would otherwise land in
    # bins the reference never filled and read as massive drift while nothing changed.
    for value in edges[counts > 1]:
        if value == edges[0] or value == edges[-1]:
            cuts.add(float(value))
            cuts.add(float(np.nextafter(value, -np.inf)))
    return np.array(sorted(cuts), dtype=np.float64)


def psi(expected: ArrayLike, actual: ArrayLike, *, bins: int = 10, eps: float = 1e-4) -> float:
    """Population Stability Index of ``actual`` against ``expected``.

    Bins come from the quantiles of ``expected`` (duplicates removed); the outermost
    bins are open-ended, and a quantile-sized point mass at the lowest or highest edge
    (zeros, caps) gets its own bin. A constant ``expected`` is compared as "equal to that value" vs "other".
    Bin shares are floored at ``eps``; PSI = sum((a - e) * ln(a / e)). NaNs are
    ignored; a side that is empty after dropping them raises ``ValueError``.
    """
    if isinstance(bins, bool) or int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    exp = _clean(expected, "expected")
    act = _clean(actual, "actual")

    cuts = _cut_points(exp, int(bins))
    if cuts is None:
        value = exp[0]
        e = np.array([1.0, 0.0])
        share = float(np.mean(act == value))
        a = np.array([share, 1.0 - share])
    else:
        n_bins = cuts.size + 1
        e = np.bincount(np.searchsorted(cuts, exp, side="left"), minlength=n_bins) / exp.size
        a = np.bincount(np.searchsorted(cuts, act, side="left"), minlength=n_bins) / act.size
    e = np.maximum(e, eps)
    a = np.maximum(a, eps)
    return float(np.sum((a - e) * np.log(a / e)))


def _verdict(value: float, warn: float, alert: float) -> str:
    if value >= alert:
        return "drift"
    if value >= warn:
        return "warn"
    return "stable"


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str],
    *,
    bins: int = 10,
    warn: float = 0.1,
    alert: float = 0.25,
) -> pd.DataFrame:
    """PSI per column of ``current`` against ``reference``, with a verdict.

    Returns one row per column, in the given order, with columns
    ``feature, psi, verdict, reference_mean, current_mean``; verdict is "drift" when
    psi >= ``alert``, "warn" when psi >= ``warn``, else "stable". Raises ``KeyError``
    for absent columns and ``ValueError`` (naming the column) for an all-missing one.
    """
    if isinstance(columns, str):
        raise TypeError("columns must be a sequence of column names, not a single string")
    if not 0 <= warn <= alert:
        raise ValueError(f"need 0 <= warn <= alert, got warn={warn!r}, alert={alert!r}")
    columns = list(columns)
    for side, frame in (("reference", reference), ("current", current)):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise KeyError(f"columns missing from {side} frame: {missing}")

    rows = []
    for column in columns:
        ref = _numeric(reference[column])
        cur = _numeric(current[column])
        try:
            value = psi(ref, cur, bins=bins)
        except ValueError as exc:
            raise ValueError(f"column {column!r}: {exc}") from exc
        rows.append(
            {
                "feature": column,
                "psi": value,
                "verdict": _verdict(value, warn, alert),
                "reference_mean": float(np.nanmean(ref)),
                "current_mean": float(np.nanmean(cur)),
            }
        )
    report = pd.DataFrame(rows, columns=["feature", "psi", "verdict", "reference_mean", "current_mean"])
    return report.astype({"psi": "float64", "reference_mean": "float64", "current_mean": "float64"})


def _numeric(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="raise").astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)


def overall_verdict(report: pd.DataFrame) -> str:
    """Worst verdict in ``report`` ("drift" > "warn" > "stable"); "stable" when empty."""
    if len(report) == 0:
        return "stable"
    verdicts = list(report["verdict"])
    unknown = sorted({str(v) for v in verdicts} - set(_SEVERITY))
    if unknown:
        raise ValueError(f"unknown verdicts in report: {unknown}")
    return max(verdicts, key=_SEVERITY.__getitem__)
