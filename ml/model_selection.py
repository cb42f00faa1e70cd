"""Choice of the number of clusters for k-means by silhouette score."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import silhouette_score
from sklearn.utils.validation import check_array

__all__ = ["KSelection", "canonical_relabel", "select_k"]


@dataclass(frozen=True)
class KSelection:
    """Outcome of :func:`select_k`.

    ``scores`` maps every evaluated k to its silhouette score; ``labels`` and
    ``centroids`` belong to the best k, in canonical order (label 0 = largest
    cluster) and in the coordinate space of the ``X`` given to :func:`select_k`.
    """

    best_k: int
    scores: dict[int, float]
    labels: np.ndarray
    centroids: np.ndarray


def canonical_relabel(labels: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber clusters by descending size, ties broken by lexicographic centroid order.

    Returns ``(labels, centroids)`` with label 0 the largest cluster and
    ``centroids[i]`` the centroid of new label ``i``.
    """
    labels = np.asarray(labels)
    centroids = np.asarray(centroids, dtype=np.float64)
    k = centroids.shape[0]
    sizes = np.bincount(labels, minlength=k)
    # np.lexsort sorts by its last key first: size (descending), then centroid coords in order.
    keys = [centroids[:, j] for j in reversed(range(centroids.shape[1]))] + [-sizes]
    order = np.lexsort(keys)
    new_of_old = np.empty(k, dtype=np.int64)
    new_of_old[order] = np.arange(k)
    return new_of_old[labels], centroids[order].copy()


def _candidate_ks(k_range: range | Sequence[int]) -> list[int]:
    ks: set[int] = set()
    for k in k_range:
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise TypeError(f"k_range must contain integers, got {k!r}")
        ks.add(int(k))
    return sorted(ks)


def select_k(
    X: np.ndarray,
    k_range: range | Sequence[int],
    *,
    random_state: int = 42,
    sample_size: int | None = 4000,
    n_init: int = 10,
) -> KSelection:
    """Fit k-means for each k in ``k_range`` and keep the k with the best silhouette score.

    ``X`` should already be preprocessed (e.g. by ``make_preprocessor``). When ``X``
    has more than ``sample_size`` rows the silhouette is computed on one random
    sample (drawn with ``random_state``) shared by every k. Ties go to the smaller k.
    k values below 2, at or above the number of samples, or for which k-means finds
    fewer than k distinct clusters are skipped. Raises ``ValueError`` when there are
    fewer than 3 samples or no k is admissible.
    """
    X = check_array(X, dtype=np.float64)
    n_samples = X.shape[0]
    if n_samples < 3:
        raise ValueError(f"select_k needs at least 3 samples, got {n_samples}")
    if sample_size is not None and (isinstance(sample_size, bool) or sample_size < 3):
        raise ValueError(f"sample_size must be None or an integer >= 3, got {sample_size!r}")
    ks = _candidate_ks(k_range)
    admissible = [k for k in ks if 2 <= k < n_samples]
    if not admissible:
        raise ValueError(f"no admissible k in {list(ks)} for {n_samples} samples (need 2 <= k < n_samples)")

    if sample_size is not None and n_samples > sample_size:
        rng = np.random.default_rng(random_state)
        sample_idx = np.sort(rng.choice(n_samples, size=sample_size, replace=False))
    else:
        sample_idx = np.arange(n_samples)
    X_sample = X[sample_idx]

    scores: dict[int, float] = {}
    best: tuple[int, float, np.ndarray, np.ndarray] | None = None
    for k in admissible:
        model = KMeans(n_clusters=k, random_state=random_state, n_init=n_init)
        with warnings.catch_warnings():
            # Raised when X has fewer distinct points than k; such k are skipped below.
            warnings.simplefilter("ignore", ConvergenceWarning)
            labels = model.fit_predict(X)
        if np.unique(labels).size < k:
            continue
        sample_labels = labels[sample_idx]
        n_sample_clusters = np.unique(sample_labels).size
        if not 2 <= n_sample_clusters < sample_idx.size:
            continue
        score = float(silhouette_score(X_sample, sample_labels))
        scores[k] = score
        if best is None or score > best[1]:
            best = (k, score, labels, model.cluster_centers_)

    if best is None:
        raise ValueError(
            f"no admissible k in {list(ks)}: k-means found fewer distinct clusters than requested "
            f"(X has too few distinct rows)"
        )
    best_k, _, labels, centers = best
    labels, centroids = canonical_relabel(labels, centers)
    return KSelection(best_k=best_k, scores=scores, labels=labels, centroids=centroids)
