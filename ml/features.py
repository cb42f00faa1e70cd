"""Feature preparation: numeric matrix extraction and the standard preprocessing pipeline."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["DERIVED_FEATURES", "SegmentPreprocessor", "SignedLog1p", "add_derived_features", "feature_matrix",
           "make_preprocessor"]


class SignedLog1p(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Compress heavy tails with ``sign(x) * log1p(|x|)``, element-wise.

    Stateless: ``fit`` only records the input width (and feature names, if any).
    NaN values pass through unchanged.
    """

    def fit(self, X, y=None) -> SignedLog1p:
        """Record the number of input features; learns nothing else."""
        validate_data(self, X, reset=True, dtype=np.float64, ensure_all_finite="allow-nan")
        return self

    def transform(self, X) -> np.ndarray:
        """Return the signed log1p of ``X`` as a float64 array."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        return np.sign(X) * np.log1p(np.abs(X))

    def inverse_transform(self, X) -> np.ndarray:
        """Undo :meth:`transform`: ``sign(y) * expm1(|y|)``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        return np.sign(X) * np.expm1(np.abs(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.allow_nan = True
        return tags


DERIVED_FEATURES = {
    "orders_per_session": ("frequency", "session_count"),
}
"""Ratios of two columns the warehouse builds: name -> (numerator, denominator); NaN where the denominator is 0."""


def add_derived_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``frame`` with every :data:`DERIVED_FEATURES` ratio whose inputs it holds."""
    out = frame.copy()
    for name, (num, den) in DERIVED_FEATURES.items():
        if num in out.columns and den in out.columns:
            n = pd.to_numeric(out[num], errors="coerce").astype("Float64")
            d = pd.to_numeric(out[den], errors="coerce").astype("Float64")
            out[name] = (n / d.where(d != 0)).astype("Float64")
    return out


class SegmentPreprocessor(TransformerMixin, BaseEstimator):
    """The segmentation's preprocessing: signed log1p on the ``log_columns`` (indices; spend, counts, days),
    median imputation, standard scaling of every column, then one 0/1 missing flag per column that had
    missing values at fit time, multiplied by ``flag_weight`` and appended after the scaled columns.

    Learned: ``log_mask_``, ``medians_``, ``mean_``, ``scale_`` (std, 1 where 0), ``flag_columns_``.
    ``to_log_space`` gives the imputed, logged (unscaled) values: the space segment centroids are stored in,
    which :func:`scale_log_space` maps to the model space with any run's ``mean_``/``scale_``.
    """

    def __init__(self, log_columns: tuple[int, ...] = (), flag_weight: float = 1.0):
        self.log_columns = log_columns
        self.flag_weight = flag_weight

    def fit(self, X, y=None) -> SegmentPreprocessor:
        """Learn the medians, means, scales and which columns get a missing flag."""
        X = validate_data(self, X, reset=True, dtype=np.float64, ensure_all_finite="allow-nan")
        mask = np.zeros(X.shape[1], dtype=bool)
        mask[list(self.log_columns)] = True
        self.log_mask_ = mask
        logged = self._log(X)
        medians = np.nanmedian(np.where(np.isnan(logged).all(axis=0), 0.0, logged), axis=0)
        self.medians_ = np.where(np.isnan(medians), 0.0, medians)
        filled = np.where(np.isnan(logged), self.medians_, logged)
        self.mean_ = filled.mean(axis=0)
        std = filled.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        self.flag_columns_ = np.flatnonzero(np.isnan(X).any(axis=0))
        return self

    def _log(self, X):
        out = X.copy()
        out[:, self.log_mask_] = np.sign(X[:, self.log_mask_]) * np.log1p(np.abs(X[:, self.log_mask_]))
        return out

    def to_log_space(self, X) -> np.ndarray:
        """Signed log1p on the log columns, missing values imputed with the fitted medians; not scaled."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        logged = self._log(X)
        return np.where(np.isnan(logged), self.medians_, logged)

    def transform(self, X) -> np.ndarray:
        """Scaled log-space values, then the weighted missing flags."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        logged = self._log(X)
        scaled = (np.where(np.isnan(logged), self.medians_, logged) - self.mean_) / self.scale_
        flags = np.isnan(X[:, self.flag_columns_]).astype(np.float64) * self.flag_weight
        return np.hstack([scaled, flags])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def make_preprocessor() -> Pipeline:
    """Median imputation, then signed log1p, then standard scaling (the pre-issue-9 preprocessing, kept for
    the feature-set comparison in bench/segmentation_eval.py)."""
    return Pipeline(
        steps=[
            ("impute", SimpleImputer(strategy="median", add_indicator=False)),
            ("signed_log1p", SignedLog1p()),
            ("scale", StandardScaler()),
        ]
    )


def feature_matrix(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Return ``frame[columns]`` as a 2-D float64 array, missing values (NA/None) as NaN.

    Raises ``KeyError`` naming every absent column, and ``ValueError`` if a column
    holds values that are not numeric.
    """
    if isinstance(columns, str):
        raise TypeError("columns must be a sequence of column names, not a single string")
    columns = list(columns)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"feature columns missing from frame: {missing}")
    out = np.empty((len(frame), len(columns)), dtype=np.float64)
    for j, name in enumerate(columns):
        col = frame[name]
        if isinstance(col, pd.DataFrame):
            raise ValueError(f"column name {name!r} is duplicated in frame")
        try:
            numeric = pd.to_numeric(col, errors="raise")
            out[:, j] = pd.Series(numeric).astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"column {name!r} is not numeric: {exc}") from exc
    return out
