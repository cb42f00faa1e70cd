"""Customer lifetime value over a finite horizon from a fitted BG/NBD model and an expected spend."""

from __future__ import annotations

import numpy as np

from ml.clv._validation import as_vector, check_rft
from ml.clv.bgnbd import BetaGeoFitter

__all__ = ["customer_lifetime_value", "horizon_purchases"]

DAYS_PER_YEAR = 365.25


def customer_lifetime_value(model: BetaGeoFitter, frequency, recency, T, expected_spend, *, horizon_weeks: int,
                            annual_discount_rate: float, margin: float, time_unit_days: float = 7.0) -> np.ndarray:
    """Discounted margin of each customer's expected purchases over the next ``horizon_weeks`` weeks:

        CLV = margin * E[spend] * sum_{w=1..H} (E[Y(w)] - E[Y(w-1)]) / (1 + annual_discount_rate)^(7 w / 365.25)

    where E[Y(w)] is the BG/NBD conditional expectation of purchases in the next w weeks (``model`` fitted in time
    units of ``time_unit_days`` days: 7 for weeks, 1 for days) and ``expected_spend`` the expected value of one
    purchase (e.g. Gamma-Gamma's conditional expectation). Purchases of week w are discounted to today from the
    end of that week.
    """
    x, t_x, big_t = check_rft(frequency, recency, T)
    spend = as_vector("expected_spend", expected_spend, n=x.size)
    if isinstance(horizon_weeks, bool) or int(horizon_weeks) != horizon_weeks or horizon_weeks < 1:
        raise ValueError(f"horizon_weeks must be a whole number >= 1, got {horizon_weeks!r}")
    if not (0 <= annual_discount_rate < 1):
        raise ValueError(f"annual_discount_rate must be in [0, 1), got {annual_discount_rate!r}")
    if not (0 < margin <= 1):
        raise ValueError(f"margin must be in (0, 1], got {margin!r}")
    if not time_unit_days > 0:
        raise ValueError(f"time_unit_days must be positive, got {time_unit_days!r}")
    if np.any(spend < 0):
        raise ValueError("expected_spend must be non-negative")
    _, discounted = horizon_purchases(model, x, t_x, big_t, horizon_weeks=horizon_weeks,
                                      annual_discount_rate=annual_discount_rate, time_unit_days=time_unit_days)
    return margin * spend * discounted


def horizon_purchases(model: BetaGeoFitter, frequency, recency, T, *, horizon_weeks: int,
                      annual_discount_rate: float, time_unit_days: float = 7.0) -> tuple[np.ndarray, np.ndarray]:
    """Per customer: expected purchases in the next ``horizon_weeks`` weeks, and the same purchases each
    discounted to today from the end of its week. Computed once per distinct (x, t_x, T)."""
    x, t_x, big_t = check_rft(frequency, recency, T)
    rows, inverse = np.unique(np.column_stack([x, t_x, big_t]), axis=0, return_inverse=True)
    ux, ut_x, ubig_t = rows.T
    discounted = np.zeros_like(ux)
    previous = np.zeros_like(ux)
    for week in range(1, int(horizon_weeks) + 1):
        cumulative = model.expected_purchases(week * 7.0 / time_unit_days, ux, ut_x, ubig_t)
        discounted += (cumulative - previous) * (1.0 + annual_discount_rate) ** (-week * 7.0 / DAYS_PER_YEAR)
        previous = cumulative
    inverse = inverse.reshape(-1)
    return previous[inverse], discounted[inverse]
