"""The assignment classifier and the segmentation-as-a-model (ml.assignment, ml.segment_model): real sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from ml.assignment import DEFAULT_GRIDS, SegmentAssigner, train_assigner
from ml.segment_model import CentroidSegmentModel, promotion_failures

SMALL_GRIDS = {"random_forest": {"n_estimators": [3]}, "gradient_boosting": {"max_iter": [3]}}  # checks stay fast


@parametrize_with_checks([SegmentAssigner(param_grids=SMALL_GRIDS, cv=2), CentroidSegmentModel(),
                          CentroidSegmentModel(log_columns=(0,), flag_weight=0.5)])
def test_passes_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _separable(n_per_class=120, seed=0):
    """Three segments in 6 columns: columns 0-1 carry the class (well separated), 2-5 are pure noise."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    X = np.vstack([np.hstack([rng.normal(c, 1.0, size=(n_per_class, 2)), rng.normal(0, 1, size=(n_per_class, 4))])
                   for c in centres])
    y = np.repeat(np.array(["S01", "S02", "S03"]), n_per_class)
    return X, y


def test_train_assigner_recovers_separable_segments_and_finds_the_informative_features():
    X, y = _separable()
    X[::17, 3] = np.nan  # missing values in a noise column are accepted (imputed + flagged)
    model, report = train_assigner(X, y, [f"f{i}" for i in range(6)], importance_repeats=3,
                                   param_grids={"random_forest": {"n_estimators": [50], "max_depth": [None, 3]},
                                                "gradient_boosting": {"max_iter": [50]}})
    assert report.holdout_macro_f1 >= 0.97
    assert set(report.cv_macro_f1) == {"random_forest", "gradient_boosting"}
    assert all(v >= 0.95 for v in report.cv_macro_f1.values())
    assert report.chosen in report.cv_macro_f1
    assert set(report.per_class_f1) == {"S01", "S02", "S03"} and min(report.per_class_f1.values()) >= 0.95
    assert {r["feature"] for r in report.importance[:2]} == {"f0", "f1"}  # permutation importance: signal first
    assert all(abs(r["mean"]) < 0.05 for r in report.importance[2:])
    assert report.train_rows + report.holdout_rows == len(y)
    # the deployment model is refitted on every row, keeps the search record and predicts the known segments
    assert model.chosen_ == report.chosen and model.cv_results_
    Xn, yn = _separable(n_per_class=50, seed=1)
    assert (model.predict(Xn) == yn).mean() >= 0.97
    proba = model.predict_proba(Xn)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(model.classes_) == ["S01", "S02", "S03"]


def test_grid_search_picks_the_better_candidate_by_cv_macro_f1():
    # a forest of stumps (depth 1, an additive model) cannot learn XOR; boosting with 31-leaf trees can
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, size=(600, 2))
    y = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(int)
    grids = {"random_forest": {"n_estimators": [20], "max_depth": [1]},
             "gradient_boosting": {"max_iter": [60], "max_leaf_nodes": [31]}}
    model = SegmentAssigner(param_grids=grids, cv=3).fit(X, y)
    assert model.chosen_ == "gradient_boosting"
    assert model.cv_results_["gradient_boosting"]["macro_f1"] > model.cv_results_["random_forest"]["macro_f1"] + 0.1
    assert model.cv_results_["random_forest"]["fits"] == 3


def test_ties_go_to_the_simpler_candidate_and_the_default_grid_is_small():
    X, y = _separable(n_per_class=60)
    model = SegmentAssigner(param_grids={"random_forest": {"n_estimators": [20]},
                                         "gradient_boosting": {"max_iter": [20]}}, tie_tolerance=0.05).fit(X, y)
    assert model.chosen_ == "random_forest"
    assert sum(np.prod([len(v) for v in g.values()]) for g in DEFAULT_GRIDS.values()) == 8


def test_train_assigner_refuses_classes_too_small_to_evaluate():
    X, y = _separable(n_per_class=30)
    y[:28] = "S02"  # S01 keeps 2 rows
    with pytest.raises(ValueError, match="S01"):
        train_assigner(X, y)


def test_centroid_model_reproduces_a_kmeans_partition_in_the_segmentation_space():
    from sklearn.cluster import KMeans

    from ml.features import SegmentPreprocessor

    X, _ = _separable()
    X = np.abs(X) * 10
    X[::11, 2] = np.nan
    pre = SegmentPreprocessor(log_columns=(0, 1), flag_weight=1.0).fit(X)
    labels = KMeans(3, n_init=4, random_state=0).fit_predict(pre.transform(X))
    ids = np.array(["S07", "S08", "S09"])[labels]
    model = CentroidSegmentModel(log_columns=(0, 1)).fit(X, ids)
    assert (model.predict(X) == ids).mean() == 1.0


def test_promotion_failures_name_each_missed_floor():
    floors = {"silhouette": 0.1, "stability_vs_champion": 0.5, "min_segment_share": 0.02, "classifier_macro_f1": 0.8}
    good = {"silhouette": 0.3, "stability_vs_champion": None, "min_segment_share": 0.05, "classifier_macro_f1": 0.9}
    assert promotion_failures(good, floors) == []
    bad = {**good, "silhouette": 0.05, "stability_vs_champion": 0.2, "classifier_macro_f1": None}
    failures = promotion_failures(bad, floors)
    assert len(failures) == 3
    assert failures[0] == "silhouette 0.050 < floor 0.1"
    assert any("classifier_macro_f1 missing" in f for f in failures)
