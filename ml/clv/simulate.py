"""Draw purchase histories from BG/NBD and Gamma-Gamma with known parameters (for tests and evaluations)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SimulatedCohort", "simulate_bgnbd"]


@dataclass(frozen=True)
class SimulatedCohort:
    """Per customer: calibration summary (frequency, recency, T), holdout purchases in (T, T + holdout], whether
    the customer is still active at T, and the mean value of the repeat calibration purchases (0 when none)."""

    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    frequency_holdout: np.ndarray
    alive_at_T: np.ndarray
    monetary_value: np.ndarray


def simulate_bgnbd(n: int, *, r: float, alpha: float, a: float, b: float, T, holdout: float = 0.0,
                   spend: tuple[float, float, float] | None = None, seed: int | None = None) -> SimulatedCohort:
    """``n`` customers acquired at time 0 with ages ``T`` (scalar or per customer): lambda ~ Gamma(r, alpha), p ~
    Beta(a, b); a customer buys at rate lambda and drops out after each repeat purchase with probability p.
    ``spend = (p, q, gamma)`` draws values: nu ~ Gamma(q, gamma), each purchase ~ Gamma(p, nu)."""
    rng = np.random.default_rng(seed)
    big_t = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,)).copy()
    rate = rng.gamma(r, 1.0 / alpha, size=n)
    dropout = rng.beta(a, b, size=n)
    nu = rng.gamma(spend[1], 1.0 / spend[2], size=n) if spend else None
    now = np.zeros(n)
    frequency = np.zeros(n)
    recency = np.zeros(n)
    in_holdout = np.zeros(n)
    value_sum = np.zeros(n)
    active = np.ones(n, dtype=bool)  # still buying (not dropped out) and not past the end of the holdout
    alive = np.ones(n, dtype=bool)
    end = big_t + holdout
    while active.any():
        idx = np.flatnonzero(active)
        now[idx] += rng.exponential(1.0 / np.maximum(rate[idx], 1e-300))
        past = now[idx] > end[idx]
        active[idx[past]] = False
        buying = idx[~past]
        calibration = now[buying] <= big_t[buying]
        cal, hold = buying[calibration], buying[~calibration]
        frequency[cal] += 1
        recency[cal] = now[cal]
        if nu is not None:
            value_sum[cal] += rng.gamma(spend[0], 1.0 / nu[cal])
        in_holdout[hold] += 1
        died = buying[rng.random(buying.size) < dropout[buying]]
        active[died] = False
        alive[died[now[died] <= big_t[died]]] = False
    monetary = np.divide(value_sum, frequency, out=np.zeros(n), where=frequency > 0)
    return SimulatedCohort(frequency, recency, big_t, in_holdout, alive, monetary)
