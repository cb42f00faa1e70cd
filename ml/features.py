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

__all__ = ["SignedLog1p", "feature_matrix", "make_preprocessor"]


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


def make_preprocessor() -> Pipeline:
    """Median imputation, then signed log1p, then standard scaling."""
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
