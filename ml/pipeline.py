"""One week's segmentation from a raw feature matrix: preprocess, choose (algorithm, k) on a sample, fit the
choice on every row, merge near-identical segments. Pure: arrays in, :class:`SegmentFit` out; the weekly job
(segflow.jobs.segment) and bench/segmentation_eval.py both call :func:`fit_segments`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ml.clustering import SegmentClusterer
from ml.features import SegmentPreprocessor
from ml.model_selection import ModelChoice, canonical_relabel, select_model

__all__ = ["SegmentFit", "fit_segments", "merge_close_segments"]


@dataclass
class SegmentFit:
    """``labels`` 0..k-1 (0 = largest), ``centroids`` in the model space, ``log_centroids`` in the unscaled
    log space (for matching against later runs), the fitted ``preprocessor`` and the selection record."""

    labels: np.ndarray
    centroids: np.ndarray
    log_centroids: np.ndarray
    preprocessor: SegmentPreprocessor
    choice: ModelChoice
    merged: int
    silhouette: float

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])


def merge_close_segments(X: np.ndarray, labels: np.ndarray, max_distance: float) -> tuple[np.ndarray, int]:
    """Merge, closest pair first, segments whose centroids (member means of ``X``) lie within
    ``max_distance`` (Euclidean) of each other, while more than two remain. Returns labels 0..k'-1 and the
    number of merges."""
    labels = np.unique(labels, return_inverse=True)[1]
    merges = 0
    while True:
        k = labels.max() + 1
        if k <= 2:
            return labels, merges
        centers = np.vstack([X[labels == c].mean(axis=0) for c in range(k)])
        d = np.sqrt(((centers[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2))
        d[np.diag_indices(k)] = np.inf
        i, j = np.unravel_index(np.argmin(d), d.shape)
        if d[i, j] > max_distance:
            return labels, merges
        labels = np.where(labels == max(i, j), min(i, j), labels)
        labels = np.unique(labels, return_inverse=True)[1]
        merges += 1


def fit_segments(
    raw: np.ndarray,
    *,
    log_columns: Sequence[int],
    ks: Sequence[int],
    algorithms: Sequence[str],
    previous: tuple[str, int] | None = None,
    random_state: int = 42,
    flag_weight: float = 1.0,
    selection_sample: int = 3000,
    bootstrap_runs: int = 2,
    min_segment_share: float = 0.02,
    min_stability: float = 0.6,
    tolerance: float = 0.5,
    keep_tolerance: float = 3.0,
    merge_distance: float = 1.0,
    fit_sample: int = 20000,
    silhouette_sample: int = 4000,
    minibatch_threshold: int = 100000,
) -> SegmentFit:
    """Preprocess ``raw`` (rows = customers, NaN = missing), select and fit the segmentation (module doc)."""
    from sklearn.metrics import silhouette_score

    pre = SegmentPreprocessor(log_columns=tuple(log_columns), flag_weight=flag_weight).fit(raw)
    X = pre.transform(raw)
    choice = select_model(X, ks, algorithms, previous=previous, random_state=random_state,
                          selection_sample=selection_sample, bootstrap_runs=bootstrap_runs,
                          min_segment_share=min_segment_share, min_stability=min_stability, tolerance=tolerance,
                          keep_tolerance=keep_tolerance)
    model = SegmentClusterer(choice.algorithm, choice.k, random_state=random_state, fit_sample=fit_sample,
                             minibatch_threshold=minibatch_threshold).fit(X)
    labels, merged = merge_close_segments(X, model.labels_, merge_distance)
    k = labels.max() + 1
    centers = np.vstack([X[labels == c].mean(axis=0) for c in range(k)])
    labels, centers = canonical_relabel(labels, centers)
    log_space = pre.to_log_space(raw)
    log_centroids = np.vstack([log_space[labels == c].mean(axis=0) for c in range(k)])
    rng = np.random.default_rng(random_state)
    idx = rng.choice(X.shape[0], size=silhouette_sample, replace=False) if X.shape[0] > silhouette_sample \
        else np.arange(X.shape[0])
    sil = float(silhouette_score(X[idx], labels[idx])) if np.unique(labels[idx]).size > 1 else 0.0
    return SegmentFit(labels=labels, centroids=centers, log_centroids=log_centroids, preprocessor=pre,
                      choice=choice, merged=merged, silhouette=sil)
