"""Statistical process control for weekly segment KPIs and trend breaks in daily activity series.

Control charts (individuals chart): centre = mean of a baseline window, sigma from the average moving range
(MR-bar / 1.128, the standard estimate for one observation per period: robust to a slow trend inside the
baseline, unlike the plain standard deviation). Western Electric run rules, each on one side of the centre:

1. one point beyond 3 sigma;
2. two of three consecutive points beyond 2 sigma;
3. four of five consecutive points beyond 1 sigma;
4. eight consecutive points on one side of the centre.

Trend breaks: STL (seasonal-trend decomposition by Loess, statsmodels) with a weekly period on a daily series.
The decomposition is fitted robustly (an outlier stays in the residual instead of bending the trend), the noise
scale comes from the plain fit's residuals (1.4826 x MAD: the robust fit's residuals are near zero for most days,
so their MAD understates the noise ~2x). Two kinds of break:

- *outlier*: a day whose robust residual is further than ``k`` noise scales from the residuals' median;
- *level shift*: the trend moved by at least ``min_relative_change`` of its level over the last ``window`` days
  and by at least ``k`` noise scales (STL puts a lasting shift at the series' end into the trend, not the
  residual, so it needs its own test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["ControlLimits", "control_limits", "level_shift", "run_rule_signals", "trend_breaks"]

_D2 = 1.128  # d2 constant for moving ranges of two observations


@dataclass(frozen=True)
class ControlLimits:
    center: float
    sigma: float

    def zone(self, value: float) -> float:
        """Signed distance from the centre in sigmas."""
        return (value - self.center) / self.sigma if self.sigma > 0 else 0.0


def control_limits(baseline: np.ndarray | list[float], *, min_sigma: float = 0.0) -> ControlLimits:
    """Centre and sigma of an individuals chart from a baseline window (at least 2 finite values).

    ``min_sigma`` floors sigma: a KPI that never moved in the baseline (sigma 0) would otherwise flag any change.
    """
    x = np.asarray(baseline, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size < 2:
        raise ValueError("control_limits needs at least 2 finite baseline values")
    sigma = float(np.mean(np.abs(np.diff(x))) / _D2)
    return ControlLimits(center=float(x.mean()), sigma=max(sigma, float(min_sigma)))


def run_rule_signals(values: np.ndarray | list[float], limits: ControlLimits,
                     rules: tuple[int, ...] = (1, 2, 3, 4)) -> pd.DataFrame:
    """Western Electric rule violations: one row per (index, rule) whose window ends at that index.

    Columns ``index, rule, side`` (side +1 above the centre, -1 below). Non-finite values break runs.
    """
    x = np.asarray(values, dtype=np.float64)
    z = np.array([limits.zone(v) if np.isfinite(v) else np.nan for v in x])
    rows = []
    windows = {1: (1, 1, 3.0), 2: (3, 2, 2.0), 3: (5, 4, 1.0), 4: (8, 8, 0.0)}
    for rule in rules:
        if rule not in windows:
            raise ValueError(f"unknown run rule {rule!r}; known: 1-4")
        length, needed, bound = windows[rule]
        for i in range(length - 1, len(z)):
            window = z[i - length + 1:i + 1]
            if np.isnan(window).any() or np.isnan(z[i]):
                continue
            for side in (1, -1):
                beyond = side * window > bound
                # the window's last point must itself be beyond, so a violation is reported when it happens
                if beyond.sum() >= needed and side * z[i] > bound:
                    rows.append({"index": i, "rule": rule, "side": side})
    return pd.DataFrame(rows, columns=["index", "rule", "side"]).sort_values(["index", "rule"], ignore_index=True)


def trend_breaks(series: pd.Series, *, period: int = 7, k: float = 6.0, min_periods: int = 3,
                 seasonal: int = 13) -> pd.DataFrame:
    """STL decomposition of a daily series and the days whose residual is an outlier.

    ``series`` is indexed by day (missing days of a DatetimeIndex are filled with 0: no activity). Returns one
    row per day with ``value, trend, seasonal, resid, scale, threshold, is_break`` (threshold = k noise scales
    around the residuals' median). Fewer than ``min_periods`` full periods raise ``ValueError``.
    """
    from statsmodels.tsa.seasonal import STL

    if period < 2:
        raise ValueError("period must be >= 2")
    s = series.astype("float64").sort_index()
    if len(s) > 0 and isinstance(s.index, pd.DatetimeIndex):
        s = s.asfreq("D", fill_value=0.0)
    if len(s) < period * min_periods:
        raise ValueError(f"trend_breaks needs at least {period * min_periods} days, got {len(s)}")
    x = s.to_numpy()
    fit = STL(x, period=period, seasonal=seasonal, robust=True).fit()
    plain = np.asarray(STL(x, period=period, seasonal=seasonal, robust=False).fit().resid)
    resid = np.asarray(fit.resid)
    center = float(np.median(resid))
    # a series without noise (e.g. constant) has MAD 0: floor the scale at 1% of its level
    scale = max(float(np.median(np.abs(plain - np.median(plain)))) * 1.4826, 1e-9 + 0.01 * float(np.mean(np.abs(x))))
    out = pd.DataFrame({"value": x, "trend": np.asarray(fit.trend), "seasonal": np.asarray(fit.seasonal),
                        "resid": resid}, index=s.index)
    out["scale"] = scale
    out["threshold"] = k * scale
    out["is_break"] = np.abs(resid - center) > k * scale
    return out


def level_shift(decomposition: pd.DataFrame, *, window: int = 7, k: float = 6.0,
                min_relative_change: float = 0.25) -> dict:
    """The trend's move over the last ``window`` days of a :func:`trend_breaks` result, and whether it is a
    level shift (at least ``min_relative_change`` of the earlier level and ``k`` noise scales)."""
    if len(decomposition) <= window:
        raise ValueError(f"level_shift needs more than {window} days")
    before = float(decomposition["trend"].iloc[-window - 1])
    after = float(decomposition["trend"].iloc[-1])
    change = after - before
    relative = change / abs(before) if before != 0 else (np.inf if change else 0.0)
    scale = float(decomposition["scale"].iloc[-1])
    return {"before": before, "after": after, "change": change, "relative": float(relative),
            "is_shift": bool(abs(relative) >= min_relative_change and abs(change) >= k * scale)}
