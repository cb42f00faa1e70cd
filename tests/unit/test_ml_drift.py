"""Tests for ml.drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.drift import drift_report, overall_verdict, psi


@pytest.fixture(scope="module")
def normals():
    rng = np.random.default_rng(12345)
    return rng.normal(size=20_000), rng.normal(size=20_000)


def test_psi_is_zero_for_the_same_sample(normals):
    a, _ = normals
    assert psi(a, a) == 0.0
    assert psi(a, a.copy()[::-1]) == 0.0


def test_psi_small_for_same_distribution(normals):
    a, b = normals
    value = psi(a, b)
    assert 0.0 < value < 0.02


def test_psi_large_for_one_sd_mean_shift(normals):
    a, b = normals
    forward, backward = psi(a, b + 1.0), psi(b + 1.0, a)
    assert forward > 0.25 and backward > 0.25
    # Roughly symmetric: both directions see the same shift.
    assert forward / backward == pytest.approx(1.0, rel=0.25)


def test_psi_grows_with_shift(normals):
    a, b = normals
    values = [psi(a, b + shift) for shift in (0.0, 0.1, 0.3, 1.0)]
    assert values == sorted(values)
    assert 0.1 > values[1] > values[0]


def test_psi_ignores_nan():
    a = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    b = pd.Series([1.0, 2.0, None, 3.0, 4.0], dtype="Float64")
    assert psi(a, b) == 0.0
    assert psi([1, 2, None, pd.NA, 3], [1, 2, 3]) == 0.0


def test_psi_constant_reference_compares_share_of_that_value():
    assert psi([5.0] * 10, [5.0] * 3) == 0.0
    half = psi([5.0] * 10, [5.0, 5.0, 7.0, 8.0])
    expected = (0.5 - 1.0) * np.log(0.5 / 1.0) + (0.5 - 1e-4) * np.log(0.5 / 1e-4)
    assert half == pytest.approx(expected)


def test_psi_sees_shift_in_point_mass():
    rng = np.random.default_rng(1)
    # 70 % zeros vs 40 % zeros: the zeros must not be merged with small positive values.
    reference = np.r_[np.zeros(7000), rng.uniform(0, 1, 3000)]
    current = np.r_[np.zeros(4000), rng.uniform(0, 1, 6000)]
    assert psi(reference, current) > 0.25
    binary_ref = np.r_[np.zeros(500), np.ones(500)]
    binary_cur = np.r_[np.zeros(800), np.ones(200)]
    assert psi(binary_ref, binary_cur) > 0.25
    assert psi(binary_ref, binary_ref[::-1]) == 0.0


def test_psi_values_outside_reference_range_count():
    reference = np.linspace(0, 1, 1000)
    assert psi(reference, reference + 5.0) > 1.0
    assert psi(reference, reference - 5.0) > 1.0


@pytest.mark.parametrize(
    ("expected", "actual", "side"),
    [
        ([], [1.0], "expected"),
        ([1.0], [], "actual"),
        ([np.nan, np.nan], [1.0], "expected"),
        ([1.0], [None], "actual"),
    ],
)
def test_psi_rejects_empty_input(expected, actual, side):
    with pytest.raises(ValueError, match=side):
        psi(expected, actual)


def test_psi_rejects_bad_parameters():
    with pytest.raises(ValueError, match="bins"):
        psi([1.0, 2.0], [1.0], bins=0)
    with pytest.raises(ValueError, match="eps"):
        psi([1.0, 2.0], [1.0], eps=0.0)
    with pytest.raises(ValueError, match="infinite"):
        psi([1.0, np.inf], [1.0])


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(7)
    n = 5000
    reference = pd.DataFrame(
        {
            "stable": rng.normal(size=n),
            "shifted": rng.normal(size=n),
            "nudged": rng.normal(size=n),
            "unused": rng.normal(size=n),
        }
    )
    current = pd.DataFrame(
        {
            "stable": rng.normal(size=n),
            "shifted": rng.normal(loc=1.0, size=n),
            "nudged": rng.normal(loc=0.4, size=n),
        }
    )
    return reference, current


def test_drift_report_rows_and_verdicts(frames):
    reference, current = frames
    report = drift_report(reference, current, ["shifted", "stable", "nudged"])
    assert list(report.columns) == ["feature", "psi", "verdict", "reference_mean", "current_mean"]
    assert report["feature"].tolist() == ["shifted", "stable", "nudged"]
    verdicts = dict(zip(report["feature"], report["verdict"], strict=True))
    assert verdicts == {"shifted": "drift", "stable": "stable", "nudged": "warn"}
    row = report.set_index("feature").loc["shifted"]
    assert row["reference_mean"] == pytest.approx(reference["shifted"].mean())
    assert row["current_mean"] == pytest.approx(current["shifted"].mean())
    assert row["psi"] == pytest.approx(psi(reference["shifted"], current["shifted"]))
    assert overall_verdict(report) == "drift"
    assert overall_verdict(report[report["feature"] != "shifted"]) == "warn"
    assert overall_verdict(report[report["feature"] == "stable"]) == "stable"


def test_drift_report_thresholds_are_inclusive(frames):
    reference, current = frames
    value = psi(reference["nudged"], current["nudged"])
    at_alert = drift_report(reference, current, ["nudged"], warn=value / 2, alert=value)
    assert at_alert["verdict"].tolist() == ["drift"]
    at_warn = drift_report(reference, current, ["nudged"], warn=value, alert=value * 2)
    assert at_warn["verdict"].tolist() == ["warn"]


def test_drift_report_errors(frames):
    reference, current = frames
    with pytest.raises(KeyError, match="unused"):
        drift_report(reference, current, ["stable", "unused"])
    with pytest.raises(ValueError, match="warn"):
        drift_report(reference, current, ["stable"], warn=0.3, alert=0.2)
    empty_current = current.assign(stable=np.nan)
    with pytest.raises(ValueError, match="'stable'"):
        drift_report(reference, empty_current, ["stable"])


def test_drift_report_and_verdict_when_empty(frames):
    reference, current = frames
    report = drift_report(reference, current, [])
    assert report.empty
    assert list(report.columns) == ["feature", "psi", "verdict", "reference_mean", "current_mean"]
    assert overall_verdict(report) == "stable"


def test_overall_verdict_rejects_unknown_labels():
    with pytest.raises(ValueError, match="bogus"):
        overall_verdict(pd.DataFrame({"verdict": ["stable", "bogus"]}))


def test_psi_discrete_ratio_with_growing_denominator_is_stable():
    """Same click propensity, one more e-mail sent: k/8 becomes k/9. Not drift."""
    rng = np.random.default_rng(7)
    p = rng.beta(1, 10, size=3000)
    week8 = rng.binomial(8, p) / 8
    week9 = rng.binomial(9, p) / 9
    assert psi(week8, week9) < 0.1


def test_psi_still_sees_mass_moving_out_of_zero():
    rng = np.random.default_rng(8)
    reference = np.where(rng.random(5000) < 0.6, 0.0, rng.exponential(3, 5000))
    current = np.where(rng.random(5000) < 0.2, 0.0, rng.exponential(3, 5000))
    assert psi(reference, current) > 0.25
