"""Confidence intervals for rates, means and their differences (two-sided, normal / t based).

Each function returns ``(estimate, low, high)``; NaN where the sample cannot support an interval (no
observations, or fewer than two for a variance).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

__all__ = ["mean_ci", "newcombe_diff", "ratio_ci", "welch_diff", "wilson", "z_value"]

NAN3 = (math.nan, math.nan, math.nan)


def z_value(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    return float(stats.norm.ppf(0.5 + confidence / 2))


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """Share ``successes / n`` with the Wilson score interval (sound near 0 and 1 and for small n)."""
    if successes < 0 or successes > n:
        raise ValueError(f"wilson: need 0 <= successes <= n, got {successes} of {n}")
    z = z_value(confidence)
    if n == 0:
        return NAN3
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact bounds where rounding would leave 1e-17
    high = 1.0 if successes == n else min(1.0, centre + half)
    return p, low, high


def newcombe_diff(k_treat: int, n_treat: int, k_ctrl: int, n_ctrl: int,
                  confidence: float = 0.95) -> tuple[float, float, float]:
    """Difference of proportions ``p_treat - p_ctrl`` with Newcombe's hybrid score interval (method 10 of
    Newcombe 1998), built from the two Wilson intervals: good coverage even for small arms and rare events."""
    p1, l1, u1 = wilson(k_treat, n_treat, confidence)
    p0, l0, u0 = wilson(k_ctrl, n_ctrl, confidence)
    if math.isnan(p1) or math.isnan(p0):
        return NAN3
    d = p1 - p0
    return d, d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)


def _finite(values: ArrayLike, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(arr).all():
        raise ValueError(f"{what}: values must be finite numbers (no NaN / inf)")
    return arr


def mean_ci(values: ArrayLike, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean with a Student t interval."""
    x = _finite(values, "mean_ci")
    z_value(confidence)
    if x.size == 0:
        return NAN3
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def welch_diff(treat: ArrayLike, ctrl: ArrayLike, confidence: float = 0.95) -> tuple[float, float, float]:
    """Difference of means ``mean(treat) - mean(ctrl)`` with Welch's t interval (unequal variances,
    Welch–Satterthwaite degrees of freedom)."""
    x1, x0 = _finite(treat, "welch_diff"), _finite(ctrl, "welch_diff")
    z_value(confidence)
    if x1.size == 0 or x0.size == 0:
        return NAN3
    d = float(x1.mean() - x0.mean())
    if x1.size < 2 or x0.size < 2:
        return d, math.nan, math.nan
    a, b = x1.var(ddof=1) / x1.size, x0.var(ddof=1) / x0.size
    se = math.sqrt(a + b)
    if se == 0:  # both arms constant (e.g. nobody bought): the t interval cannot express the uncertainty
        return d, math.nan, math.nan
    df = (a + b) ** 2 / (a * a / (x1.size - 1) + b * b / (x0.size - 1))
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    return d, d - half, d + half


def ratio_ci(numerator: ArrayLike, denominator: ArrayLike,
             confidence: float = 0.95) -> tuple[float, float, float]:
    """Ratio of sums ``sum(num) / sum(den)`` over units (e.g. revenue / orders over customers = AOV) with a
    delta-method (linearisation) interval that treats the unit, not the order, as the sample: orders of one
    customer are not independent. t quantile with units - 1 degrees of freedom (a little wider for few units)."""
    num, den = _finite(numerator, "ratio_ci"), _finite(denominator, "ratio_ci")
    if num.shape != den.shape:
        raise ValueError("ratio_ci: numerator and denominator need the same length")
    z_value(confidence)
    if num.size == 0 or den.sum() == 0:
        return NAN3
    ratio = float(num.sum() / den.sum())
    m = num.size
    if m < 2:
        return ratio, math.nan, math.nan
    residual = num - ratio * den
    half = stats.t.ppf(0.5 + confidence / 2, m - 1) * math.sqrt(residual.var(ddof=1) / m) / den.mean()
    return ratio, ratio - half, ratio + half
