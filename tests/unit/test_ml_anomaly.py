"""Tests for ml.anomaly: robust z-scores, the two-detector flag rule, the reasons (synthetic planted outliers)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from ml.anomaly import AnomalyDetector, RobustZScaler, top_reasons

FEATURES = ["events_per_session", "events_per_minute", "sessions", "odd_device_share", "purchase_share"]


def _population(n: int, seed: int) -> np.ndarray:
    """People: heavy-tailed counts and rates, a device share that is almost always 0, purchases in [0, 1]."""
    rng = np.random.default_rng(seed)
    return np.column_stack([
        rng.lognormal(np.log(7), 0.5, n),
        rng.lognormal(np.log(1.0), 0.4, n),
        rng.poisson(rng.choice([1, 4, 12], n)),
        np.where(rng.random(n) < 0.005, rng.random(n), 0.0),
        rng.beta(1, 4, n),
    ])


def _bots(n: int, seed: int) -> np.ndarray:
    """A tight group: many fast events per session, an odd device, no purchases."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.normal(45, 3, n), rng.normal(15, 3, n), rng.poisson(40, n), np.ones(n),
                            np.zeros(n)])


def _planted(seed: int, people: int = 3000, bots: int = 60):
    X = np.vstack([_population(people, seed), _bots(bots, seed + 1)])
    truth = np.r_[np.zeros(people, bool), np.ones(bots, bool)]
    order = np.random.default_rng(seed + 2).permutation(len(X))
    return X[order], truth[order]


# the defaults flag nothing on the checks' small blob data (no point there is far from the rest), and the checks
# require a detector that flags something in its training data: a sensitive setting exercises the same code
@parametrize_with_checks([RobustZScaler(),
                          AnomalyDetector(n_estimators=20, density_sample=64, n_neighbors=10, isolation_threshold=0.5,
                                          density_threshold=1.2, rule="either", min_unusual_features=0,
                                          random_state=0)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_robust_z_uses_mad_then_mean_absolute_deviation_then_one():
    X = np.array([[1.0, 0.0, 5.0], [2.0, 0.0, 5.0], [3.0, 0.0, 5.0], [4.0, 0.0, 5.0], [1000.0, 10.0, 5.0]])
    scaler = RobustZScaler().fit(X)
    np.testing.assert_allclose(scaler.center_, [3.0, 0.0, 5.0])
    # MAD of |x - 3| = [2, 1, 0, 1, 997] is 1: the outlier does not inflate the spread
    assert scaler.scale_[0] == pytest.approx(1.4826)
    # four equal values: MAD 0, so the mean absolute deviation (10 / 5 = 2) scales it
    assert scaler.scale_[1] == pytest.approx(1.2533 * 2.0)
    assert scaler.scale_[2] == 1.0  # constant
    z = scaler.transform(X)
    assert z[4, 0] == pytest.approx(997 / 1.4826)
    assert z[4, 1] == pytest.approx(10 / 2.5066)


def test_robust_z_ignores_missing_values():
    X = np.array([[1.0], [np.nan], [3.0], [5.0]])
    scaler = RobustZScaler().fit(X)
    assert scaler.center_[0] == 3.0
    assert np.isnan(scaler.transform(X)[1, 0])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_planted_group_of_bots_is_flagged_and_people_are_not(seed):
    X, truth = _planted(seed)
    flagged = AnomalyDetector(random_state=seed).fit(X).predict(X) == -1
    tp = (flagged & truth).sum()
    assert tp / truth.sum() >= 0.95
    assert tp / max(flagged.sum(), 1) >= 0.95


def test_one_extreme_feature_alone_is_not_enough():
    """People with a rare odd device (one feature far out) are isolated by both detectors but not flagged."""
    X, truth = _planted(2)
    odd_people = ~truth & (X[:, 3] > 0)
    assert odd_people.sum() >= 5
    strict = AnomalyDetector(random_state=2).fit(X)
    lenient = AnomalyDetector(min_unusual_features=0, random_state=2).fit(X)
    assert (lenient.predict(X[odd_people]) == -1).sum() >= 3  # both detectors do find them
    assert (strict.predict(X[odd_people]) == -1).sum() == 0


def test_clean_data_has_almost_no_flags():
    X = _population(4000, 5)
    flagged = AnomalyDetector(random_state=5).fit(X).predict(X) == -1
    assert flagged.mean() <= 0.005


def test_a_group_larger_than_the_neighbourhood_masks_itself_from_density():
    """The documented limit: with fewer neighbours than group members in the reference, LOF sees a cluster."""
    X, truth = _planted(7, people=3000, bots=150)  # ~5%: about 24 of the 512 reference rows
    wide = AnomalyDetector(n_neighbors=100, random_state=7).fit(X).density_scores(X)
    narrow = AnomalyDetector(n_neighbors=10, random_state=7).fit(X).density_scores(X)
    assert np.median(wide[truth]) > 3.0
    assert np.median(narrow[truth]) < 1.5


def test_either_rule_flags_a_superset_of_both():
    X, _ = _planted(4)
    X = np.vstack([X, [[2.0, 1.0, 4, 0.0, 0.0]] * 3])  # duplicates of an ordinary profile
    both = AnomalyDetector(min_unusual_features=0, random_state=0).fit(X).predict(X) == -1
    either = AnomalyDetector(rule="either", min_unusual_features=0, random_state=0).fit(X).predict(X) == -1
    assert (either | both).sum() == either.sum() and either.sum() > both.sum()


def test_scores_and_margin_agree_with_the_rule():
    X, _ = _planted(8)
    det = AnomalyDetector(random_state=8).fit(X)
    s, lof, margin = det.isolation_scores(X), det.density_scores(X), det.decision_function(X)
    details = det.score_details(X)
    np.testing.assert_allclose(details["isolation"], s)
    np.testing.assert_allclose(details["margin"], margin)
    assert ((s > 0) & (s < 1)).all() and (lof > 0).all()
    unusual = (np.abs(det.robust_z(X)) > det.unusual_z).sum(axis=1)
    by_rule = (s > det.isolation_threshold) & (lof > det.density_threshold) & (unusual >= 2)
    assert by_rule.sum() > 10
    np.testing.assert_array_equal(margin < 0, by_rule)
    np.testing.assert_array_equal(det.predict(X) == -1, by_rule)


def test_same_random_state_same_scores_and_missing_values_are_imputed():
    X, _ = _planted(9)
    X[::17, 1] = np.nan
    a = AnomalyDetector(random_state=3).fit(X).score_samples(X)
    b = AnomalyDetector(random_state=3).fit(X).score_samples(X)
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all()


def test_reasons_name_the_planted_features_with_direction():
    X, truth = _planted(10)
    det = AnomalyDetector(random_state=10).fit(X)
    reasons = top_reasons(det.robust_z(X), FEATURES, top=3, min_abs_z=3.5)
    for row in np.flatnonzero(truth)[:10]:
        named = {r["feature"]: r["direction"] for r in reasons[row]}
        assert named.get("odd_device_share") == "high" and named.get("events_per_minute") == "high"
        zs = [abs(r["robust_z"]) for r in reasons[row]]
        assert zs == sorted(zs, reverse=True) and min(zs) >= 3.5
    ordinary = np.flatnonzero(~truth)
    assert np.mean([len(reasons[i]) == 0 for i in ordinary]) > 0.9


def test_reasons_check_their_input():
    with pytest.raises(ValueError, match="one column per feature"):
        top_reasons(np.zeros((2, 3)), ["a", "b"])
    assert top_reasons(np.array([[-5.0, 1.0]]), ["a", "b"], min_abs_z=3.5) == [
        [{"feature": "a", "robust_z": -5.0, "direction": "low"}]]
