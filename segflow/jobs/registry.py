"""Model registry: every weekly segmentation becomes a stored model version; it replaces the champion only when
every quality floor holds.

A version (= the week's ``ml.model_runs.run_id``) is built from what the recluster stored - the week's
``ml.feature_snapshots`` rows (its exact training data) and their ``ml.segment_assignments``:

- ``segmentation.joblib``: :class:`ml.segment_model.CentroidSegmentModel` (the segmentation preprocessing with
  its medians, means and scales, and the segment centroids) - maps feature rows to this version's segment ids;
- ``classifier.joblib``: :class:`ml.assignment.SegmentAssigner` (grid-searched random forest / gradient
  boosting), evaluated on a held-out split and refitted on every row;

both under ``<SEGFLOW_HOME>/models/<version>/``, and a row in ``ml.model_registry`` (code and library versions,
data snapshot id, build, params, metrics, floors, decision). The floors (settings ``registry_min_*``):
silhouette, stability against the champion (ARI), smallest segment share, classifier macro-F1. A version that
misses one is rejected: the champion stays, its classifier assigns the week's customers
(``ml.segment_assignments_daily``, reason ``champion_fallback``; :func:`champion_assignments` is what
publication uses), and an alert says why. Re-running a week re-decides that week only.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from segflow.ddl import ensure_schema
from segflow.errors import NotReady
from segflow.jobs.ml_common import code_version, library_versions, resolve_as_of, to_naive_utc
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect, insert_frame, table_exists
from segflow.warehouse_lock import warehouse_step

__all__ = ["Registration", "champion_assignments", "champion_at", "floors", "load_version", "register_model"]

log = logging.getLogger("segflow.registry")

SEGMENTATION_FILE = "segmentation.joblib"
CLASSIFIER_FILE = "classifier.joblib"


@dataclass
class Registration:
    version: str
    as_of: datetime
    promoted: bool
    status: str
    reason: str
    champion: str | None
    champion_before: str | None = None
    metrics: dict = field(default_factory=dict)
    fallback_rows: int = 0
    search_seconds: float | None = None  # wall time: reported, not stored (a re-run must give the same row)

    def as_dict(self) -> dict:
        keep = ("silhouette", "stability_vs_champion", "min_segment_share", "classifier_macro_f1", "k",
                "customers", "classifier")
        return {"version": self.version, "as_of": self.as_of.isoformat(), "promoted": self.promoted,
                "status": self.status, "reason": self.reason, "champion": self.champion,
                "champion_before": self.champion_before, "fallback_rows": self.fallback_rows,
                "search_seconds": self.search_seconds,
                "metrics": {k: self.metrics.get(k) for k in keep}}


def floors(settings: Settings) -> dict[str, float]:
    """The promotion floors in force, by the metric each applies to."""
    return {"silhouette": settings.registry_min_silhouette, "stability_vs_champion": settings.registry_min_stability,
            "min_segment_share": settings.registry_min_segment_share,
            "classifier_macro_f1": settings.registry_min_macro_f1}


def model_dir(settings: Settings, version: str) -> Path:
    return settings.home / "models" / version


def champion_at(con, as_of: datetime) -> dict | None:
    """The champion in force at ``as_of``: the latest promoted version registered for a week up to it."""
    if not table_exists(con, "ml", "model_registry"):
        return None
    rows = con.execute("select version, as_of, params, artifact_dir from ml.model_registry where promoted "
                       "and as_of <= ? order by as_of desc limit 1", [as_of]).fetchall()
    if not rows:
        return None
    version, week, params, artifact_dir = rows[0]
    return {"version": version, "as_of": week, "features": json.loads(params)["features"],
            "artifact_dir": artifact_dir}


def load_version(settings: Settings, version: str, artifact_dir: str | None = None) -> dict:
    """``{"features", "segmentation", "classifier"}`` of a stored version; NotReady when its files are gone."""
    import joblib

    folder = Path(artifact_dir) if artifact_dir else model_dir(settings, version)
    try:
        segmentation = joblib.load(folder / SEGMENTATION_FILE)
        classifier = joblib.load(folder / CLASSIFIER_FILE)
    except FileNotFoundError as exc:
        raise NotReady(f"model version {version}: artifact {exc.filename} is missing") from None
    return {"features": segmentation["features"], "segmentation": segmentation["model"],
            "classifier": classifier["model"]}


def _training_rows(con, as_of: datetime, run_id: str) -> pd.DataFrame:
    return con.execute("select s.*, a.segment_id from ml.feature_snapshots s join ml.segment_assignments a "
                       "on a.customer_id = s.customer_id and a.as_of = s.as_of where s.as_of = ? and a.run_id = ? "
                       "order by s.customer_id", [as_of, run_id]).df()


def _classifier(settings: Settings, X, y, features):
    from ml.assignment import default_grids, train_assigner

    try:
        return train_assigner(X, y, features, test_size=settings.assign_holdout_share,
                              importance_repeats=settings.assign_importance_repeats,
                              random_state=settings.random_seed, cv=settings.assign_cv_folds,
                              grid_sample=settings.assign_grid_sample,
                              param_grids=default_grids(settings.assign_ensemble_size))
    except ValueError as exc:
        log.warning("assignment classifier not trained: %s", exc)
        return None, str(exc)


@warehouse_step("segment: register model")
def register_model(settings: Settings | None = None, as_of: datetime | None = None) -> Registration:
    """Store the week's model version, decide its promotion against the floors, record it (module docstring)."""
    import joblib
    from sklearn.metrics import adjusted_rand_score

    from ml.features import feature_matrix
    from ml.segment_model import CentroidSegmentModel, promotion_failures

    settings = settings or get_settings()
    with connect(settings, read_only=True) as con:
        as_of = resolve_as_of(con, "model_runs", to_naive_utc(as_of),
                              "No segmentation run yet: run `segflow segment` first.")
        run = con.execute("select run_id, status, algorithm, k, silhouette, scores, params, features, "
                          "data_fingerprint from ml.model_runs where as_of = ?", [as_of]).fetchall()
        if not run:
            raise NotReady(f"No segmentation run as of {as_of}: run `segflow segment` for that week first.")
        run_id, run_status, algorithm, k, silhouette, scores, run_params, run_features, fingerprint = run[0]
        rows = _training_rows(con, as_of, run_id)
        champion = champion_at(con, as_of - pd.Timedelta(microseconds=1))
        build_seq = (con.execute("select max(build_seq) from meta.build_state where as_of = ? and status = 'success'",
                                 [as_of]).fetchone()[0] if table_exists(con, "meta", "build_state") else None)
    if rows.empty:
        raise NotReady(f"No feature snapshot / assignments for run {run_id}: re-run `segflow segment` for {as_of}.")
    features, run_params = json.loads(run_features), json.loads(run_params or "{}")
    X = feature_matrix(rows, features)
    y = rows["segment_id"].to_numpy(dtype=object).astype(str)
    log_features = set(run_params.get("log_features", settings.log_features))
    segmentation = CentroidSegmentModel(log_columns=tuple(i for i, c in enumerate(features) if c in log_features),
                                        flag_weight=run_params.get("missing_flag_weight",
                                                                   settings.missing_flag_weight)).fit(X, y)
    classifier, report = _classifier(settings, X, y, features)
    chosen = json.loads(scores or "{}").get(f"{algorithm}:{k}", {})
    shares = pd.Series(y).value_counts(normalize=True)
    metrics = {"silhouette": silhouette, "bootstrap_stability": chosen.get("stability"),
               "stability_vs_champion": None, "agreement_vs_champion": None,
               "min_segment_share": round(float(shares.min()), 5), "k": int(shares.size), "customers": len(y),
               "centroid_reproduction": round(float((segmentation.predict(X) == y).mean()), 5),
               "classifier_macro_f1": None, "model_run_status": run_status}
    if classifier is not None:
        metrics.update(classifier_macro_f1=report.holdout_macro_f1, classifier_accuracy=report.holdout_accuracy,
                       classifier=report.chosen, classifier_cv_macro_f1=report.cv_macro_f1,
                       per_class_f1=report.per_class_f1, permutation_importance=report.importance)
    else:
        metrics["classifier_error"] = report
    old = None
    if champion is not None:
        old = load_version(settings, champion["version"], champion["artifact_dir"])
        if old["features"] == features:
            theirs = old["segmentation"].predict(X)
            metrics["stability_vs_champion"] = round(float(adjusted_rand_score(theirs, y)), 5)
            metrics["agreement_vs_champion"] = round(float((theirs == y).mean()), 5)
    failures = promotion_failures(metrics, floors(settings))
    promoted = not failures
    before = champion["version"] if champion else None
    if promoted:
        reason = (f"every floor holds: replaces champion {before}" if before else "first version: every floor holds")
        if before and metrics["stability_vs_champion"] is None:  # a deliberate feature change must be promotable
            reason += " (stability not measured: the champion uses other features)"
    else:
        reason = "; ".join(failures) + (f": champion {before} stays" if before else ": no champion yet")
    folder = model_dir(settings, run_id)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    joblib.dump({"version": run_id, "features": features, "model": segmentation}, tmp / SEGMENTATION_FILE)
    if classifier is not None:
        joblib.dump({"version": run_id, "features": features, "model": classifier}, tmp / CLASSIFIER_FILE)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    fallback = pd.DataFrame()
    if not promoted and old is not None and old["features"] == features:
        fallback = _scored(old["classifier"], X, rows["customer_id"], as_of, before, "champion_fallback", None)
    params = {"features": features, "algorithm": algorithm, "k": int(k), "log_features": sorted(log_features),
              "classifier": {"chosen": getattr(classifier, "chosen_", None),
                             "params": getattr(classifier, "best_params_", None),
                             "grids": _grids(settings), "cv_folds": settings.assign_cv_folds,
                             "grid_sample": settings.assign_grid_sample,
                             "holdout_share": settings.assign_holdout_share}}
    _write(settings, as_of, [run_id, as_of, run_id, datetime.now(), code_version(), json.dumps(library_versions()),
                             fingerprint, build_seq, json.dumps(params, default=str), json.dumps(metrics, default=str),
                             json.dumps(floors(settings)), promoted, "promoted" if promoted else "rejected", reason,
                             before, str(folder)], fallback)
    result = Registration(version=run_id, as_of=as_of, promoted=promoted, status="champion" if promoted else "rejected",
                          reason=reason, champion=run_id if promoted else before, champion_before=before,
                          metrics=metrics, fallback_rows=len(fallback),
                          search_seconds=report.search_seconds if classifier is not None else None)
    log.info("model %s: %s (%s)", run_id, result.status, reason)
    if not promoted:
        _alert(result, settings)
    return result


def _grids(settings: Settings) -> dict:
    from ml.assignment import default_grids

    return default_grids(settings.assign_ensemble_size)


def _scored(classifier, X, customers: pd.Series, as_of, version, reason, reference_as_of) -> pd.DataFrame:
    proba = classifier.predict_proba(X)
    best = proba.argmax(axis=1)
    return pd.DataFrame({"as_of": as_of, "customer_id": customers.to_numpy(),
                         "segment_id": classifier.classes_[best].astype(str),
                         "probability": np.round(proba[np.arange(len(best)), best], 6), "model_version": version,
                         "reason": reason, "reference_as_of": reference_as_of, "created_at": datetime.now()})


def _write(settings: Settings, as_of: datetime, row: list, fallback: pd.DataFrame) -> None:
    with connect(settings) as con:
        ensure_schema(con)
        con.execute("begin transaction")
        con.execute("delete from ml.model_registry where as_of = ? or version = ?", [as_of, row[0]])
        con.execute(f"insert into ml.model_registry values ({', '.join('?' * len(row))})", row)
        # status follows from the promotions: the latest promoted version is the champion
        con.execute("update ml.model_registry set status = case when not promoted then 'rejected' "
                    "when as_of = (select max(as_of) from ml.model_registry where promoted) then 'champion' "
                    "else 'retired' end")
        insert_frame(con, "ml.segment_assignments_daily", fallback, "as_of = ? and reason = 'champion_fallback'",
                     [as_of])
        con.execute("commit")


def _alert(result: Registration, settings: Settings) -> None:
    from segflow.alerts import send_alert

    text = f"segflow: model {result.version} (week {result.as_of:%Y-%m-%d}) not promoted: {result.reason}"
    log.warning("%s", text)
    send_alert({"source": "segflow", "event": "model_rejected", "as_of": result.as_of.isoformat(),
                "version": result.version, "champion": result.champion, "reason": result.reason, "text": text},
               settings)


def champion_assignments(con, as_of: datetime) -> tuple[str, pd.DataFrame] | None:
    """For publication: when the week's own model version was rejected and a champion scored the week's
    customers instead, ``(champion version, customer_id / segment_id / segment_name / as_of frame)``; else None
    (publish the week's own segments)."""
    if not table_exists(con, "ml", "model_registry"):
        return None
    row = con.execute("select promoted from ml.model_registry where as_of = ?", [as_of]).fetchall()
    if not row or row[0][0]:
        return None
    frame = con.execute(
        "select d.customer_id, d.segment_id, s.segment_name, d.as_of, d.model_version from "
        "ml.segment_assignments_daily d left join ml.segments s on s.run_id = d.model_version and "
        "s.segment_id = d.segment_id where d.as_of = ? and d.reason = 'champion_fallback' order by d.customer_id",
        [as_of]).df()
    if frame.empty:
        return None
    return str(frame["model_version"].iloc[0]), frame.drop(columns="model_version")


def list_versions(settings: Settings | None = None) -> list[dict]:
    """Every registered version, newest first: status, reason and the floor metrics (``segflow models list``)."""
    settings = settings or get_settings()
    with connect(settings, read_only=True) as con:
        if not table_exists(con, "ml", "model_registry"):
            return []
        rows = con.execute("select version, as_of, status, reason, metrics from ml.model_registry "
                           "order by as_of desc").fetchall()
    keep = ("silhouette", "stability_vs_champion", "min_segment_share", "classifier_macro_f1", "classifier", "k")
    return [{"version": v, "as_of": a, "status": s, "reason": r, **{k: json.loads(m).get(k) for k in keep}}
            for v, a, s, r, m in rows]
