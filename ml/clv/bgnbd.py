"""BG/NBD: the beta-geometric / negative binomial model of repeat purchasing (Fader, Hardie & Lee 2005,
"Counting your customers the easy way", Marketing Science 24(2)).

While active, a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha); after every repeat
purchase they drop out for good with probability p ~ Beta(a, b). The input per customer is the purchase summary
(x, t_x, T): repeat purchases, time from the first to the last purchase, time from the first purchase to the end
of the calibration period, in one time unit (the unit of alpha and of every ``t`` given to the predictions).
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ml.clv._validation import as_vector, check_rft
from ml.clv.fitting import compress, maximize_likelihood

__all__ = ["BetaGeoFitter", "bgnbd_log_likelihood", "bgnbd_log_likelihood_gradient"]


def bgnbd_log_likelihood(params, frequency, recency, T) -> np.ndarray:
    """Per-customer log-likelihood of (x, t_x, T) under BG/NBD ``params = (r, alpha, a, b)`` (FHL 2005, eq. 6)."""
    r, alpha, a, b = (float(v) for v in params)
    x, t_x, big_t = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    still_alive = betaln(a, b + x) - (r + x) * np.log(alpha + big_t)
    repeat = x > 0
    # dropped out right after the last purchase (only possible after a repeat purchase)
    dropped = np.full_like(x, -np.inf)
    dropped[repeat] = betaln(a + 1, b + x[repeat] - 1) - (r + x[repeat]) * np.log(alpha + t_x[repeat])
    return common + np.logaddexp(still_alive, dropped)


def bgnbd_log_likelihood_gradient(params, frequency, recency, T) -> np.ndarray:
    """Per-customer derivatives of :func:`bgnbd_log_likelihood` by log(r), log(alpha), log(a), log(b): shape (n, 4)."""
    r, alpha, a, b = (float(v) for v in params)
    x, t_x, big_t = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
    repeat = x > 0
    still_alive = betaln(a, b + x) - (r + x) * np.log(alpha + big_t)
    dropped = np.full_like(x, -np.inf)
    dropped[repeat] = betaln(a + 1, b + x[repeat] - 1) - (r + x[repeat]) * np.log(alpha + t_x[repeat])
    w_dropped = np.exp(dropped - np.logaddexp(still_alive, dropped))  # posterior weight of "dropped out"
    w_alive = 1 - w_dropped
    log_alpha_t = np.log(alpha + big_t)
    log_alpha_tx = np.log(alpha + t_x)
    psi_ab, psi_abx = digamma(a + b), digamma(a + b + x)
    b_x_minus_1 = np.where(repeat, b + x - 1, 1.0)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w_alive * log_alpha_t - w_dropped * log_alpha_tx
    d_alpha = r / alpha - (r + x) * (w_alive / (alpha + big_t) + w_dropped / (alpha + t_x))
    d_a = (-(digamma(a) - psi_ab) + w_alive * (digamma(a) - psi_abx) + w_dropped * (digamma(a + 1) - psi_abx))
    d_b = (-(digamma(b) - psi_ab) + w_alive * (digamma(b + x) - psi_abx)
           + w_dropped * (digamma(b_x_minus_1) - psi_abx))
    return np.column_stack([d_r * r, d_alpha * alpha, d_a * a, d_b * b])


class BetaGeoFitter(BaseEstimator):
    """BG/NBD fitted by maximum likelihood (SciPy, log-parameters).

    ``fit(frequency, recency, T)`` sets ``r_``, ``alpha_``, ``a_``, ``b_``, ``params_`` (a dict),
    ``log_likelihood_`` (total over customers), ``n_customers_``, ``converged_`` and ``optimizer_message_``.
    ``max_iter`` bounds the optimizer's iterations.
    """

    def __init__(self, max_iter: int = 2000):
        self.max_iter = max_iter

    def fit(self, frequency, recency, T) -> BetaGeoFitter:
        x, t_x, big_t = check_rft(frequency, recency, T)
        rows, weights = compress(x, t_x, big_t)

        def log_likelihood(theta: np.ndarray) -> np.ndarray:
            return bgnbd_log_likelihood(np.exp(theta), *rows.T)

        def gradient(theta: np.ndarray) -> np.ndarray:
            return bgnbd_log_likelihood_gradient(np.exp(theta), *rows.T)

        fit = maximize_likelihood(log_likelihood, weights, n_params=4, max_iter=self.max_iter, gradient=gradient)
        self.r_, self.alpha_, self.a_, self.b_ = (float(v) for v in np.exp(fit.theta))
        self.params_ = {"r": self.r_, "alpha": self.alpha_, "a": self.a_, "b": self.b_}
        self.log_likelihood_ = fit.log_likelihood
        self.converged_ = fit.converged
        self.optimizer_message_ = fit.message
        self.n_customers_ = int(x.size)
        return self

    # --- predictions -----------------------------------------------------------------------------------
    def _params(self) -> tuple[float, float, float, float]:
        check_is_fitted(self, "params_")
        return self.r_, self.alpha_, self.a_, self.b_

    def probability_alive(self, frequency, recency, T) -> np.ndarray:
        """P(still active at T | x, t_x, T) (FHL 2005 note "Computing P(alive) using the BG/NBD model")."""
        r, alpha, a, b = self._params()
        x, t_x, big_t = check_rft(frequency, recency, T)
        log_odds = np.full_like(x, -np.inf)
        repeat = x > 0
        xr = x[repeat]
        log_odds[repeat] = (np.log(a) - np.log(b + xr - 1)
                            + (r + xr) * (np.log(alpha + big_t[repeat]) - np.log(alpha + t_x[repeat])))
        return np.exp(-np.logaddexp(0.0, log_odds))

    def expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005, eq. 10), per customer; ``t`` a scalar or one value per
        customer. The Gaussian hypergeometric function is taken in Euler's form, (1 - z)^(a - 1) 2F1(a + b - 1 - r,
        a - 1; a + b + x - 1; z), whose parameters do not grow with x (the direct form overflows for heavy buyers).
        """
        r, alpha, a, b = self._params()
        x, t_x, big_t = check_rft(frequency, recency, T)
        t = np.broadcast_to(as_vector("t", t), x.shape) if np.ndim(t) else np.full_like(x, float(t))
        if np.any(t < 0):
            raise ValueError("t (the prediction horizon) must be non-negative")
        z = t / (alpha + big_t + t)
        tail = (1 - z) ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
        if abs(a - 1) < 1e-9:  # removable singularity at a = 1: the limit of (1 - tail) / (a - 1)
            raise ValueError("a = 1 exactly makes the closed form 0/0; refit or perturb a")
        numerator = (a + b + x - 1) / (a - 1) * (1 - tail)
        return numerator * self.probability_alive(x, t_x, big_t)

    def expected_purchases_new_customer(self, t) -> np.ndarray:
        """E[X(t)]: repeat purchases of a customer just acquired, over t (FHL 2005, eq. 9)."""
        r, alpha, a, b = self._params()
        t = np.asarray(t, dtype=np.float64)
        z = t / (alpha + t)
        return (a + b - 1) / (a - 1) * (1 - (1 - z) ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, a + b - 1, z))
