"""Tests for ml.model_selection."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from ml.model_selection import KSelection, canonical_relabel, select_k

CENTERS = [[0.0, 0.0], [12.0, 12.0], [-12.0, 12.0], [12.0, -12.0]]


@pytest.fixture(scope="module")
def blobs():
    return make_blobs(n_samples=600, centers=CENTERS, cluster_std=1.0, random_state=7)


@pytest.fixture(scope="module")
def blob_selection(blobs):
    X, _ = blobs
    return select_k(X, range(2, 8))


def test_select_k_recovers_four_separated_blobs(blobs, blob_selection):
    _, y = blobs
    assert isinstance(blob_selection, KSelection)
    assert blob_selection.best_k == 4
    assert adjusted_rand_score(y, blob_selection.labels) == 1.0
    assert sorted(blob_selection.scores) == [2, 3, 4, 5, 6, 7]
    assert max(blob_selection.scores, key=blob_selection.scores.get) == 4
    assert all(isinstance(v, float) and -1.0 <= v <= 1.0 for v in blob_selection.scores.values())


def test_centroids_match_labels(blobs, blob_selection):
    X, _ = blobs
    sel = blob_selection
    assert sel.centroids.shape == (4, 2)
    assert sel.labels.shape == (X.shape[0],)
    for k in range(sel.best_k):
        np.testing.assert_allclose(sel.centroids[k], X[sel.labels == k].mean(axis=0), atol=1e-6)


def test_equal_sized_clusters_are_ordered_by_centroid(blob_selection):
    # All four blobs hold 150 points, so order falls back to lexicographic centroid order.
    assert np.bincount(blob_selection.labels).tolist() == [150] * 4
    keys = [tuple(c) for c in blob_selection.centroids]
    assert keys == sorted(keys)


def test_select_k_is_deterministic(blobs):
    X, _ = blobs
    first = select_k(X, range(2, 6), random_state=3)
    second = select_k(X.copy(), range(2, 6), random_state=3)
    assert first.best_k == second.best_k
    assert first.scores == second.scores
    np.testing.assert_array_equal(first.labels, second.labels)
    np.testing.assert_array_equal(first.centroids, second.centroids)


def test_label_zero_is_largest_cluster():
    X, _ = make_blobs(n_samples=[40, 300, 90, 160], centers=CENTERS, cluster_std=1.0, random_state=1)
    sel = select_k(X, range(2, 7))
    sizes = np.bincount(sel.labels)
    assert sel.best_k == 4
    assert sizes.tolist() == [300, 160, 90, 40]
    assert sizes[0] == sizes.max()


def test_canonical_relabel_orders_by_size_then_centroid():
    labels = np.array([0, 1, 1, 2, 2, 3, 3, 3])
    centroids = np.array([[5.0, 0.0], [2.0, 1.0], [2.0, 0.0], [9.0, 9.0]])
    new_labels, new_centroids = canonical_relabel(labels, centroids)
    # sizes: old0=1, old1=2, old2=2, old3=3 -> old3, old2 ([2,0] < [2,1]), old1, old0
    np.testing.assert_array_equal(new_labels, [3, 2, 2, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(new_centroids, centroids[[3, 2, 1, 0]])


def test_sampled_silhouette_uses_one_sample_and_still_finds_four():
    X, y = make_blobs(n_samples=3000, centers=CENTERS, cluster_std=1.0, random_state=2)
    sampled = select_k(X, [3, 4, 5], sample_size=500, n_init=3)
    again = select_k(X, [3, 4, 5], sample_size=500, n_init=3)
    full = select_k(X, [3, 4, 5], sample_size=None, n_init=3)
    assert sampled.best_k == full.best_k == 4
    assert sampled.scores == again.scores
    assert sampled.scores != full.scores  # the sample really is a subset
    assert sampled.labels.shape == (3000,)  # labels still cover every row
    assert adjusted_rand_score(y, sampled.labels) == 1.0


def test_k_at_or_above_n_samples_is_skipped():
    X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0], [9.0, -3.0]])
    sel = select_k(X, range(1, 10))
    assert set(sel.scores) <= {2, 3, 4}
    assert 1 not in sel.scores and 5 not in sel.scores
    assert sel.best_k in sel.scores


def test_degenerate_k_with_too_few_distinct_rows_is_skipped():
    X = np.array([[0.0, 0.0]] * 4 + [[3.0, 3.0]] * 4 + [[0.0, 6.0]] * 4)
    sel = select_k(X, range(2, 6))
    assert set(sel.scores) == {2, 3}
    assert sel.best_k == 3
    assert sel.scores[3] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("X", "k_range", "match"),
    [
        (np.zeros((2, 3)), range(2, 4), "at least 3 samples"),
        (np.arange(10.0).reshape(5, 2), range(5, 9), "no admissible k"),
        (np.arange(10.0).reshape(5, 2), [1], "no admissible k"),
        (np.arange(10.0).reshape(5, 2), [], "no admissible k"),
        (np.ones((6, 2)), range(2, 4), "no admissible k"),
    ],
)
def test_select_k_errors(X, k_range, match):
    with pytest.raises(ValueError, match=match):
        select_k(X, k_range)


def test_select_k_rejects_nan_and_bad_sample_size():
    with pytest.raises(ValueError):
        select_k(np.array([[0.0], [np.nan], [1.0], [2.0]]), range(2, 3))
    with pytest.raises(ValueError, match="sample_size"):
        select_k(np.arange(10.0).reshape(5, 2), range(2, 3), sample_size=1)


def test_kselection_is_frozen(blob_selection):
    with pytest.raises(dataclasses.FrozenInstanceError):
        blob_selection.best_k = 3  # type: ignore[misc]
