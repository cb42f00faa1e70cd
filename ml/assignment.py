"""Supervised segment assignment: a classifier trained on one week's segments that assigns customers between
re-clusterings (new customers, customers whose features changed).

- :class:`SegmentAssigner` (scikit-learn classifier): a cross-validated grid search (stratified K-fold, scored
  by macro-F1 so that small segments count as much as large ones) over two candidate families - a random
  forest and histogram gradient boosting - each on a small grid (:data:`DEFAULT_GRIDS`); the best candidate by
  mean CV macro-F1 is refitted on every training row. Ties within ``tie_tolerance`` go to the earlier candidate
  (the random forest: fewer knobs, no sequential fit). Missing values are imputed with the training median and
  flagged (a missing AOV means "no order", which is information).
- :func:`train_assigner`: the weekly procedure - a stratified held-out split, the grid search on the rest,
  macro-F1 and per-class F1 on the held-out rows, permutation feature importance (macro-F1 drop) on them, then
  the chosen model refitted on every row for deployment.

Pure: arrays in, results out.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["CANDIDATES", "DEFAULT_GRIDS", "AssignmentReport", "SegmentAssigner", "default_grids", "train_assigner"]

CANDIDATES = ("random_forest", "gradient_boosting")
"""Candidate families, simplest first (ties go to the earlier one)."""

def default_grids(ensemble_size: int = 200) -> dict[str, dict[str, list]]:
    """The documented grid (docs/model-registry.md), 4 points per candidate - with 3 folds, 24 fits a week.
    Depth and leaf size bound the forest's variance on small segments; leaf count and learning rate are the two
    knobs that matter most for boosting at a fixed number of iterations. ``ensemble_size`` is the forest's trees
    and the boosting's iterations (not searched: more only costs time)."""
    return {"random_forest": {"n_estimators": [ensemble_size], "max_depth": [None, 12], "min_samples_leaf": [1, 5]},
            "gradient_boosting": {"max_iter": [ensemble_size], "learning_rate": [0.05, 0.1],
                                  "max_leaf_nodes": [15, 31]}}


DEFAULT_GRIDS = default_grids()


def _base(candidate: str, random_state: int, n_jobs: int | None):
    if candidate == "random_forest":
        return RandomForestClassifier(random_state=random_state, n_jobs=n_jobs)
    if candidate == "gradient_boosting":
        return HistGradientBoostingClassifier(random_state=random_state, early_stopping=False)
    raise ValueError(f"candidate must be one of {CANDIDATES}, got {candidate!r}")


def _pipeline(candidate: str, random_state: int, n_jobs: int | None) -> Pipeline:
    return Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
                     ("model", _base(candidate, random_state, n_jobs))])


class SegmentAssigner(ClassifierMixin, BaseEstimator):
    """Grid-searched segment classifier (module docstring).

    Parameters: ``candidates`` (subset of :data:`CANDIDATES`), ``param_grids`` (candidate -> grid; None =
    :data:`DEFAULT_GRIDS`), ``cv`` folds (lowered to the smallest class's size; with fewer than 2 rows in some
    class no search runs and the first grid point of the first candidate is fitted), ``grid_sample`` (the search
    runs on a stratified sample of at most this many rows; the refit uses every row), ``tie_tolerance``,
    ``random_state``, ``n_jobs`` (the forest's).

    Learned: ``classes_``, ``estimator_`` (imputer + model pipeline), ``chosen_``, ``best_params_``,
    ``cv_results_`` (candidate -> {"macro_f1", "macro_f1_std", "params", "fits"}), ``search_seconds_`` /
    ``search_cpu_seconds_`` (wall / CPU time of the search and the fit),
    ``n_features_in_``.
    """

    def __init__(self, candidates: Sequence[str] = CANDIDATES, param_grids: Mapping[str, Mapping] | None = None,
                 cv: int = 3, grid_sample: int = 20000, tie_tolerance: float = 0.005, random_state: int = 0,
                 n_jobs: int | None = None):
        self.candidates = candidates
        self.param_grids = param_grids
        self.cv = cv
        self.grid_sample = grid_sample
        self.tie_tolerance = tie_tolerance
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _grid(self, candidate: str) -> dict[str, list]:
        grids = DEFAULT_GRIDS if self.param_grids is None else self.param_grids
        if candidate not in grids:
            raise ValueError(f"no parameter grid for candidate {candidate!r}")
        return {k: list(v) for k, v in grids[candidate].items()}

    def _threads(self):
        """Both candidates use ``n_jobs`` threads (None = 1, joblib's convention): the boosting's OpenMP pool
        would otherwise take every core, which on a shared machine costs far more than it gains."""
        from threadpoolctl import threadpool_limits

        n = 1 if self.n_jobs is None else self.n_jobs
        return threadpool_limits(limits=None if n < 0 else n, user_api="openmp")

    def fit(self, X, y) -> SegmentAssigner:
        """Search every candidate's grid by stratified CV macro-F1, refit the best on all of ``X``."""
        with self._threads():
            return self._fit(X, y)

    def _fit(self, X, y) -> SegmentAssigner:
        X, y = validate_data(self, X, y, reset=True, dtype=np.float64, ensure_all_finite="allow-nan")
        check_classification_targets(y)
        candidates = list(self.candidates)
        if not candidates or any(c not in CANDIDATES for c in candidates):
            raise ValueError(f"candidates must be a non-empty subset of {CANDIDATES}, got {candidates}")
        self.classes_, counts = np.unique(y, return_counts=True)
        folds = int(min(self.cv, counts.min()))
        started, cpu = time.perf_counter(), time.process_time()
        self.cv_results_ = {}
        if folds < 2 or self.classes_.size < 2:
            chosen = candidates[0]
            params = {k: v[0] for k, v in self._grid(chosen).items()}
        else:
            Xs, ys = self._search_sample(X, y)
            splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
            for candidate in candidates:
                grid = {f"model__{k}": v for k, v in self._grid(candidate).items()}
                search = GridSearchCV(_pipeline(candidate, self.random_state, self.n_jobs), grid, cv=splitter,
                                      scoring="f1_macro", refit=False, error_score="raise")
                search.fit(Xs, ys)
                best = int(search.best_index_)
                self.cv_results_[candidate] = {
                    "macro_f1": float(search.cv_results_["mean_test_score"][best]),
                    "macro_f1_std": float(search.cv_results_["std_test_score"][best]),
                    "params": {k.removeprefix("model__"): v for k, v in search.best_params_.items()},
                    "fits": int(len(search.cv_results_["params"]) * folds)}
            top = max(r["macro_f1"] for r in self.cv_results_.values())
            chosen = next(c for c in candidates if self.cv_results_[c]["macro_f1"] >= top - self.tie_tolerance)
            params = self.cv_results_[chosen]["params"]
        self.chosen_, self.best_params_ = chosen, dict(params)
        self.estimator_ = _pipeline(chosen, self.random_state, self.n_jobs).set_params(
            **{f"model__{k}": v for k, v in params.items()}).fit(X, y)
        self.search_seconds_ = time.perf_counter() - started
        self.search_cpu_seconds_ = time.process_time() - cpu
        return self

    def _search_sample(self, X, y):
        if X.shape[0] <= self.grid_sample:
            return X, y
        idx, _ = train_test_split(np.arange(X.shape[0]), train_size=self.grid_sample, stratify=y,
                                  random_state=self.random_state)
        return X[np.sort(idx)], y[np.sort(idx)]

    def refit(self, X, y) -> SegmentAssigner:
        """A copy with the same chosen candidate, parameters and search record, its model fitted on ``X``/``y``
        (no new search): the weekly deployment model after the held-out evaluation."""
        check_is_fitted(self)
        X, y = validate_data(self, X, y, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        out = clone(self)
        for name in ("chosen_", "best_params_", "cv_results_", "search_seconds_", "search_cpu_seconds_",
                     "n_features_in_"):
            setattr(out, name, getattr(self, name))
        out.classes_ = np.unique(y)
        with self._threads():
            out.estimator_ = clone(self.estimator_).fit(X, y)
        return out

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        with self._threads():
            return self.estimator_.predict(X)

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        with self._threads():
            return self.estimator_.predict_proba(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


@dataclass
class AssignmentReport:
    """What :func:`train_assigner` measured: the chosen candidate and its CV macro-F1, every candidate's CV
    macro-F1, held-out macro-F1 / accuracy / per-class F1, and the permutation importance of each feature
    (mean and SD of the held-out macro-F1 drop when that column is shuffled), largest first."""

    chosen: str
    params: dict
    cv_macro_f1: dict[str, float]
    holdout_macro_f1: float
    holdout_accuracy: float
    per_class_f1: dict[str, float]
    importance: list[dict] = field(default_factory=list)
    train_rows: int = 0
    holdout_rows: int = 0
    search_seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"chosen": self.chosen, "params": self.params, "cv_macro_f1": self.cv_macro_f1,
                "holdout_macro_f1": self.holdout_macro_f1, "holdout_accuracy": self.holdout_accuracy,
                "per_class_f1": self.per_class_f1, "importance": self.importance, "train_rows": self.train_rows,
                "holdout_rows": self.holdout_rows, "search_seconds": self.search_seconds}


def train_assigner(X, y, feature_names: Sequence[str] | None = None, *, test_size: float = 0.25,
                   importance_repeats: int = 5, importance_sample: int = 5000, random_state: int = 0,
                   **assigner_params) -> tuple[SegmentAssigner, AssignmentReport]:
    """Held-out evaluation then deployment fit (module docstring). Returns the model refitted on every row and
    the report. Raises ValueError when some class has fewer than 4 rows (no stratified split + CV possible)."""
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import accuracy_score, f1_score

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    if classes.size < 2 or counts.min() < 4:
        small = {str(c): int(n) for c, n in zip(classes, counts, strict=True) if n < 4}
        raise ValueError(f"need at least 2 classes with 4+ rows each to train and evaluate; too small: {small}")
    names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(X.shape[1])]
    train, test = train_test_split(np.arange(X.shape[0]), test_size=test_size, stratify=y, random_state=random_state)
    model = SegmentAssigner(random_state=random_state, **assigner_params).fit(X[train], y[train])
    predicted = model.predict(X[test])
    per_class = f1_score(y[test], predicted, labels=classes, average=None, zero_division=0)
    rng = np.random.default_rng(random_state)
    sample = test if test.size <= importance_sample else rng.choice(test, size=importance_sample, replace=False)
    imp = permutation_importance(model, X[sample], y[sample], scoring="f1_macro", n_repeats=importance_repeats,
                                 random_state=random_state)
    importance = sorted(({"feature": n, "mean": round(float(m), 5), "std": round(float(s), 5)}
                         for n, m, s in zip(names, imp.importances_mean, imp.importances_std, strict=True)),
                        key=lambda r: -r["mean"])
    report = AssignmentReport(
        chosen=model.chosen_, params=model.best_params_,
        cv_macro_f1={c: round(r["macro_f1"], 5) for c, r in model.cv_results_.items()},
        holdout_macro_f1=round(float(f1_score(y[test], predicted, average="macro", zero_division=0)), 5),
        holdout_accuracy=round(float(accuracy_score(y[test], predicted)), 5),
        per_class_f1={str(c): round(float(f), 5) for c, f in zip(classes, per_class, strict=True)},
        importance=importance, train_rows=int(train.size), holdout_rows=int(test.size),
        search_seconds=round(model.search_seconds_, 3))
    return model.refit(X, y), report
