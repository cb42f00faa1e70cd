"""Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005, "RFM and CLV: Using iso-value curves
for customer base analysis", JMR 42(4); Fader & Hardie 2013, "The Gamma-Gamma model of monetary value").

A customer's transaction values are Gamma(p, nu) around their own mean p / nu, with nu ~ Gamma(q, gamma) across
customers. Fitted on repeat customers (x > 0) and the mean value zbar of their x repeat transactions; assumes
spend is independent of purchase frequency (check the correlation of x and zbar before relying on it).
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ml.clv._validation import as_vector, check_frequency
from ml.clv.fitting import compress, maximize_likelihood

__all__ = ["GammaGammaFitter", "gamma_gamma_log_likelihood"]


def gamma_gamma_log_likelihood(params, frequency, monetary_value) -> np.ndarray:
    """Per-customer log-density of the mean repeat value zbar given x > 0 transactions, ``params = (p, q, gamma)``."""
    p, q, gamma = (float(v) for v in params)
    x, zbar = (np.asarray(v, dtype=np.float64) for v in (frequency, monetary_value))
    px = p * x
    return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma) + px * np.log(x)
            + (px - 1) * np.log(zbar) - (px + q) * np.log(gamma + x * zbar))


def gamma_gamma_log_likelihood_gradient(params, frequency, monetary_value) -> np.ndarray:
    """Per-customer derivatives of :func:`gamma_gamma_log_likelihood` by log(p), log(q), log(gamma): shape (n, 3)."""
    # numpy floats: a parameter that underflows to 0 gives inf/nan (the search then reports no convergence),
    # never a Python ZeroDivisionError
    p, q, gamma = (np.float64(v) for v in params)
    x, zbar = (np.asarray(v, dtype=np.float64) for v in (frequency, monetary_value))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        px = p * x
        log_total = np.log(gamma + x * zbar)
        d_p = x * (digamma(px + q) - digamma(px) + np.log(x) + np.log(zbar) - log_total)
        d_q = digamma(px + q) - digamma(q) + np.log(gamma) - log_total
        d_gamma = q / gamma - (px + q) / (gamma + x * zbar)
        return np.column_stack([d_p * p, d_q * q, d_gamma * gamma])


def _check_spend(frequency, monetary_value) -> tuple[np.ndarray, np.ndarray]:
    x = check_frequency(frequency)
    zbar = as_vector("monetary_value", monetary_value, n=x.size)
    repeat = x > 0
    if np.any(zbar[repeat] <= 0):
        raise ValueError(f"monetary_value must be positive for repeat customers ({int((zbar[repeat] <= 0).sum())} "
                         "have 0 or less); leave customers whose repeat purchases were free out of the spend model")
    return x, zbar


class GammaGammaFitter(BaseEstimator):
    """Gamma-Gamma spend model fitted by maximum likelihood (SciPy, log-parameters).

    ``fit(frequency, monetary_value)`` uses the customers with ``frequency > 0`` (their ``monetary_value`` is the
    mean of their repeat transactions; the others are ignored) and sets ``p_``, ``q_``, ``gamma_``, ``params_``,
    ``log_likelihood_``, ``n_customers_`` (repeat customers used), ``converged_`` and ``optimizer_message_``.
    """

    def __init__(self, max_iter: int = 2000):
        self.max_iter = max_iter

    def fit(self, frequency, monetary_value) -> GammaGammaFitter:
        x, zbar = _check_spend(frequency, monetary_value)
        repeat = x > 0
        if repeat.sum() < 2:
            raise ValueError(f"the Gamma-Gamma model needs repeat customers (frequency > 0); got {int(repeat.sum())}")
        rows, weights = compress(x[repeat], zbar[repeat])

        def log_likelihood(theta: np.ndarray) -> np.ndarray:
            return gamma_gamma_log_likelihood(np.exp(theta), rows[:, 0], rows[:, 1])

        def gradient(theta: np.ndarray) -> np.ndarray:
            return gamma_gamma_log_likelihood_gradient(np.exp(theta), rows[:, 0], rows[:, 1])

        fit = maximize_likelihood(log_likelihood, weights, n_params=3, max_iter=self.max_iter, gradient=gradient)
        self.p_, self.q_, self.gamma_ = (float(v) for v in np.exp(fit.theta))
        self.params_ = {"p": self.p_, "q": self.q_, "gamma": self.gamma_}
        self.log_likelihood_ = fit.log_likelihood
        self.converged_ = fit.converged
        self.optimizer_message_ = fit.message
        self.n_customers_ = int(repeat.sum())
        return self

    def population_mean_spend(self) -> float:
        """E[M] = p gamma / (q - 1): expected spend per transaction of a customer about whom nothing is known."""
        check_is_fitted(self, "params_")
        if self.q_ <= 1:
            raise ValueError(f"the mean spend is infinite for q <= 1 (q = {self.q_:.3f})")
        return self.p_ * self.gamma_ / (self.q_ - 1)

    def conditional_expected_spend(self, frequency, monetary_value) -> np.ndarray:
        """E[M | x, zbar] = (gamma + x zbar) p / (p x + q - 1): a weighted mean of the population mean and the
        customer's own mean, the weight moving to the customer's mean as x grows; the population mean for x = 0."""
        check_is_fitted(self, "params_")
        x, zbar = _check_spend(frequency, monetary_value)
        zbar = np.where(x > 0, zbar, 0.0)
        if self.q_ <= 1:
            raise ValueError(f"the expected spend is infinite for q <= 1 (q = {self.q_:.3f})")
        return self.p_ * (self.gamma_ + x * zbar) / (self.p_ * x + self.q_ - 1)
