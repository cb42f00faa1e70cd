"""Anomalous customers: an isolation score and a local-density score on robust z-scores, and why each is unusual.

:class:`RobustZScaler` centres each feature on its median and divides by a robust spread: 1.4826 x MAD (the
normal-consistent median absolute deviation); where more than half the values are equal (MAD = 0, common for
shares that are mostly 0) by 1.2533 x the mean absolute deviation around the median (Iglewicz & Hoaglin's
fallback); 1 for a constant feature. Outliers cannot inflate this spread the way they inflate a standard
deviation, so a small group of extreme customers stays extreme.

:class:`AnomalyDetector` (an outlier detector in scikit-learn's conventions: ``fit``, ``predict`` -> -1 / 1,
``decision_function`` < 0 for outliers, ``score_samples``) imputes missing values with the median, applies a
signed log1p (counts and rates are heavy-tailed), robust-scales, and scores every row twice:

* **isolation** - the anomaly score s(x) of Liu, Ting & Zhou's Isolation Forest, in (0, 1): 2 ** (-mean path
  length / c(max_samples)). s close to 1: isolated in few random splits; s <= 0.5: no distinct anomaly.
* **density** - the Local Outlier Factor of Breunig et al., for every row against a random reference sample of
  ``density_sample`` distinct rows (duplicates removed: many customers share one profile, e.g. the median of
  everything, and duplicates make the local density infinite). LOF ~ 1: as dense as its neighbours; 3: a third.
  A group of similar anomalies (bots) hides from LOF when it fills a point's whole neighbourhood; against a
  reference of ``density_sample`` rows with ``n_neighbors`` neighbours, any group smaller than
  ``n_neighbors / density_sample`` of the population (about 5% with the defaults) is seen as a low-density
  group, and a larger one as a cluster of its own (a segment, not an anomaly).

The flag rule needs no contamination rate (no share of outliers is assumed): with ``rule="both"`` (default) a
row is an outlier when its isolation score is above ``isolation_threshold`` **and** its LOF above
``density_threshold``; with ``"either"`` when one of them is. In both cases it must also be unusual in at
least ``min_unusual_features`` features (``|robust z| > unusual_z``): one extreme attribute alone (a single
smart-TV session, one very long visit) is a quirk of the data rather than a different kind of customer, and
a flag always comes with that many reasons. ``decision_function`` is the margin of the rule in log units,
``-min(detectors, log(z_k / unusual_z))`` where z_k is the row's k-th largest |z| (k = ``min_unusual_features``)
and ``detectors`` is ``min`` (``"both"``) or ``max`` (``"either"``) of ``log(s / isolation_threshold)`` and
``log(lof / density_threshold)``: negative exactly when the row is flagged. :func:`top_reasons` names the features that make a row
unusual: those with the largest absolute robust z-score.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, OutlierMixin, TransformerMixin
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ml.features import SignedLog1p

__all__ = ["AnomalyDetector", "RobustZScaler", "top_reasons"]

MAD_TO_SD = 1.4826  # 1 / Phi^-1(3/4): MAD of a normal distribution times this is its standard deviation
MEAN_AD_TO_SD = 1.2533  # sqrt(pi / 2): the same for the mean absolute deviation


class RobustZScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Robust z-scores: ``(x - median) / spread``; spread = 1.4826 MAD, else 1.2533 mean AD, else 1.

    NaN values are ignored when fitting and pass through ``transform``.
    """

    def fit(self, X, y=None) -> RobustZScaler:
        """Learn each feature's median (``center_``) and robust spread (``scale_``)."""
        X = validate_data(self, X, reset=True, dtype=np.float64, ensure_all_finite="allow-nan")
        with np.errstate(all="ignore"):
            center = np.nanmedian(X, axis=0) if X.size else np.zeros(X.shape[1])
            center = np.where(np.isnan(center), 0.0, center)  # an all-NaN column
            deviation = np.abs(X - center)
            mad = MAD_TO_SD * np.nan_to_num(np.nanmedian(deviation, axis=0))
            mean_ad = MEAN_AD_TO_SD * np.nan_to_num(np.nanmean(deviation, axis=0))
        self.center_ = center
        self.scale_ = np.where(mad > 0, mad, np.where(mean_ad > 0, mean_ad, 1.0))
        return self

    def transform(self, X) -> np.ndarray:
        """Return the robust z-scores of ``X``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        return (X - self.center_) / self.scale_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class AnomalyDetector(OutlierMixin, BaseEstimator):
    """Isolation Forest and Local Outlier Factor on robust z-scores; flagged by a contamination-free rule.

    Parameters
    ----------
    n_estimators, max_samples : the Isolation Forest's trees and the rows each tree is grown on.
    isolation_threshold : isolation score s in (0, 1) above which the forest calls a row anomalous.
    n_neighbors : LOF neighbourhood size.
    density_sample : distinct rows drawn as LOF's reference set.
    density_threshold : LOF above which the density detector calls a row anomalous.
    rule : ``"both"`` (both detectors agree) or ``"either"``.
    min_unusual_features : features with ``|robust z| > unusual_z`` a flagged row needs (0: no such condition).
    unusual_z : robust z-score beyond which a feature counts as unusual (3.5: Iglewicz & Hoaglin's cut-off).
    log_transform : apply ``sign(x) log1p(|x|)`` before scaling.
    random_state : seeds the forest and the reference sample.
    """

    _parameter_constraints: dict = {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_samples": [Interval(Integral, 2, None, closed="left")],
        "isolation_threshold": [Interval(Real, 0, 1, closed="neither")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "density_sample": [Interval(Integral, 2, None, closed="left")],
        "density_threshold": [Interval(Real, 0, None, closed="neither")],
        "rule": [StrOptions({"both", "either"})],
        "min_unusual_features": [Interval(Integral, 0, None, closed="left")],
        "unusual_z": [Interval(Real, 0, None, closed="neither")],
        "log_transform": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, n_estimators: int = 100, max_samples: int = 256, isolation_threshold: float = 0.6,
                 n_neighbors: int = 25, density_sample: int = 512, density_threshold: float = 3.0,
                 rule: str = "both", min_unusual_features: int = 2, unusual_z: float = 3.5,
                 log_transform: bool = True, random_state=None) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.isolation_threshold = isolation_threshold
        self.n_neighbors = n_neighbors
        self.density_sample = density_sample
        self.density_threshold = density_threshold
        self.rule = rule
        self.min_unusual_features = min_unusual_features
        self.unusual_z = unusual_z
        self.log_transform = log_transform
        self.random_state = random_state

    def fit(self, X, y=None) -> AnomalyDetector:
        """Learn the preprocessing, grow the forest and draw the density reference set."""
        self._validate_params()
        X = validate_data(self, X, reset=True, dtype=np.float64, ensure_all_finite="allow-nan", ensure_min_samples=2)
        rng = check_random_state(self.random_state)
        steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
        if self.log_transform:
            steps.append(("signed_log1p", SignedLog1p()))
        steps.append(("robust_z", RobustZScaler()))
        self.preprocessor_ = Pipeline(steps)
        Z = self.preprocessor_.fit_transform(X)
        self.iforest_ = IsolationForest(n_estimators=self.n_estimators, max_samples=min(self.max_samples, len(Z)),
                                        random_state=rng.randint(np.iinfo(np.int32).max)).fit(Z)
        sample = Z[rng.choice(len(Z), self.density_sample, replace=False)] if len(Z) > self.density_sample else Z
        reference = np.unique(sample, axis=0)
        if len(reference) >= 2:
            self.lof_ = LocalOutlierFactor(n_neighbors=min(self.n_neighbors, len(reference) - 1),
                                           novelty=True).fit(reference)
        else:  # every row the same: no density contrast to measure
            self.lof_ = None
        self.offset_ = 0.0
        return self

    def robust_z(self, X) -> np.ndarray:
        """The robust z-scores the detectors see (after imputation and the log transform)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        return self.preprocessor_.transform(X)

    def isolation_scores(self, X) -> np.ndarray:
        """Isolation Forest anomaly score s in (0, 1); higher is more anomalous."""
        return -self.iforest_.score_samples(self.robust_z(X))

    def density_scores(self, X) -> np.ndarray:
        """Local Outlier Factor against the reference set (>= about 1; higher is more anomalous)."""
        return self._density(self.robust_z(X))

    def _density(self, Z: np.ndarray) -> np.ndarray:
        if self.lof_ is None:
            return np.ones(len(Z))
        return -self.lof_.score_samples(Z)

    def score_details(self, X) -> dict[str, np.ndarray]:
        """Everything at once (one preprocessing pass): ``robust_z``, ``isolation``, ``density``, ``margin``."""
        Z = self.robust_z(X)
        isolation = -self.iforest_.score_samples(Z)
        density = self._density(Z)
        return {"robust_z": Z, "isolation": isolation, "density": density,
                "margin": self._margin(isolation, density, Z)}

    def _margin(self, isolation: np.ndarray, density: np.ndarray, z: np.ndarray) -> np.ndarray:
        tiny = 1e-300
        combine = np.minimum if self.rule == "both" else np.maximum
        detectors = combine(np.log(np.maximum(isolation, tiny) / self.isolation_threshold),
                            np.log(np.maximum(density, tiny) / self.density_threshold))
        k = self.min_unusual_features
        if k == 0:
            return -detectors
        if k > z.shape[1]:  # more unusual features required than there are features: nothing can be flagged
            return np.full(len(z), np.inf)
        kth = -np.partition(-np.abs(z), k - 1, axis=1)[:, k - 1]
        return -np.minimum(detectors, np.log(np.maximum(kth, tiny) / self.unusual_z))

    def decision_function(self, X) -> np.ndarray:
        """Margin of the flag rule in log units: negative for outliers, >= 0 for inliers."""
        return self.score_samples(X) - self.offset_

    def score_samples(self, X) -> np.ndarray:
        """The rule's margin (``offset_`` is 0): the lower, the more abnormal."""
        return self.score_details(X)["margin"]

    def predict(self, X) -> np.ndarray:
        """-1 for outliers (flagged), 1 for inliers."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.non_deterministic = False
        return tags


def top_reasons(z: np.ndarray, feature_names: Sequence[str], top: int = 3, min_abs_z: float = 3.5) -> list[list[dict]]:
    """Per row, the features with the largest absolute robust z-score (at most ``top``, each ``|z| >= min_abs_z``),
    largest first: ``{"feature", "robust_z", "direction"}`` with direction ``high`` or ``low``."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != len(feature_names):
        raise ValueError(f"z must be 2-D with one column per feature name ({len(feature_names)}), not {z.shape}")
    order = np.argsort(-np.abs(z), axis=1, kind="stable")[:, :top]
    reasons = []
    for row, columns in zip(z, order, strict=True):
        reasons.append([{"feature": feature_names[j], "robust_z": round(float(row[j]), 2),
                         "direction": "high" if row[j] > 0 else "low"}
                        for j in columns if abs(row[j]) >= min_abs_z])
    return reasons
