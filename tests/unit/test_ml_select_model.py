"""ml.model_selection.select_model, ml.clustering.SegmentClusterer and ml.pipeline (issue 9)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from ml.clustering import SegmentClusterer
from ml.model_selection import knee_k, select_model
from ml.pipeline import fit_segments, merge_close_segments

CENTERS = [[0.0, 0.0], [12.0, 12.0], [-12.0, 12.0], [12.0, -12.0]]


@pytest.fixture(scope="module")
def blobs():
    return make_blobs(n_samples=800, centers=CENTERS, cluster_std=1.0, random_state=7)


@parametrize_with_checks([SegmentClusterer(n_clusters=3, random_state=0),
                          SegmentClusterer("gmm", n_clusters=3, random_state=0),
                          SegmentClusterer("agglomerative", n_clusters=3, random_state=0)])
def test_segment_clusterer_passes_sklearn_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("algorithm", ["kmeans", "gmm", "agglomerative"])
def test_every_algorithm_recovers_blobs_and_predicts_its_own_labels(blobs, algorithm):
    X, y = blobs
    model = SegmentClusterer(algorithm, 4, random_state=0, fit_sample=300).fit(X)
    assert adjusted_rand_score(y, model.labels_) > 0.98
    assert (model.predict(X) == model.labels_).mean() > 0.98
    for c in range(4):
        np.testing.assert_allclose(model.cluster_centers_[c], X[model.labels_ == c].mean(axis=0))


def test_minibatch_above_threshold_still_recovers_blobs(blobs):
    X, y = blobs
    model = SegmentClusterer("kmeans", 4, random_state=0, minibatch_threshold=100).fit(X)
    assert adjusted_rand_score(y, model.labels_) > 0.98


def test_select_model_finds_four_blobs_and_records_every_candidate(blobs):
    X, _ = blobs
    choice = select_model(X, range(2, 8), ("kmeans", "gmm"), random_state=1, selection_sample=500)
    assert choice.k == 4
    assert {(c.algorithm, c.k) for c in choice.candidates} == {(a, k) for a in ("kmeans", "gmm") for k in range(2, 8)}
    assert choice.knee_k == 4
    assert set(choice.scores()) == {f"{a}:{k}" for a in ("kmeans", "gmm") for k in range(2, 8)}


def test_previous_choice_is_kept_when_within_tolerance_and_dropped_when_not(blobs):
    X, _ = blobs
    kept = select_model(X, range(2, 8), ("kmeans", "gmm"), previous=("gmm", 4), random_state=1,
                        selection_sample=500)
    assert (kept.algorithm, kept.k) == ("gmm", 4) and "kept" in kept.reason
    wrong = select_model(X, range(2, 8), ("kmeans",), previous=("kmeans", 7), random_state=1,
                         selection_sample=500, tolerance=0.0, keep_tolerance=0.0)
    assert wrong.k == 4


def test_min_segment_share_guards_against_tiny_segments():
    X, _ = make_blobs(n_samples=[400, 400, 6], centers=[[0, 0], [10, 10], [-10, 10]], random_state=3)
    strict = select_model(X, [2, 3], ("kmeans",), min_segment_share=0.05, random_state=0)
    assert strict.k == 2
    assert not next(c for c in strict.candidates if c.k == 3).admissible


def test_knee_of_a_curve():
    assert knee_k([2, 3, 4, 5, 6, 7], [100, 60, 20, 18, 16, 15]) == 4
    assert knee_k([2, 3], [1, 0]) is None


def test_merge_close_segments_joins_near_identical_profiles():
    X, y = make_blobs(n_samples=300, centers=[[0, 0], [0.3, 0], [10, 10]], cluster_std=0.1, random_state=0)
    merged, n = merge_close_segments(X, y, max_distance=1.0)
    assert n == 1 and merged.max() == 1
    assert adjusted_rand_score(np.where(y == 1, 0, y), merged) == 1.0
    untouched, n = merge_close_segments(X, y, max_distance=0.1)
    assert n == 0 and adjusted_rand_score(y, untouched) == 1.0


def test_fit_segments_handles_missing_values_and_logs(blobs):
    X, y = blobs
    raw = np.column_stack([np.exp(X[:, 0] / 3), X[:, 1], np.where(y == 0, np.nan, 1.0)])
    fit = fit_segments(raw, log_columns=[0], ks=range(2, 7), algorithms=("kmeans",), selection_sample=500)
    assert fit.centroids.shape[1] == 4  # 3 scaled columns + 1 missing flag
    assert fit.log_centroids.shape == (fit.k, 3)
    assert np.bincount(fit.labels)[0] == np.bincount(fit.labels).max()
    assert adjusted_rand_score(y, fit.labels) > 0.9
