"""Maximum likelihood in log-parameter space, shared by the CLV models."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize


@dataclass(frozen=True)
class LikelihoodFit:
    theta: np.ndarray  # log-parameters at the optimum
    log_likelihood: float  # total over customers (weights applied)
    converged: bool
    message: str


def compress(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of the given columns and how often each occurs: the likelihood is evaluated once per
    distinct summary (CDNOW's 23,570 customers have about 9,000)."""
    stacked = np.column_stack(columns)
    rows, counts = np.unique(stacked, axis=0, return_counts=True)
    return rows, counts.astype(np.float64)


def maximize_likelihood(log_likelihood: Callable[[np.ndarray], np.ndarray], weights: np.ndarray, *, n_params: int,
                        max_iter: int, start: np.ndarray | None = None,
                        gradient: Callable[[np.ndarray], np.ndarray] | None = None) -> LikelihoodFit:
    """Maximize sum(weights * log_likelihood(theta)) over theta = log(params) with L-BFGS-B (``gradient(theta)``:
    per-row derivatives of the log-likelihood by theta, shape (rows, n_params); numerical without it); when it stops without reporting success (a flat ridge, a line search that fails), Nelder-Mead
    continues from its end point. Converged means the last optimizer reported success at a finite likelihood."""
    total = float(weights.sum())

    def objective(theta: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            value = -float(np.dot(weights, log_likelihood(theta))) / total
        return value if np.isfinite(value) else 1e300

    def jacobian(theta: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            value = -(weights @ gradient(theta)) / total
        return np.where(np.isfinite(value), value, 0.0)

    theta0 = np.zeros(n_params) if start is None else np.asarray(start, dtype=np.float64)
    first = minimize(objective, theta0, jac=jacobian if gradient is not None else None, method="L-BFGS-B",
                     options={"maxiter": max_iter, "ftol": 1e-14, "gtol": 1e-9})
    last = first
    if not first.success:
        last = minimize(objective, first.x, method="Nelder-Mead",
                        options={"maxiter": max_iter, "xatol": 1e-8, "fatol": 1e-13})
    best = last if last.fun <= first.fun else first
    converged = bool(last.success and best.fun < 1e299)
    return LikelihoodFit(theta=np.asarray(best.x), log_likelihood=float(-best.fun * total), converged=converged,
                         message=str(last.message))
