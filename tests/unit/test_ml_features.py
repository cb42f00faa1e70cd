"""Tests for ml.features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from ml.features import (
    SegmentPreprocessor,
    SignedLog1p,
    add_derived_features,
    feature_matrix,
    make_preprocessor,
)


@parametrize_with_checks([SignedLog1p()])
def test_signed_log1p_passes_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_signed_log1p_values_and_sign_symmetry():
    X = np.array([[0.0, 1.0, -1.0], [np.e - 1, -(np.e - 1), 1e6]])
    out = SignedLog1p().fit(X).transform(X)
    expected = np.array([[0.0, np.log(2), -np.log(2)], [1.0, -1.0, np.log1p(1e6)]])
    np.testing.assert_allclose(out, expected)
    assert out.dtype == np.float64


def test_signed_log1p_is_stateless_and_keeps_nan():
    t = SignedLog1p()
    out = t.transform([[np.nan, 3.0]])  # usable without fit
    assert np.isnan(out[0, 0])
    assert out[0, 1] == pytest.approx(np.log1p(3.0))
    fitted = t.fit([[1.0, 2.0]])
    assert fitted is t
    assert t.n_features_in_ == 2
    with pytest.raises(ValueError):
        t.transform([[1.0, 2.0, 3.0]])


def test_signed_log1p_inverse_round_trip():
    X = np.array([[-250.0, 0.0], [3.5, 1e4]])
    t = SignedLog1p().fit(X)
    np.testing.assert_allclose(t.inverse_transform(t.transform(X)), X)


def test_make_preprocessor_steps_and_output():
    pipe = make_preprocessor()
    kinds = [type(step) for _, step in pipe.steps]
    assert kinds == [SimpleImputer, SignedLog1p, StandardScaler]
    assert pipe.steps[0][1].strategy == "median"
    assert pipe.steps[0][1].add_indicator is False

    rng = np.random.default_rng(0)
    X = rng.lognormal(mean=3.0, sigma=1.5, size=(500, 3))
    X[::7, 1] = np.nan
    Z = pipe.fit_transform(X)
    assert Z.shape == X.shape
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, atol=1e-9)
    # Imputed rows get the transformed median of the column.
    median = np.nanmedian(X[:, 1])
    finite = ~np.isnan(X[:, 1])
    ref = Z[finite][np.argmin(np.abs(X[finite, 1] - median)), 1]
    assert Z[0, 1] == pytest.approx(ref, abs=0.05)


def test_make_preprocessor_returns_fresh_pipelines():
    a, b = make_preprocessor(), make_preprocessor()
    assert a is not b
    a.fit(np.arange(10.0).reshape(5, 2))
    assert not hasattr(b.steps[-1][1], "mean_")


def test_feature_matrix_selects_in_order_and_casts_missing_to_nan():
    frame = pd.DataFrame(
        {
            "a": [1, 2, 3],
            "b": pd.array([1, pd.NA, 3], dtype="Int64"),
            "c": [0.5, None, 1.5],
            "d": [True, False, True],
            "e": [4, pd.NA, None],
            "ignored": ["x", "y", "z"],
        }
    )
    X = feature_matrix(frame, ["c", "a", "b", "d", "e"])
    assert X.dtype == np.float64
    assert X.shape == (3, 5)
    expected = np.array(
        [[0.5, 1.0, 1.0, 1.0, 4.0], [np.nan, 2.0, np.nan, 0.0, np.nan], [1.5, 3.0, 3.0, 1.0, np.nan]]
    )
    np.testing.assert_array_equal(X, expected)


def test_feature_matrix_missing_columns_are_listed():
    frame = pd.DataFrame({"a": [1.0]})
    with pytest.raises(KeyError) as info:
        feature_matrix(frame, ["a", "recency_days", "monetary"])
    message = str(info.value)
    assert "recency_days" in message and "monetary" in message
    assert "'a'" not in message


def test_feature_matrix_rejects_text_and_bare_string():
    frame = pd.DataFrame({"a": ["1.0", "oops"]})
    with pytest.raises(ValueError, match="'a'"):
        feature_matrix(frame, ["a"])
    with pytest.raises(TypeError):
        feature_matrix(frame, "a")


def test_feature_matrix_empty_frame_keeps_two_dimensions():
    X = feature_matrix(pd.DataFrame({"a": pd.Series([], dtype="float64")}), ["a"])
    assert X.shape == (0, 1)


@parametrize_with_checks([SegmentPreprocessor(), SegmentPreprocessor(log_columns=(0,), flag_weight=0.5)])
def test_segment_preprocessor_passes_sklearn_checks(estimator, check):
    check(estimator)


def test_segment_preprocessor_logs_imputes_scales_and_flags():
    X = np.array([[0.0, 1.0], [np.e - 1, np.nan], [np.e**2 - 1, 3.0]])
    pre = SegmentPreprocessor(log_columns=(0,), flag_weight=2.0).fit(X)
    out = pre.transform(X)
    assert out.shape == (3, 3)  # column 1 had a missing value: one flag column
    np.testing.assert_allclose(out[:, 2], [0.0, 2.0, 0.0])
    np.testing.assert_allclose(pre.to_log_space(X)[:, 0], [0.0, 1.0, 2.0])
    np.testing.assert_allclose(pre.to_log_space(X)[1, 1], 2.0)  # the median of 1 and 3
    np.testing.assert_allclose(out[:, :2].mean(axis=0), [0.0, 0.0], atol=1e-12)


def test_derived_orders_per_session_is_missing_without_sessions():
    frame = pd.DataFrame({"frequency": [2, 0, 1], "session_count": [4, 0, None]})
    out = add_derived_features(frame)
    assert out["orders_per_session"].iloc[0] == 0.5
    assert out["orders_per_session"].iloc[1:].isna().all()
    assert "orders_per_session" not in frame
