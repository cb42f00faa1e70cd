"""Pinned-bin PSI, KS, multiplicity control and the verdict, segment-level drift: synthetic data, known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from ml.drift import ReferenceBins, feature_tests, ks_test, psi
from ml.drift_verdict import adjust_pvalues, centroid_shift, share_drift, silhouette_trend, verdict


def _frame(rng, n, shift=0.0, features=8):
    return pd.DataFrame({f"f{i}": rng.normal(shift if i == 0 else 0.0, 1.0, n) for i in range(features)})


def test_ks_matches_scipy_for_continuous_samples():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 800), rng.normal(0.1, 1, 900)
    d, p = ks_test(a, b)
    ref = ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(ref.statistic)
    assert p == pytest.approx(ref.pvalue, rel=0.15)


def test_effective_reference_size_makes_the_test_less_eager():
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 1, 3000), rng.normal(0.08, 1, 1000)
    assert ks_test(a, b, n_reference=1000)[1] > ks_test(a, b)[1]


def test_pinned_bins_do_not_move_with_the_current_sample():
    rng = np.random.default_rng(3)
    ref = _frame(rng, 2000)
    bins = ReferenceBins(bins=10).fit(ref, ["f0"])
    before = bins.to_dict()["f0"]
    feature_tests(bins, _frame(rng, 2000, shift=2.0), ["f0"])
    assert bins.to_dict()["f0"] == before and len(before) == 9
    # on the same sample, pinned-bin PSI equals the one-shot PSI (same quantile bins)
    cur = _frame(rng, 1500, shift=0.3)
    assert feature_tests(bins, cur, ["f0"])["psi"].iloc[0] == pytest.approx(psi(ref["f0"], cur["f0"]))


@pytest.mark.parametrize("method", ["holm", "bh"])
def test_adjusted_pvalues_known_values(method):
    p = [0.01, 0.04, 0.03, 0.005]
    expected = {"holm": [0.03, 0.06, 0.06, 0.02], "bh": [0.02, 0.04, 0.04, 0.02]}[method]
    assert adjust_pvalues(p, method) == pytest.approx(expected)


def test_adjust_pvalues_rejects_bad_input():
    with pytest.raises(ValueError):
        adjust_pvalues([0.1, 1.5])
    with pytest.raises(ValueError):
        adjust_pvalues([0.1], "bonferroni-ish")


def _week(bins, current, floor=0.1, alpha=0.01):
    tests = feature_tests(bins, current).assign(effect=lambda f: f["psi"], floor=floor)
    return verdict(tests, alpha=alpha)


def test_no_drift_gives_no_alarm_beyond_the_expected_rate():
    """200 stable weeks of 8 features each: the family-wise false-alarm rate stays near alpha (0.01)."""
    rng = np.random.default_rng(4)
    bins = ReferenceBins().fit(_frame(rng, 3000), [f"f{i}" for i in range(8)])
    alarms = sum(_week(bins, _frame(rng, 3000))[0] == "drift" for _ in range(200))
    assert alarms <= 6  # expected <= 2 (alpha 0.01 x 200); 6 is the 99.9% bound of Binomial(200, 0.01)


def test_planted_shift_is_detected_on_the_right_feature():
    rng = np.random.default_rng(5)
    bins = ReferenceBins().fit(_frame(rng, 3000), [f"f{i}" for i in range(8)])
    status, rows = _week(bins, _frame(rng, 3000, shift=0.5))
    assert status == "drift"
    assert set(rows.loc[rows["status"] == "drift", "feature"]) == {"f0"}


def test_huge_samples_do_not_flag_a_trivial_shift():
    """0.05 SD on 200k rows is highly significant but below the PSI floor: warn, not drift."""
    rng = np.random.default_rng(6)
    bins = ReferenceBins().fit(_frame(rng, 200_000, features=1), ["f0"])
    status, rows = _week(bins, _frame(rng, 200_000, shift=0.05, features=1))
    assert rows["p_adjusted"].iloc[0] < 0.01 and rows["psi"].iloc[0] < 0.1
    assert status == "warn"


def test_small_samples_do_not_flag_noise_with_a_large_psi():
    rng = np.random.default_rng(7)
    bins = ReferenceBins().fit(_frame(rng, 40, features=1), ["f0"])
    statuses = [_week(bins, _frame(rng, 40, features=1))[0] for _ in range(50)]
    assert statuses.count("drift") <= 2


def test_share_drift_detects_a_moved_share_and_ignores_sampling_noise():
    rng = np.random.default_rng(8)
    shares = np.array([0.2, 0.3, 0.5])
    ref = dict(zip("abc", rng.multinomial(5000, shares), strict=True))
    same = dict(zip("abc", rng.multinomial(5000, shares), strict=True))
    moved = dict(zip("abc", rng.multinomial(5000, [0.3, 0.2, 0.5]), strict=True))
    assert share_drift(ref, same)["p_value"] > 0.001 and share_drift(ref, same)["psi"] < 0.01
    assert share_drift(ref, moved)["p_value"] < 1e-10 and share_drift(ref, moved)["psi"] > 0.05
    assert share_drift(ref, {**same, "d": 500})["psi"] > 0.1  # a segment out of nowhere


def test_centroid_shift_and_silhouette_trend():
    shifts = centroid_shift({"S1": {"x": 0.0, "y": 1.0}, "S2": {"x": 5.0, "y": 5.0}},
                            {"S1": {"x": 2.0, "y": 1.0}, "S3": {"x": 0.0, "y": 0.0}}, {"x": 2.0, "y": 1.0})
    assert shifts == {"S1": pytest.approx(np.sqrt(0.5))}
    # a feature without a mean on one side (nobody in the segment has a value) is skipped, not an error
    gaps = centroid_shift({"S1": {"x": 0.0, "y": None}}, {"S1": {"x": 2.0, "y": 1.0}}, {"x": 2.0, "y": 1.0})
    assert gaps == {"S1": pytest.approx(1.0)}
    trend = silhouette_trend([0.40, 0.41, 0.39, 0.30])
    assert trend["drop"] == pytest.approx(0.10) and trend["slope"] < 0
    assert silhouette_trend([0.4])["slope"] is None
