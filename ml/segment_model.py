"""A week's segmentation as a fitted, storable model: :class:`CentroidSegmentModel` maps raw feature rows to
segment ids the way the weekly run defined them - the segmentation's preprocessing
(:class:`ml.features.SegmentPreprocessor`: signed log1p, median imputation, scaling, missing flags), then the
nearest segment centroid (the member mean in that space).

Fitted on the week's training rows and their segment ids it reproduces the week's k-means labels (a k-means
partition is a nearest-centroid partition); for a Gaussian mixture it is the nearest-mean approximation of the
posterior. It is what the model registry stores beside the classifier, and what the drift check uses to score
two weeks with one model (a refit that moves a boundary is then not a population change).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ml.clustering import nearest_centroid
from ml.features import SegmentPreprocessor

__all__ = ["CentroidSegmentModel", "promotion_failures"]


class CentroidSegmentModel(ClassifierMixin, BaseEstimator):
    """Segmentation preprocessing + nearest member-mean centroid (module docstring).

    Learned: ``preprocessor_``, ``classes_`` (segment ids), ``centroids_`` (one row per class, model space),
    ``n_features_in_``.
    """

    def __init__(self, log_columns: tuple[int, ...] = (), flag_weight: float = 1.0):
        self.log_columns = log_columns
        self.flag_weight = flag_weight

    def fit(self, X, y) -> CentroidSegmentModel:
        X, y = validate_data(self, X, y, reset=True, dtype=np.float64, ensure_all_finite="allow-nan")
        check_classification_targets(y)
        self.preprocessor_ = SegmentPreprocessor(log_columns=tuple(self.log_columns),
                                                 flag_weight=self.flag_weight).fit(X)
        Z = self.preprocessor_.transform(X)
        self.classes_, codes = np.unique(y, return_inverse=True)
        sums = np.zeros((self.classes_.size, Z.shape[1]))
        np.add.at(sums, codes, Z)
        self.centroids_ = sums / np.bincount(codes)[:, None]
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        return self.classes_[nearest_centroid(self.preprocessor_.transform(X), self.centroids_)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def promotion_failures(metrics: dict, floors: dict) -> list[str]:
    """The quality floors a model version misses, one sentence each (empty: every floor holds).

    ``floors`` maps a metric name to its minimum; a metric that is None (e.g. no champion to compare with for
    ``stability_vs_champion``, which then does not apply) is skipped, except ``classifier_macro_f1``, which a
    version must have: without a classifier it cannot assign customers between re-clusterings."""
    failures = []
    for name, floor in floors.items():
        value = metrics.get(name)
        if value is None:
            if name == "classifier_macro_f1":
                failures.append("classifier_macro_f1 missing (the assignment classifier could not be trained)")
            continue
        if not np.isfinite(value) or value < floor:
            failures.append(f"{name} {value:.3f} < floor {floor}")
    return failures
