"""ml.intervals, ml.business and ml.ab_readout on synthetic data where the answer is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ml.business import ab_readout, segment_kpis, segment_separation
from ml.intervals import mean_ci, newcombe_diff, ratio_ci, welch_diff, wilson

# --- intervals against published / independent values ------------------------------------------------------

def test_wilson_matches_newcombe_1998_example():
    p, low, high = wilson(81, 263)
    assert p == pytest.approx(81 / 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


@pytest.mark.parametrize(("counts", "expected"), [
    ((56, 70, 48, 80), (0.0524, 0.3339)),   # Newcombe (1998), Statistics in Medicine 17, table II, method 10
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
])
def test_newcombe_difference_matches_published_table(counts, expected):
    _, low, high = newcombe_diff(*counts)
    assert (round(low, 4), round(high, 4)) == expected


def test_welch_interval_matches_scipy():
    rng = np.random.default_rng(7)
    a, b = rng.exponential(50, 80), rng.exponential(35, 140)
    d, low, high = welch_diff(a, b, 0.9)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.9)
    assert d == pytest.approx(a.mean() - b.mean())
    assert (low, high) == pytest.approx((ci.low, ci.high))


def test_ratio_interval_covers_the_true_aov_at_the_nominal_rate_and_shrinks_with_n():
    rng = np.random.default_rng(3)
    runs, hits, widths = 200, 0, {}
    for run in range(runs):
        n = 5000 if run == 0 else 300
        orders = rng.integers(1, 5, n)
        revenue = np.array([rng.gamma(2.0, 40.0, k).sum() for k in orders])  # true AOV 80
        aov, low, high = ratio_ci(revenue, orders)
        assert aov == pytest.approx(revenue.sum() / orders.sum())
        hits += low <= 80 <= high
        widths.setdefault(n, high - low)
    assert abs(hits / runs - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / runs)
    assert widths[5000] < widths[300] / 3


def test_intervals_are_nan_without_data_and_reject_bad_input():
    assert all(math.isnan(v) for v in wilson(0, 0))
    assert math.isnan(mean_ci([5.0])[1])
    assert all(math.isnan(v) for v in newcombe_diff(0, 0, 1, 2))
    assert math.isnan(welch_diff([0.0, 0.0], [0.0, 0.0, 0.0])[1])  # no variation: no t interval
    with pytest.raises(ValueError, match="confidence"):
        wilson(1, 2, confidence=1.5)
    with pytest.raises(ValueError, match="successes"):
        wilson(3, 2)
    with pytest.raises(ValueError, match="finite"):
        welch_diff([1.0, np.nan], [1.0, 2.0])


# --- segment KPIs by hand ----------------------------------------------------------------------------------

@pytest.fixture
def tiny() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": list("abcdef"),
        "segment_id": ["A", "A", "A", "B", "B", "B"],
        "orders": [0, 1, 2, 0, 0, 3],
        "revenue": [0.0, 10.0, 30.0, 0.0, -5.0, 60.0],       # e: a return only, net negative
        "order_revenue": [0.0, 10.0, 30.0, 0.0, 0.0, 66.0],  # gross: what AOV uses
        "active_previous": [True, True, False, False, True, True],
        "active_current": [False, True, True, False, False, True],
        "ever_active": [True, True, True, False, True, True],
        "churned": [True, False, False, False, True, False],
    })


def _kpi(table, segment, kpi):
    row = table[(table["segment_id"] == segment) & (table["kpi"] == kpi)]
    assert len(row) == 1
    return row.iloc[0]


def test_segment_kpis_by_hand(tiny):
    table = segment_kpis(tiny, confidence=0.95)
    expected = {
        ("A", "customers"): (3, 3), ("A", "conversion_rate"): (2 / 3, 3), ("A", "aov"): (40 / 3, 2),
        ("A", "revenue_share"): (40 / 95, 3), ("A", "retention_rate"): (1 / 2, 2), ("A", "churn_rate"): (1 / 3, 3),
        ("A", "orders_per_customer"): (1.0, 3), ("A", "revenue_per_customer"): (40 / 3, 3),
        ("B", "customers"): (3, 3), ("B", "conversion_rate"): (1 / 3, 3), ("B", "aov"): (22.0, 1),
        ("B", "revenue_share"): (55 / 95, 3), ("B", "retention_rate"): (1 / 2, 2), ("B", "churn_rate"): (1 / 2, 2),
        ("(all)", "customers"): (6, 6), ("(all)", "conversion_rate"): (0.5, 6), ("(all)", "aov"): (106 / 6, 3),
        ("(all)", "revenue_share"): (1.0, 6), ("(all)", "retention_rate"): (2 / 4, 4),
        ("(all)", "churn_rate"): (2 / 5, 5),
    }
    for (segment, kpi), (value, n) in expected.items():
        row = _kpi(table, segment, kpi)
        assert row["value"] == pytest.approx(value), (segment, kpi)
        assert row["n"] == n, (segment, kpi)
    conv = _kpi(table, "A", "conversion_rate")
    assert (conv["ci_low"], conv["ci_high"]) == pytest.approx(wilson(2, 3)[1:])
    assert math.isnan(_kpi(table, "B", "aov")["ci_low"])  # one buyer: no interval
    assert list(table["segment_id"].unique()) == ["A", "B", "(all)"]


def test_segment_kpis_without_optional_columns_and_bad_input(tiny):
    table = segment_kpis(tiny[["segment_id", "orders", "revenue"]])
    assert set(table["kpi"]) == {"customers", "conversion_rate", "orders_per_customer", "revenue_per_customer",
                                 "aov", "revenue_share"}
    with pytest.raises(ValueError, match="one row per customer"):
        segment_kpis(pd.concat([tiny, tiny.iloc[:1]]))
    with pytest.raises(ValueError, match="implies"):
        segment_kpis(tiny.assign(churned=True))
    with pytest.raises(ValueError, match="both"):
        segment_kpis(tiny.drop(columns="active_current"))
    with pytest.raises(ValueError, match="lacks"):
        segment_kpis(tiny.drop(columns="orders"))


def test_separation_finds_planted_differences_and_not_absent_ones():
    rng = np.random.default_rng(11)
    n = 600
    seg = np.repeat(["S1", "S2", "S3"], n)
    p_buy = np.repeat([0.1, 0.3, 0.6], n)        # conversion differs strongly
    orders = (rng.random(3 * n) < p_buy) * rng.integers(1, 4, 3 * n)
    frame = pd.DataFrame({"segment_id": seg, "orders": orders,
                          "revenue": orders * rng.normal(50, 10, 3 * n),  # same order value everywhere
                          "active_previous": rng.random(3 * n) < 0.5, "active_current": rng.random(3 * n) < 0.4})
    frame["ever_active"], frame["churned"] = True, False   # nobody churned: nothing to separate
    sep = segment_separation(frame).set_index("kpi")
    conv = sep.loc["conversion_rate"]
    assert conv["test"] == "chi_square" and conv["p_value"] < 1e-6 and conv["effect_size"] > 0.3
    chi2 = stats.chi2_contingency(pd.crosstab(frame["segment_id"], frame["orders"] > 0), correction=False)
    assert conv["statistic"] == pytest.approx(chi2.statistic)
    assert sep.loc["revenue_per_customer", "p_value"] < 1e-6
    assert sep.loc["aov", "test"] == "kruskal_wallis" and sep.loc["aov", "effect_size"] < 0.02
    assert sep.loc["aov", "p_value"] > 0.001
    assert sep.loc["retention_rate", "effect_size"] < 0.1
    assert (sep.loc["churn_rate", "statistic"], sep.loc["churn_rate", "p_value"]) == (0.0, 1.0)
    buyers = frame[frame["orders"] > 0]
    h = stats.kruskal(*[g["revenue"] / g["orders"] for _, g in buyers.groupby("segment_id")]).statistic
    assert sep.loc["aov", "statistic"] == pytest.approx(h)
    assert sep.loc["aov", "effect_size"] == pytest.approx(h / (len(buyers) - 1))


# --- A/B readout -------------------------------------------------------------------------------------------

def _experiment(rng, n_per_segment, p_ctrl, lift, revenue_lift=0.0):
    """Two segments, random arms; ``lift`` (conversion) and ``revenue_lift`` only in segment S1."""
    rows = []
    for segment, p_lift, r_lift in (("S1", lift, revenue_lift), ("S2", 0.0, 0.0)):
        arm = rng.choice(["control", "treatment"], n_per_segment)
        p = np.where(arm == "treatment", p_ctrl + p_lift, p_ctrl)
        converted = rng.random(n_per_segment) < p
        spend = rng.gamma(2.0, 30.0, n_per_segment) + np.where(arm == "treatment", r_lift, 0.0)
        rows.append(pd.DataFrame({"segment_id": segment, "arm": arm, "converted": converted,
                                  "revenue": np.where(converted, spend, 0.0)}))
    data = pd.concat(rows, ignore_index=True)
    data["customer_id"] = [f"c{i}" for i in range(len(data))]
    return data[["customer_id", "arm"]], data[["customer_id", "converted", "revenue"]], \
        data[["customer_id", "segment_id"]]


def _row(readout, segment, metric):
    return readout[(readout["segment_id"] == segment) & (readout["metric"] == metric)].iloc[0]


def test_planted_uplift_in_one_segment_is_found():
    assignments, outcomes, segments = _experiment(np.random.default_rng(2024), 4000, 0.15, 0.10, 20.0)
    readout = ab_readout(assignments, outcomes, segments, min_arm_size=100)
    s1 = _row(readout, "S1", "conversion_rate")
    assert s1["ci_low"] > 0 and s1["ci_low"] < 0.10 < s1["ci_high"]
    assert s1["uplift"] == pytest.approx(s1["treatment"] - s1["control"])
    assert s1["uplift_relative"] == pytest.approx(s1["uplift"] / s1["control"])
    assert _row(readout, "S1", "revenue_per_customer")["ci_low"] > 0
    s2 = _row(readout, "S2", "conversion_rate")
    assert s2["ci_low"] < s2["uplift"] < s2["ci_high"] and abs(s2["uplift"]) < 0.04
    total = _row(readout, "(all)", "conversion_rate")
    assert total["n_control"] + total["n_treatment"] == 8000
    assert not readout["small_sample"].any()


def test_no_uplift_intervals_cover_zero_at_the_nominal_rate():
    rng = np.random.default_rng(99)
    runs, confidence = 200, 0.95
    covered = {"conversion_rate": 0, "revenue_per_customer": 0}
    for _ in range(runs):
        assignments, outcomes, _ = _experiment(rng, 150, 0.2, 0.0)
        readout = ab_readout(assignments, outcomes, confidence=confidence, min_arm_size=10)
        for metric in covered:
            row = _row(readout, "(all)", metric)
            covered[metric] += row["ci_low"] <= 0 <= row["ci_high"]
    # 95% coverage +- 3 binomial standard deviations of 200 runs (a broken interval lands far outside)
    tolerance = 3 * math.sqrt(confidence * (1 - confidence) / runs)
    for metric, hits in covered.items():
        assert abs(hits / runs - confidence) <= tolerance, (metric, hits)


def test_small_arms_are_flagged_and_missing_outcomes_count_as_zero():
    assignments = pd.DataFrame({"customer_id": ["a", "b", "c", "d", "e"],
                                "arm": ["control", "Control ", "treatment", "treatment", "treatment"]})
    outcomes = pd.DataFrame({"customer_id": ["c", "zz"], "converted": [1, 1], "revenue": [40.0, 99.0]})
    readout = ab_readout(assignments, outcomes, min_arm_size=3)
    conv = _row(readout, "(all)", "conversion_rate")
    assert (conv["n_control"], conv["n_treatment"], conv["control"], conv["treatment"]) == (2, 3, 0.0, 1 / 3)
    assert readout["small_sample"].all()
    assert math.isnan(conv["uplift_relative"])        # control rate 0
    assert _row(readout, "(all)", "revenue_per_customer")["treatment"] == pytest.approx(40 / 3)
    assert readout.attrs["without_outcome"] == 4


@pytest.mark.parametrize(("assignments", "message"), [
    (pd.DataFrame({"customer_id": ["a", "b"], "arm": ["control", "variant"]}), "'control' or 'treatment'"),
    (pd.DataFrame({"customer_id": ["a", "b"], "arm": ["control", "control"]}), "both arms"),
    (pd.DataFrame({"customer_id": ["a", "a", "b"], "arm": ["control", "treatment", "treatment"]}),
     "one row per customer"),
    (pd.DataFrame({"customer_id": ["a", "b"], "group": ["control", "treatment"]}), "lack column"),
    (pd.DataFrame({"customer_id": ["a", None], "arm": ["control", "treatment"]}), "without a customer_id"),
])
def test_invalid_assignments_raise_clear_errors(assignments, message):
    outcomes = pd.DataFrame({"customer_id": ["a"], "converted": [True], "revenue": [1.0]})
    with pytest.raises(ValueError, match=message):
        ab_readout(assignments, outcomes)


def test_invalid_outcomes_raise_clear_errors():
    assignments = pd.DataFrame({"customer_id": ["a", "b"], "arm": ["control", "treatment"]})
    with pytest.raises(ValueError, match="converted"):
        ab_readout(assignments, pd.DataFrame({"customer_id": ["a"], "converted": ["maybe"], "revenue": [1.0]}))
    with pytest.raises(ValueError, match="revenue"):
        ab_readout(assignments, pd.DataFrame({"customer_id": ["a"], "converted": [1], "revenue": ["x"]}))
