"""ml.clv: BG/NBD, Gamma-Gamma and CLV - closed forms, recovery of known parameters, input validation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime
from scipy.special import hyp2f1
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from ml.clv import (
    BetaGeoFitter,
    GammaGammaFitter,
    bgnbd_log_likelihood,
    customer_lifetime_value,
    gamma_gamma_log_likelihood,
    simulate_bgnbd,
)
from ml.clv.bgnbd import bgnbd_log_likelihood_gradient
from ml.clv.gamma_gamma import gamma_gamma_log_likelihood_gradient

# FHL 2005's CDNOW estimates (weeks), used where a test needs a realistic fitted model without fitting one
PAPER = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
TRUE = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
SPEND = {"p": 6.0, "q": 4.0, "gamma": 15.0}


def _model(params=PAPER) -> BetaGeoFitter:
    model = BetaGeoFitter()
    model.r_, model.alpha_, model.a_, model.b_ = (params[k] for k in ("r", "alpha", "a", "b"))
    model.params_ = dict(params)
    return model


def _cohort(seed: int, n: int = 6000):
    ages = np.random.default_rng(seed + 1).integers(26 * 7, 39 * 7 + 1, n) / 7  # acquired over 13 weeks, in days
    return simulate_bgnbd(n, **TRUE, T=ages, holdout=39, spend=tuple(SPEND.values()), seed=seed)


@pytest.fixture(scope="module", params=[7, 2024])
def fitted(request):
    cohort = _cohort(request.param)
    model = BetaGeoFitter().fit(cohort.frequency, cohort.recency, cohort.T)
    spend = GammaGammaFitter().fit(cohort.frequency, cohort.monetary_value)
    return cohort, model, spend


# --- closed forms -------------------------------------------------------------------------------------------

def test_conditional_expectation_matches_the_papers_worked_example():
    """FHL 2005, section 5: x = 2, t_x = 30.43, T = 38.86 -> 1.226 purchases expected in the next 39 weeks."""
    assert _model().expected_purchases(39, [2], [30.43], [38.86])[0] == pytest.approx(1.226, abs=5e-4)


def test_euler_form_equals_the_direct_hypergeometric_form():
    r, alpha, a, b = PAPER.values()
    x = np.array([0.0, 1, 2, 5, 10])
    t_x = np.array([0.0, 30.43, 20, 35, 37])
    big_t = np.full(5, 38.86)
    t = 39.0
    z = t / (alpha + big_t + t)
    direct = ((a + b + x - 1) / (a - 1) * (1 - ((alpha + big_t) / (alpha + big_t + t)) ** (r + x)
                                           * hyp2f1(r + x, b + x, a + b + x - 1, z))
              / (1 + (x > 0) * a / (b + x - 1) * ((alpha + big_t) / (alpha + t_x)) ** (r + x)))
    np.testing.assert_allclose(_model().expected_purchases(t, x, t_x, big_t), direct, rtol=1e-9)


def test_heavy_buyers_stay_finite():
    """The direct form multiplies an overflowing 2F1 by an underflowing power (inf * 0) at x = 1000; Euler's does not."""
    r, alpha, a, b = PAPER.values()
    x, big_t, t = 1000.0, 38.86, 52.0
    z = t / (alpha + big_t + t)
    with np.errstate(all="ignore"):
        direct = ((alpha + big_t) / (alpha + big_t + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
    assert not np.isfinite(direct)
    out = _model().expected_purchases(t, [x], [big_t], [big_t])  # bought on the last day: alive
    assert np.isfinite(out).all() and out[0] > 500


def test_expectations_grow_with_the_horizon_and_start_at_zero():
    model = _model()
    horizons = np.array([0.0, 1, 13, 52, 104])
    values = [model.expected_purchases(t, [3], [20.0], [38.0])[0] for t in horizons]
    assert values[0] == 0.0
    assert np.all(np.diff(values) > 0)
    new = model.expected_purchases_new_customer(horizons)
    assert new[0] == 0.0 and np.all(np.diff(new) > 0)


def test_probability_alive_is_one_without_repeats_and_falls_with_silence():
    model = _model()
    assert model.probability_alive([0], [0.0], [30.0])[0] == 1.0
    recent, quiet = model.probability_alive([4, 4], [29.0, 5.0], [30.0, 30.0])
    assert 0 < quiet < recent < 1


def test_log_likelihood_of_a_customer_seen_for_no_time_is_zero():
    assert bgnbd_log_likelihood(tuple(PAPER.values()), [0], [0.0], [0.0])[0] == pytest.approx(0.0)


def test_analytic_gradients_equal_finite_differences():
    x, t_x, big_t = np.array([0.0, 1, 2, 5, 30]), np.array([0.0, 3, 20, 35, 37]), np.full(5, 38.86)
    theta = np.log([0.3, 4.0, 0.8, 2.5])
    for i in range(5):
        rows = (x[i:i + 1], t_x[i:i + 1], big_t[i:i + 1])
        numeric = approx_fprime(theta, lambda t, rows=rows: bgnbd_log_likelihood(np.exp(t), *rows)[0], 1e-7)
        np.testing.assert_allclose(bgnbd_log_likelihood_gradient(np.exp(theta), *rows)[0], numeric, atol=1e-5)
    x, zbar, theta = np.array([1.0, 2, 3, 8]), np.array([10.0, 20, 35, 50]), np.log([6.0, 4.0, 15.0])
    for i in range(4):
        rows = (x[i:i + 1], zbar[i:i + 1])
        numeric = approx_fprime(theta, lambda t, rows=rows: gamma_gamma_log_likelihood(np.exp(t), *rows)[0], 1e-7)
        np.testing.assert_allclose(gamma_gamma_log_likelihood_gradient(np.exp(theta), *rows)[0], numeric, atol=1e-5)


# --- recovery of known parameters ---------------------------------------------------------------------------

def test_bgnbd_recovers_the_parameters_it_was_simulated_with(fitted):
    cohort, model, _ = fitted
    assert model.converged_ and model.n_customers_ == cohort.frequency.size
    assert model.r_ == pytest.approx(TRUE["r"], rel=0.10)
    assert model.alpha_ == pytest.approx(TRUE["alpha"], rel=0.12)
    # a and b are estimated with strong correlation: their ratio (the mean dropout probability) is sharp
    assert model.a_ / (model.a_ + model.b_) == pytest.approx(TRUE["a"] / (TRUE["a"] + TRUE["b"]), rel=0.08)
    for name in ("a", "b"):
        assert getattr(model, f"{name}_") == pytest.approx(TRUE[name], rel=0.4)
    assert model.log_likelihood_ == pytest.approx(
        bgnbd_log_likelihood(tuple(model.params_.values()), cohort.frequency, cohort.recency, cohort.T).sum())
    # the estimate is a maximum: the true parameters explain the data less well
    assert model.log_likelihood_ >= bgnbd_log_likelihood(
        tuple(TRUE.values()), cohort.frequency, cohort.recency, cohort.T).sum()


def test_bgnbd_predicts_the_simulated_holdout_and_who_is_alive(fitted):
    cohort, model, _ = fitted
    predicted = model.expected_purchases(39, cohort.frequency, cohort.recency, cohort.T)
    # the holdout total of 6,000 customers varies by about 5% between draws (a few heavy buyers carry it): even
    # the true parameters miss it by that much
    assert predicted.sum() == pytest.approx(cohort.frequency_holdout.sum(), rel=0.10)
    truth = _model(TRUE).expected_purchases(39, cohort.frequency, cohort.recency, cohort.T)
    assert predicted.sum() == pytest.approx(truth.sum(), rel=0.08)
    alive = model.probability_alive(cohort.frequency, cohort.recency, cohort.T)
    assert alive.mean() == pytest.approx(cohort.alive_at_T.mean(), abs=0.02)
    # customers judged likely dead are mostly dead
    assert cohort.alive_at_T[alive < 0.3].mean() < 0.35


def test_gamma_gamma_recovers_the_spend_distribution(fitted):
    cohort, _, spend = fitted
    assert spend.converged_ and spend.n_customers_ == int((cohort.frequency > 0).sum())
    true_mean = SPEND["p"] * SPEND["gamma"] / (SPEND["q"] - 1)
    assert spend.population_mean_spend() == pytest.approx(true_mean, rel=0.05)
    for name, value in SPEND.items():
        assert getattr(spend, f"{name}_") == pytest.approx(value, rel=0.35)
    expected = spend.conditional_expected_spend(cohort.frequency, cohort.monetary_value)
    repeat = cohort.frequency > 0
    # shrinkage: a repeat customer's expectation lies between their own mean and the population mean
    low = np.minimum(cohort.monetary_value[repeat], spend.population_mean_spend())
    high = np.maximum(cohort.monetary_value[repeat], spend.population_mean_spend())
    assert np.all((expected[repeat] >= low - 1e-9) & (expected[repeat] <= high + 1e-9))
    np.testing.assert_allclose(expected[~repeat], spend.population_mean_spend())


# --- CLV ----------------------------------------------------------------------------------------------------

def test_clv_without_discount_is_margin_times_spend_times_expected_purchases():
    model = _model()
    x, t_x, big_t, spend = np.array([0, 2, 7]), np.array([0.0, 30.0, 37.0]), np.full(3, 38.0), np.array([30., 25, 40])
    value = customer_lifetime_value(model, x, t_x, big_t, spend, horizon_weeks=52, annual_discount_rate=0.0,
                                    margin=0.3)
    np.testing.assert_allclose(value, 0.3 * spend * model.expected_purchases(52, x, t_x, big_t), rtol=1e-12)


def test_clv_discounting_horizon_and_time_unit():
    model = _model()
    args = ([3], [20.0], [38.0], [30.0])
    plain = customer_lifetime_value(model, *args, horizon_weeks=52, annual_discount_rate=0.0, margin=1.0)[0]
    discounted = customer_lifetime_value(model, *args, horizon_weeks=52, annual_discount_rate=0.1, margin=1.0)[0]
    longer = customer_lifetime_value(model, *args, horizon_weeks=104, annual_discount_rate=0.1, margin=1.0)[0]
    assert plain / 1.1 < discounted < plain and longer > discounted
    # the same model in days (alpha in days, times in days) gives the same value
    daily = _model({**PAPER, "alpha": PAPER["alpha"] * 7})
    in_days = customer_lifetime_value(daily, [3], [140.0], [266.0], [30.0], horizon_weeks=52,
                                      annual_discount_rate=0.1, margin=1.0, time_unit_days=1.0)[0]
    assert in_days == pytest.approx(discounted, rel=1e-9)


# --- estimator conventions and validation --------------------------------------------------------------------

def test_estimators_follow_scikit_learn_conventions():
    assert clone(BetaGeoFitter(max_iter=50)).get_params() == {"max_iter": 50}
    with pytest.raises(NotFittedError):
        BetaGeoFitter().probability_alive([1], [1.0], [2.0])
    with pytest.raises(NotFittedError):
        GammaGammaFitter().conditional_expected_spend([1], [10.0])


@pytest.mark.parametrize(("frequency", "recency", "T", "message"), [
    ([1, 2], [1.0], [2.0, 3.0], "recency has 1 values"),
    ([-1], [0.0], [2.0], "non-negative whole numbers"),
    ([1.5], [1.0], [2.0], "non-negative whole numbers"),
    ([1], [3.0], [2.0], "recency exceeds T"),
    ([0], [1.0], [2.0], "recency must be 0"),
    ([1], [np.nan], [2.0], "NaN or infinite"),
    ([], [], [], "no customers"),
    ([[1]], [[1.0]], [[2.0]], "one-dimensional"),
])
def test_bgnbd_rejects_bad_summaries(frequency, recency, T, message):
    with pytest.raises(ValueError, match=message):
        BetaGeoFitter().fit(frequency, recency, T)


def test_gamma_gamma_rejects_free_repeat_purchases_and_too_few_buyers():
    with pytest.raises(ValueError, match="monetary_value must be positive"):
        GammaGammaFitter().fit([1, 2, 3], [10.0, 0.0, 5.0])
    with pytest.raises(ValueError, match="needs repeat customers"):
        GammaGammaFitter().fit([0, 0, 1], [0.0, 0.0, 5.0])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"horizon_weeks": 0}, "horizon_weeks"), ({"horizon_weeks": 2.5}, "horizon_weeks"),
    ({"annual_discount_rate": 1.5}, "annual_discount_rate"), ({"margin": 0.0}, "margin"),
    ({"time_unit_days": 0.0}, "time_unit_days"),
])
def test_clv_rejects_bad_settings(kwargs, message):
    settings = {"horizon_weeks": 52, "annual_discount_rate": 0.1, "margin": 0.3, **kwargs}
    with pytest.raises(ValueError, match=message):
        customer_lifetime_value(_model(), [1], [1.0], [2.0], [10.0], **settings)
