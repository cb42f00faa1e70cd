"""Predictive customer lifetime value: BG/NBD purchase frequency, Gamma-Gamma spend, discounted CLV.

Pure library (NumPy/SciPy/scikit-learn): arrays in, arrays out. See docs/clv.md.
"""

from ml.clv.bgnbd import BetaGeoFitter, bgnbd_log_likelihood
from ml.clv.gamma_gamma import GammaGammaFitter, gamma_gamma_log_likelihood
from ml.clv.simulate import SimulatedCohort, simulate_bgnbd
from ml.clv.value import customer_lifetime_value, horizon_purchases

__all__ = ["BetaGeoFitter", "GammaGammaFitter", "SimulatedCohort", "bgnbd_log_likelihood",
           "customer_lifetime_value", "gamma_gamma_log_likelihood", "horizon_purchases", "simulate_bgnbd"]
