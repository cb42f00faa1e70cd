"""Input checks shared by the CLV models: one clear ``ValueError`` per kind of bad input."""

from __future__ import annotations

import numpy as np


def as_vector(name: str, values, *, n: int | None = None) -> np.ndarray:
    """``values`` as a finite 1-D float array (of length ``n`` when given)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if n is not None and array.shape[0] != n:
        raise ValueError(f"{name} has {array.shape[0]} values, frequency has {n}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds NaN or infinite values ({int((~np.isfinite(array)).sum())} of them)")
    return array


def check_frequency(frequency) -> np.ndarray:
    x = as_vector("frequency", frequency)
    if x.size == 0:
        raise ValueError("no customers: frequency is empty")
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("frequency must hold non-negative whole numbers (repeat purchases per customer)")
    return x


def check_rft(frequency, recency, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frequency x (repeat purchases), recency t_x (first to last purchase) and age T (first purchase to the end
    of the calibration period), all in one time unit: 0 <= t_x <= T, and t_x = 0 when x = 0."""
    x = check_frequency(frequency)
    t_x = as_vector("recency", recency, n=x.size)
    big_t = as_vector("T", T, n=x.size)
    if np.any(t_x < 0) or np.any(big_t < 0):
        raise ValueError("recency and T must be non-negative")
    if np.any(t_x > big_t * (1 + 1e-12)):
        raise ValueError(f"recency exceeds T for {int((t_x > big_t).sum())} customers: recency is the time from the "
                         "first to the last purchase, T from the first purchase to the end of the period")
    if np.any((x == 0) & (t_x > 0)):
        raise ValueError("recency must be 0 for customers without repeat purchases (frequency 0); is recency "
                         "perhaps 'time since the last purchase'? Here it is first to last purchase")
    return x, t_x, big_t
