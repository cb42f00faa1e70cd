"""Feature drift between a reference and a current population: PSI on pinned reference bins and the two-sample
Kolmogorov-Smirnov test, per feature.

:func:`psi` / :func:`drift_report` bin each call's reference afresh (the original weekly check).
:class:`ReferenceBins` pins the bins: quantile edges are learned once from a reference window and stored, so
every later week is scored on the same bins. :func:`feature_tests` gives, per feature, the PSI on those bins
(the effect size) and the KS statistic with its p-value (sample-size aware); the verdict over many such tests is
:mod:`ml.drift_verdict`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

__all__ = ["ReferenceBins", "drift_report", "feature_tests", "ks_test", "overall_verdict", "psi", "psi_on_cuts"]

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

    return psi_on_cuts(_cut_points(exp, int(bins)), exp, act, eps=eps)


def psi_on_cuts(cuts: np.ndarray | None, expected: np.ndarray, actual: np.ndarray, *, eps: float = 1e-4) -> float:
    """PSI of ``actual`` against ``expected`` on given right-closed cut points (None: ``expected`` was
    constant, compared as "equal to its value" vs "other"). Both sides are clean float arrays."""
    if cuts is None:
        value = expected[0]
        e = np.array([float(np.mean(expected == value)), float(np.mean(expected != value))])
        share = float(np.mean(actual == value))
        a = np.array([share, 1.0 - share])
    else:
        n_bins = cuts.size + 1
        e = np.bincount(np.searchsorted(cuts, expected, side="left"), minlength=n_bins) / expected.size
        a = np.bincount(np.searchsorted(cuts, actual, side="left"), minlength=n_bins) / actual.size
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


def ks_test(reference: np.ndarray, current: np.ndarray, *, n_reference: int | None = None) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic D and its asymptotic p-value.

    ``n_reference`` overrides the reference's sample size in the p-value (not in D): a reference pooled from
    several weeks of the same customers holds each customer several times, and counting those rows as
    independent would make the test far too eager. With ties (counts, zeros) the p-value is conservative.
    """
    from scipy.stats import kstwobign

    ref = np.sort(reference)
    cur = np.sort(current)
    grid = np.concatenate([ref, cur])
    d = float(np.max(np.abs(np.searchsorted(ref, grid, side="right") / ref.size
                            - np.searchsorted(cur, grid, side="right") / cur.size)))
    n = float(n_reference or ref.size)
    m = float(cur.size)
    en = np.sqrt(n * m / (n + m))
    # Stephens' small-sample correction of the asymptotic distribution
    p = float(kstwobign.sf((en + 0.12 + 0.11 / en) * d))
    return d, min(max(p, 0.0), 1.0)


class ReferenceBins:
    """Quantile bin edges per feature, learned once from a reference window (``fit``) and then kept fixed.

    ``cuts_`` maps each feature to its right-closed cut points (None when the reference was constant),
    ``reference_`` to the reference's clean values; ``n_reference_`` to the reference's effective sample
    size (``n_effective`` given to ``fit``, else its row count). ``to_dict``/``from_dict`` store the edges.
    """

    def __init__(self, bins: int = 10) -> None:
        self.bins = bins

    def fit(self, reference: pd.DataFrame, columns: Sequence[str], n_effective: int | None = None) -> ReferenceBins:
        if isinstance(self.bins, bool) or int(self.bins) != self.bins or self.bins < 2:
            raise ValueError(f"bins must be an integer >= 2, got {self.bins!r}")
        self.cuts_: dict[str, np.ndarray | None] = {}
        self.reference_: dict[str, np.ndarray] = {}
        for column in columns:
            values = _clean(_numeric(reference[column]), f"reference {column!r}")
            self.reference_[column] = values
            self.cuts_[column] = _cut_points(values, int(self.bins))
        self.n_reference_ = int(n_effective) if n_effective else len(reference)
        return self

    def to_dict(self) -> dict[str, list[float] | None]:
        return {c: (None if cuts is None else [float(v) for v in cuts]) for c, cuts in self.cuts_.items()}


def feature_tests(bins: ReferenceBins, current: pd.DataFrame, columns: Sequence[str] | None = None,
                  *, eps: float = 1e-4) -> pd.DataFrame:
    """Per feature: PSI of ``current`` on the pinned reference bins and the KS test against the reference.

    Columns ``feature, psi, ks_stat, p_value, n_reference, n_current, reference_mean, current_mean``. A
    feature whose current values are all missing raises ``ValueError`` naming it.
    """
    if not hasattr(bins, "cuts_"):
        raise ValueError("ReferenceBins is not fitted: call fit() first")
    columns = list(bins.cuts_) if columns is None else list(columns)
    rows = []
    for column in columns:
        ref = bins.reference_[column]
        cur = _clean(_numeric(current[column]), f"current {column!r}")
        d, p = ks_test(ref, cur, n_reference=min(bins.n_reference_, ref.size))
        rows.append({"feature": column, "psi": psi_on_cuts(bins.cuts_[column], ref, cur, eps=eps), "ks_stat": d,
                     "p_value": p, "n_reference": min(bins.n_reference_, ref.size), "n_current": int(cur.size),
                     "reference_mean": float(ref.mean()), "current_mean": float(cur.mean())})
    return pd.DataFrame(rows, columns=["feature", "psi", "ks_stat", "p_value", "n_reference", "n_current",
                                       "reference_mean", "current_mean"])
