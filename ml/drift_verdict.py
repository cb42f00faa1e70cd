"""One verdict from many drift tests: multiplicity control plus an effect-size floor; segment-level drift.

A week runs dozens of tests (features x references, segment shares, features within each segment's cohort).
Each test row carries a p-value and an effect size (PSI). :func:`adjust_pvalues` corrects the p-values for the
whole family (Holm: family-wise error; Benjamini-Hochberg: false discovery rate), and :func:`verdict` calls a
row *drift* only when it is significant after correction **and** its effect reaches the floor: with tens of
thousands of customers a KS test finds trivial shifts, and with a few hundred a large PSI can be noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["adjust_pvalues", "centroid_shift", "share_drift", "silhouette_trend", "verdict"]

METHODS = ("holm", "bh")


def adjust_pvalues(p_values: Sequence[float] | np.ndarray, method: str = "holm") -> np.ndarray:
    """Multiplicity-adjusted p-values (same order), Holm step-down or Benjamini-Hochberg step-up."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("p-values must be a 1-d array of numbers in [0, 1]")
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if method == "holm":
        adjusted = np.maximum.accumulate((m - np.arange(m)) * ranked)
    else:
        adjusted = np.minimum.accumulate(m / np.arange(m, 0, -1) * ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def verdict(tests: pd.DataFrame, *, alpha: float = 0.05, method: str = "holm") -> tuple[str, pd.DataFrame]:
    """Overall verdict of a family of tests, and the rows with ``p_adjusted`` and ``status`` added.

    ``tests`` needs ``p_value``, ``effect`` and ``floor`` (the effect a row must reach to count). A row is
    "drift" when p_adjusted < alpha and effect >= floor; "warn" when only one of the two holds (significant
    but small, or large but within noise); else "stable". The verdict is the worst row; "stable" when empty.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    out = tests.copy()
    out["p_adjusted"] = adjust_pvalues(out["p_value"].to_numpy(dtype=np.float64), method)
    significant = out["p_adjusted"] < alpha
    large = out["effect"] >= out["floor"]
    out["status"] = np.where(significant & large, "drift", np.where(significant | large, "warn", "stable"))
    if (out["status"] == "drift").any():
        return "drift", out
    if (out["status"] == "warn").any():
        return "warn", out
    return "stable", out


def share_drift(reference_counts: Mapping[str, int], current_counts: Mapping[str, int],
                *, eps: float = 1e-4) -> dict:
    """Segment-share drift: chi-square goodness of fit of the current counts to the reference shares.

    Segments present on one side only are tested too (a reference share of 0 is floored at ``eps``, so a
    segment that appears from nothing is a large effect). Returns chi2, dof, p_value and psi (the effect).
    """
    from scipy.stats import chi2 as chi2_dist

    keys = sorted(set(reference_counts) | set(current_counts))
    ref = np.array([float(reference_counts.get(k, 0)) for k in keys])
    cur = np.array([float(current_counts.get(k, 0)) for k in keys])
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise ValueError("share_drift needs positive counts on both sides")
    e_share = np.maximum(ref / ref.sum(), eps)
    e_share = e_share / e_share.sum()
    a_share = np.maximum(cur / cur.sum(), eps)
    expected = e_share * cur.sum()
    stat = float(np.sum((cur - expected) ** 2 / expected))
    dof = max(len(keys) - 1, 1)
    return {"chi2": stat, "dof": dof, "p_value": float(chi2_dist.sf(stat, dof)),
            "psi": float(np.sum((a_share - e_share) * np.log(a_share / e_share)))}


def centroid_shift(reference: Mapping[str, Mapping[str, float]], current: Mapping[str, Mapping[str, float]],
                   scale: Mapping[str, float]) -> dict[str, float]:
    """Per segment id present on both sides: RMS over features of (current mean - reference mean) / scale.

    ``reference``/``current`` map segment id -> feature -> mean (a segment's profile); ``scale`` maps feature
    -> the population's standard deviation, so 1.0 means the profile moved by one population SD on average.
    Features without a positive scale, or without a mean on either side (None / NaN: nobody in the segment has
    a value), are skipped.
    """
    out = {}
    for sid in sorted(set(reference) & set(current)):
        diffs = [(current[sid][f] - reference[sid][f]) / scale[f] for f in reference[sid]
                 if f in current[sid] and scale.get(f, 0) > 0 and np.isfinite(scale[f])
                 and _finite(current[sid][f]) and _finite(reference[sid][f])]
        if diffs:
            out[sid] = float(np.sqrt(np.mean(np.square(diffs))))
    return out


def silhouette_trend(values: Sequence[float]) -> dict:
    """Trend of the weekly silhouette (oldest first): OLS slope per week, and the last value's drop below the
    median of the earlier ones (positive = worse). Fewer than 3 values give no slope."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"weeks": 0, "slope": None, "drop": None, "latest": None}
    slope = float(np.polyfit(np.arange(v.size), v, 1)[0]) if v.size >= 3 else None
    drop = float(np.median(v[:-1]) - v[-1]) if v.size >= 2 else None
    return {"weeks": int(v.size), "slope": slope, "drop": drop, "latest": float(v[-1])}


def _finite(value) -> bool:
    return value is not None and bool(np.isfinite(value))
