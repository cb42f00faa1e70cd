"""Choice of the algorithm and number of segments: :func:`select_model` (issue 9: several criteria, bootstrap
stability, preference for the simpler model and last week's choice) and the older :func:`select_k` (k-means,
silhouette only; kept for comparison in bench/segmentation_eval.py)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import silhouette_score
from sklearn.utils.validation import check_array

__all__ = ["Candidate", "KSelection", "ModelChoice", "canonical_relabel", "knee_k", "select_k", "select_model"]


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


# ---------------------------------------------------------------------------
# Model selection over algorithms and k (issue 9)

@dataclass(frozen=True)
class Candidate:
    """Scores of one (algorithm, k) fitted on the selection sample."""

    algorithm: str
    k: int
    silhouette: float
    davies_bouldin: float
    calinski_harabasz: float
    inertia: float
    stability: float
    min_share: float
    admissible: bool


@dataclass(frozen=True)
class ModelChoice:
    """Outcome of :func:`select_model`: the chosen (algorithm, k), every candidate's scores, the knee of the
    k-means inertia curve, and the reason in one sentence."""

    algorithm: str
    k: int
    candidates: tuple[Candidate, ...]
    knee_k: int | None
    reason: str

    def scores(self) -> dict[str, dict[str, float]]:
        """``{"<algorithm>:<k>": {criterion: value}}`` for the run record."""
        return {f"{c.algorithm}:{c.k}": {
            "silhouette": round(c.silhouette, 5), "davies_bouldin": round(c.davies_bouldin, 5),
            "calinski_harabasz": round(c.calinski_harabasz, 3), "inertia": round(c.inertia, 5),
            "stability": round(c.stability, 5), "min_share": round(c.min_share, 5), "admissible": c.admissible}
            for c in self.candidates}


def knee_k(ks: Sequence[int], inertia: Sequence[float]) -> int | None:
    """Knee of a decreasing curve (Kneedle: the point farthest below the chord from first to last point,
    both axes scaled to [0, 1]); None with fewer than 3 points."""
    if len(ks) < 3:
        return None
    x = np.asarray(ks, dtype=float)
    y = np.asarray(inertia, dtype=float)
    xn = (x - x[0]) / (x[-1] - x[0])
    span = y[0] - y[-1]
    if not span > 0:
        return None
    yn = (y - y[-1]) / span
    return int(ks[int(np.argmax((1 - xn) - yn))])


def _composite(cands: list[Candidate]) -> np.ndarray:
    """Mean of the candidates' ranks (1 = best) on silhouette, Davies-Bouldin, Calinski-Harabasz and stability."""
    from scipy.stats import rankdata

    sil = rankdata([-c.silhouette for c in cands])
    db = rankdata([c.davies_bouldin for c in cands])
    ch = rankdata([-c.calinski_harabasz for c in cands])
    st = rankdata([-c.stability for c in cands])
    return (sil + db + ch + st) / 4.0


def select_model(
    X: np.ndarray,
    ks: Sequence[int],
    algorithms: Sequence[str] = ("kmeans",),
    *,
    previous: tuple[str, int] | None = None,
    random_state: int = 42,
    selection_sample: int = 3000,
    bootstrap_runs: int = 2,
    min_segment_share: float = 0.02,
    min_stability: float = 0.6,
    tolerance: float = 0.5,
    keep_tolerance: float = 3.0,
    n_init: int = 4,
) -> ModelChoice:
    """Choose the algorithm and k on a random sample of ``selection_sample`` rows of the preprocessed ``X``.

    Every (algorithm, k) is fitted on the sample (:class:`ml.clustering.SegmentClusterer`) and scored there:
    silhouette, Davies-Bouldin, Calinski-Harabasz, mean within-cluster squared distance (the elbow curve),
    the smallest segment's share, and bootstrap stability - the mean ARI between the fit and fits on
    ``bootstrap_runs`` resamples (drawn with replacement), compared on the sample.

    Rule: a candidate is admissible when its smallest segment holds at least ``min_segment_share`` and its
    stability is at least ``min_stability``. Admissible candidates are ranked on each of silhouette,
    Davies-Bouldin, Calinski-Harabasz and stability; the composite is the mean rank. Last week's
    (algorithm, k) is kept while it is admissible and within ``keep_tolerance`` composite ranks of the best
    (the evidence against it is not clear); otherwise, of the candidates within ``tolerance`` ranks of the
    best, the simplest is taken - the fewest segments, then the earlier algorithm in
    :data:`ml.clustering.ALGORITHMS`. When nothing is admissible, the most stable candidate is taken and the
    reason says so.
    """
    from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score

    from ml.clustering import ALGORITHMS, SegmentClusterer

    X = check_array(X, dtype=np.float64)
    n = X.shape[0]
    rng = np.random.default_rng(random_state)
    sample = np.sort(rng.choice(n, size=selection_sample, replace=False)) if n > selection_sample else np.arange(n)
    S = X[sample]
    ks = [k for k in _candidate_ks(ks) if 2 <= k < S.shape[0]]
    if not ks:
        raise ValueError(f"no admissible k for {S.shape[0]} sampled rows")
    unknown = [a for a in algorithms if a not in ALGORITHMS]
    if unknown or not algorithms:
        raise ValueError(f"algorithms must be a non-empty subset of {ALGORITHMS}, got {list(algorithms)}")
    boots = [rng.integers(0, S.shape[0], size=S.shape[0]) for _ in range(bootstrap_runs)]

    cands: list[Candidate] = []
    for algorithm in [a for a in ALGORITHMS if a in algorithms]:
        for k in ks:
            model = SegmentClusterer(algorithm, k, random_state=random_state, n_init=n_init,
                                     fit_sample=S.shape[0]).fit(S)
            labels = model.labels_
            if np.unique(labels).size < 2:
                continue
            stab = [adjusted_rand_score(labels, SegmentClusterer(algorithm, k, random_state=random_state + 1 + b,
                                                                 n_init=n_init, fit_sample=S.shape[0])
                                        .fit(S[idx]).predict(S)) for b, idx in enumerate(boots)]
            inertia = float(((S - model.cluster_centers_[labels]) ** 2).sum(axis=1).mean())
            min_share = float(np.bincount(labels, minlength=k).min() / labels.size)
            stability = float(np.mean(stab)) if stab else 1.0
            cands.append(Candidate(
                algorithm, k, float(silhouette_score(S, labels)), float(davies_bouldin_score(S, labels)),
                float(calinski_harabasz_score(S, labels)), inertia, stability, min_share,
                min_share >= min_segment_share and stability >= min_stability))
    if not cands:
        raise ValueError("no candidate produced two or more clusters")
    kmeans_curve = [(c.k, c.inertia) for c in cands if c.algorithm == "kmeans"]
    knee = knee_k([k for k, _ in kmeans_curve], [i for _, i in kmeans_curve]) if kmeans_curve else None

    admissible = [c for c in cands if c.admissible]
    if not admissible:
        best = max(cands, key=lambda c: (c.stability, -c.k))
        return ModelChoice(best.algorithm, best.k, tuple(cands), knee,
                           f"no candidate met min_segment_share={min_segment_share} and "
                           f"min_stability={min_stability}: took the most stable ({best.algorithm}, k={best.k})")
    composite = _composite(admissible)
    top = composite.min()
    near = [c for c, r in zip(admissible, composite, strict=True) if r <= top + tolerance]
    order = {a: i for i, a in enumerate(ALGORITHMS)}
    kept = next((c for c, r in zip(admissible, composite, strict=True) if previous is not None
                 and (c.algorithm, c.k) == tuple(previous) and r <= top + keep_tolerance), None)
    if kept is not None:
        reason = (f"last week's ({kept.algorithm}, k={kept.k}) is within {keep_tolerance} composite ranks of the "
                  "best: kept")
    else:
        kept = min(near, key=lambda c: (c.k, order[c.algorithm]))
        reason = (f"simplest of {len(near)} candidate(s) within {tolerance} composite ranks of the best "
                  f"(mean rank on silhouette, Davies-Bouldin, Calinski-Harabasz, stability)")
    return ModelChoice(kept.algorithm, kept.k, tuple(cands), knee, reason)
