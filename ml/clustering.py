"""One clustering estimator over three algorithms, built to scale: k-means, Gaussian mixture, agglomerative.

``SegmentClusterer(algorithm=..., n_clusters=k)`` fits and predicts like any scikit-learn clusterer:

- ``"kmeans"``: :class:`~sklearn.cluster.KMeans` up to ``minibatch_threshold`` rows, above it
  :class:`~sklearn.cluster.MiniBatchKMeans` (same objective, bounded memory and time);
- ``"gmm"``: :class:`~sklearn.mixture.GaussianMixture` (full covariances) fitted on at most ``fit_sample`` rows;
  every row is then assigned by the mixture's posterior;
- ``"agglomerative"``: Ward linkage on at most ``fit_sample`` rows (its memory is quadratic), the centroids of
  its clusters then assign every row to the nearest one.

Whatever the algorithm, ``cluster_centers_`` holds one centroid per cluster (the mean of its members) so that
the identity matching downstream works in one space.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import AgglomerativeClustering, KMeans, MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

__all__ = ["ALGORITHMS", "SegmentClusterer", "nearest_centroid"]

ALGORITHMS = ("kmeans", "gmm", "agglomerative")
"""In order of simplicity: the selection prefers the earlier one when the evidence does not separate them."""


def nearest_centroid(X: np.ndarray, centers: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Index of the nearest centre (squared Euclidean) for every row, in chunks to bound memory."""
    out = np.empty(X.shape[0], dtype=np.int64)
    c_sq = (centers**2).sum(axis=1)
    for start in range(0, X.shape[0], chunk):
        block = X[start:start + chunk]
        out[start:start + chunk] = np.argmin(c_sq[None, :] - 2.0 * block @ centers.T, axis=1)
    return out


class SegmentClusterer(ClusterMixin, BaseEstimator):
    """Cluster rows into ``n_clusters`` segments with one of :data:`ALGORITHMS` (see the module docstring).

    Learned: ``labels_`` (every training row), ``cluster_centers_`` (member means), ``n_features_in_``.
    """

    def __init__(self, algorithm: str = "kmeans", n_clusters: int = 8, *, random_state=None,
                 n_init: int = 4, fit_sample: int = 20000, minibatch_threshold: int = 100000):
        self.algorithm = algorithm
        self.n_clusters = n_clusters
        self.random_state = random_state
        self.n_init = n_init
        self.fit_sample = fit_sample
        self.minibatch_threshold = minibatch_threshold

    def fit(self, X, y=None) -> SegmentClusterer:
        """Fit the chosen algorithm; returns self."""
        X = validate_data(self, X, reset=True, dtype=np.float64, ensure_min_samples=2)
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}")
        if not 1 <= self.n_clusters <= X.shape[0]:
            raise ValueError(f"n_clusters={self.n_clusters} must be in [1, n_samples={X.shape[0]}]")
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        n = X.shape[0]
        sample = (np.sort(rng.choice(n, size=self.fit_sample, replace=False))
                  if n > self.fit_sample else np.arange(n))
        self.gmm_ = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if self.algorithm == "kmeans":
                if n > self.minibatch_threshold:
                    model = MiniBatchKMeans(n_clusters=self.n_clusters, random_state=seed, n_init=self.n_init,
                                            batch_size=4096)
                else:
                    model = KMeans(n_clusters=self.n_clusters, random_state=seed, n_init=self.n_init)
                labels = model.fit_predict(X)
                centers = model.cluster_centers_
            elif self.algorithm == "gmm":
                model = GaussianMixture(n_components=self.n_clusters, covariance_type="full",
                                        random_state=seed, n_init=1, reg_covar=1e-4)
                model.fit(X[sample])
                self.gmm_ = model
                labels = model.predict(X)
                centers = model.means_
            else:
                ward = AgglomerativeClustering(n_clusters=self.n_clusters, linkage="ward")
                sample_labels = ward.fit_predict(X[sample])
                centers = np.vstack([X[sample][sample_labels == c].mean(axis=0) for c in range(self.n_clusters)])
                labels = nearest_centroid(X, centers)
        self.labels_ = labels.astype(np.int64)
        self.cluster_centers_ = self._member_means(X, self.labels_, np.asarray(centers, dtype=np.float64))
        return self

    def _member_means(self, X, labels, fallback):
        sums = np.zeros((self.n_clusters, X.shape[1]))
        np.add.at(sums, labels, X)
        counts = np.bincount(labels, minlength=self.n_clusters)[:, None]
        return np.where(counts > 0, sums / np.maximum(counts, 1), fallback)

    def predict(self, X) -> np.ndarray:
        """Segment of every row: the mixture's most probable component for ``gmm``, else the nearest centroid."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        if self.gmm_ is not None:
            return self.gmm_.predict(X).astype(np.int64)
        return nearest_centroid(X, self.cluster_centers_)
