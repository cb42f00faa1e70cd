"""Tests for ml.identity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.identity import match_segments, name_segments

PREVIOUS = {
    "S01": np.array([0.0, 0.0, 0.0]),
    "S02": np.array([3.0, 0.0, 0.0]),
    "S03": np.array([0.0, 3.0, 0.0]),
    "S05": np.array([0.0, 0.0, 3.0]),
}


def _centroids(ids):
    return np.vstack([PREVIOUS[i] for i in ids])


def test_first_run_numbers_from_one():
    assert match_segments({}, np.zeros((3, 2)), max_distance=1.0) == ["S01", "S02", "S03"]
    assert match_segments({}, np.zeros((2, 2)), max_distance=1.0, id_prefix="SEG") == ["SEG01", "SEG02"]


def test_ids_follow_permuted_and_jittered_centroids():
    rng = np.random.default_rng(0)
    order = ["S05", "S02", "S01", "S03"]
    current = _centroids(order) + rng.normal(scale=0.05, size=(4, 3))
    assert match_segments(PREVIOUS, current, max_distance=0.5) == order


def test_far_away_new_cluster_gets_next_number():
    current = np.vstack([_centroids(["S02", "S01", "S03", "S05"]), [[40.0, 40.0, 40.0]]])
    ids = match_segments(PREVIOUS, current, max_distance=0.5)
    assert ids == ["S02", "S01", "S03", "S05", "S06"]


def test_more_clusters_than_before():
    current = np.array([[0.0, 3.0, 0.1], [9.0, 9.0, 9.0], [0.1, 0.0, 0.0], [-9.0, 0.0, 0.0]])
    previous = {k: PREVIOUS[k] for k in ("S01", "S03")}
    ids = match_segments(previous, current, max_distance=1.0)
    assert ids == ["S03", "S04", "S01", "S05"]


def test_fewer_clusters_than_before_retire_unmatched_ids():
    current = _centroids(["S03", "S01"]) + 0.01
    ids = match_segments(PREVIOUS, current, max_distance=0.5)
    assert ids == ["S03", "S01"]


def test_cluster_beyond_max_distance_gets_fresh_id():
    current = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 3.0, 2.0]])
    previous = {k: PREVIOUS[k] for k in ("S01", "S02", "S03")}
    ids = match_segments(previous, current, max_distance=1.5)
    assert ids == ["S01", "S02", "S04"]
    assert len(set(ids)) == len(ids)


def test_assignment_prefers_more_matches_within_max_distance():
    # The plain minimum-sum assignment would pair c0-p0 (0.0) and c1-p1 (1.1 > 1.0):
    # only one match. Pairing c0-p1 (0.9) and c1-p0 (0.9) keeps both ids.
    y = float(np.sqrt(0.81 - 0.2278**2))
    previous = {"S01": np.array([0.0, 0.0]), "S02": np.array([0.9, 0.0])}
    current = np.array([[0.0, 0.0], [0.2278, y]])
    assert match_segments(previous, current, max_distance=1.0) == ["S02", "S01"]


def test_numbering_uses_highest_trailing_number_of_any_previous_id():
    previous = {"S07": np.array([0.0]), "legacy": np.array([5.0]), "X12": np.array([9.0])}
    ids = match_segments(previous, np.array([[100.0], [0.1], [200.0]]), max_distance=1.0)
    assert ids == ["S13", "S07", "S14"]


def test_match_segments_validation():
    with pytest.raises(ValueError, match="features"):
        match_segments({"S01": np.zeros(3)}, np.zeros((1, 2)), max_distance=1.0)
    with pytest.raises(ValueError, match="max_distance"):
        match_segments({}, np.zeros((1, 2)), max_distance=-1.0)
    with pytest.raises(ValueError, match="2-D"):
        match_segments({}, np.zeros(3), max_distance=1.0)
    assert match_segments(PREVIOUS, np.zeros((0, 3)), max_distance=1.0) == []


# ---------------------------------------------------------------------------
# name_segments

FEATURES = [
    "recency_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "sessions_28d",
    "pages_per_session",
    "avg_session_minutes",
    "cart_abandonment_rate",
    "app_event_share",
    "email_click_rate",
    "tenure_days",
]
POPULATION = pd.Series([20, 5, 500, 100, 8, 5, 6, 0.3, 0.4, 0.05, 400], index=FEATURES, dtype=float)
ARCHETYPES = {
    "Dormant / churn risk": [90, 2, 150, 75, 1, 3, 4, 0.3, 0.3, 0.01, 500],
    "New customers": [5, 4, 400, 100, 6, 5, 6, 0.3, 0.4, 0.05, 100],
    "High-value loyalists": [10, 12, 1500, 150, 12, 6, 7, 0.2, 0.5, 0.1, 700],
    "Power users": [8, 6, 500, 90, 20, 8, 9, 0.3, 0.8, 0.06, 400],
    "Window shoppers / cart abandoners": [15, 2, 200, 100, 10, 6, 7, 0.7, 0.4, 0.05, 400],
    "Occasional buyers": [25, 2, 300, 100, 4, 4, 5, 0.3, 0.4, 0.05, 400],
    "Bots / anomalies": [1, 5, 400, 100, 30, 40, 1, 0.9, 0.0, 0.0, 300],
}


def _profiles(rows):
    return pd.DataFrame(rows, columns=FEATURES, dtype=float)


def test_each_rule_names_its_archetype():
    names = name_segments(_profiles(list(ARCHETYPES.values())), POPULATION)
    assert names == list(ARCHETYPES)


def test_high_recency_cluster_is_dormant_and_names_are_unique():
    profiles = _profiles(
        [POPULATION.tolist(), ARCHETYPES["Dormant / churn risk"], [95, 1, 100, 70, 1, 3, 4, 0.3, 0.3, 0, 600]]
    )
    names = name_segments(profiles, POPULATION)
    assert names[1] == "Dormant / churn risk"
    assert names[2] == "Dormant / churn risk (2)"
    assert len(set(names)) == len(names)


def test_recency_rule_needs_more_than_thirty_days():
    population = pd.Series({"recency_days": 5.0, "frequency": 5.0})
    profiles = pd.DataFrame({"recency_days": [20.0, 3.0], "frequency": [5.0, 5.0]})
    assert name_segments(profiles, population)[0] != "Dormant / churn risk"


def test_fallback_names_most_distinctive_feature():
    base = POPULATION.tolist()
    high_email = base.copy()
    high_email[FEATURES.index("email_click_rate")] = 0.2
    low_minutes = base.copy()
    low_minutes[FEATURES.index("avg_session_minutes")] = 1.0
    names = name_segments(_profiles([high_email, low_minutes, base]), POPULATION)
    assert names == ["High email click rate", "Low avg session minutes", "Typical customers"]


def test_absent_columns_are_ignored_and_order_is_positional():
    population = POPULATION[["recency_days", "monetary", "avg_order_value"]]
    profiles = pd.DataFrame(
        {"monetary": [2000.0, 400.0], "recency_days": [10.0, 80.0], "avg_order_value": [200.0, 90.0]},
        index=["b", "a"],
    )
    assert name_segments(profiles, population) == ["High-value loyalists", "Dormant / churn risk"]


def test_duplicate_fallback_names_get_suffixes_in_cluster_order():
    population = pd.Series({"frequency": 5.0})
    profiles = pd.DataFrame({"frequency": [9.0, 1.0, 8.0, 9.5]})
    assert name_segments(profiles, population) == [
        "High frequency",
        "Occasional buyers",
        "High frequency (2)",
        "High frequency (3)",
    ]


def test_name_segments_empty_profiles():
    assert name_segments(_profiles([]), POPULATION) == []


def test_propose_names_records_the_rule_and_assign_names_keeps_a_matched_ids_name():
    from ml.identity import RULES, assign_names, propose_names

    profiles = pd.DataFrame({"recency_days": [90.0, 5.0, 6.0], "frequency": [1.0, 0.5, 0.4],
                             "sessions_28d": [1.0, 2.0, 2.0], "tenure_days": [400.0, 380.0, 200.0]})
    population = profiles.mean()
    proposals = propose_names(profiles, population)
    assert proposals[0] == ("Dormant / churn risk", RULES["Dormant / churn risk"])
    names = assign_names(["S01", "S02", "S03"], proposals, profiles)
    assert len({n for n, _ in names}) == 3  # unique
    if proposals[1][0] == proposals[2][0]:  # two clusters, one archetype: told apart by a feature, not a number
        assert names[1][0].startswith(proposals[1][0] + " - ") and "(" not in names[1][0]
    # an id that keeps its rule keeps its earlier name, even if another cluster would now propose it
    previous = {"S01": ("Dormant (legacy label)", RULES["Dormant / churn risk"])}
    again = assign_names(["S01", "S02", "S03"], proposals, profiles, previous)
    assert again[0] == ("Dormant (legacy label)", RULES["Dormant / churn risk"])
    # ... and takes the new name when the rule that named it no longer holds
    changed = {"S01": ("Power users", RULES["Power users"])}
    assert assign_names(["S01", "S02", "S03"], proposals, profiles, changed)[0][0] == "Dormant / churn risk"
