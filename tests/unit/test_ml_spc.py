"""Control charts, Western Electric run rules and STL trend breaks on planted patterns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.spc import ControlLimits, control_limits, level_shift, run_rule_signals, trend_breaks

LIMITS = ControlLimits(center=0.0, sigma=1.0)


def _rules(values):
    signals = run_rule_signals(values, LIMITS)
    return {(int(i), int(r)) for i, r in zip(signals["index"], signals["rule"], strict=True)}


def test_control_limits_from_moving_range():
    limits = control_limits([10, 12, 10, 12, 10])
    assert limits.center == pytest.approx(10.8)
    assert limits.sigma == pytest.approx(2 / 1.128)
    assert control_limits([5, 5, 5], min_sigma=0.5).sigma == 0.5
    with pytest.raises(ValueError):
        control_limits([1.0])


def test_rule_1_one_point_beyond_three_sigma():
    assert (3, 1) in _rules([0.1, -0.2, 0.3, 3.5, 0.0])
    assert not any(r == 1 for _, r in _rules([0.1, -0.2, 2.9, 0.0]))


def test_rule_2_two_of_three_beyond_two_sigma_same_side():
    assert (3, 2) in _rules([0.0, 2.5, 0.5, 2.2])
    assert not any(r == 2 for _, r in _rules([0.0, 2.5, 0.5, -2.2]))  # opposite sides


def test_rule_3_four_of_five_beyond_one_sigma():
    assert (5, 3) in _rules([0.0, -1.5, -1.2, 0.3, -1.1, -1.4])
    assert not any(r == 3 for _, r in _rules([0.0, -1.5, -1.2, 0.3, 0.2, -1.4]))


def test_rule_4_eight_on_one_side():
    assert (7, 4) in _rules([0.2] * 8)
    assert not any(r == 4 for _, r in _rules([0.2] * 7 + [-0.1]))


def test_in_control_noise_rarely_signals():
    rng = np.random.default_rng(0)
    values = rng.normal(0, 1, 2000)
    rate = run_rule_signals(values, LIMITS)["index"].nunique() / len(values)
    assert rate < 0.03  # the four rules together: about 1 signalling point per 100 when in control


def test_stl_flags_a_planted_spike_and_not_the_weekly_rhythm():
    days = pd.date_range("2025-09-01", periods=70, freq="D")
    rng = np.random.default_rng(1)
    weekly = np.tile([100, 95, 95, 100, 105, 120, 125], 10)
    series = pd.Series(weekly + rng.normal(0, 3, 70), index=days)
    clean = trend_breaks(series)
    assert not clean["is_break"].any()
    assert not level_shift(clean)["is_shift"]
    spiked = series.copy()
    spiked.iloc[60] -= 60
    broken = trend_breaks(spiked)
    assert list(broken.index[broken["is_break"]]) == [days[60]]
    dropped = series.copy()
    dropped.iloc[63:] *= 0.5  # the segment's activity halves for the last week
    shift = level_shift(trend_breaks(dropped))
    assert shift["is_shift"] and shift["relative"] < -0.25


def test_stl_needs_enough_days():
    with pytest.raises(ValueError, match="at least"):
        trend_breaks(pd.Series(np.ones(10), index=pd.date_range("2025-09-01", periods=10)))
