"""Weekly segmentation: recluster customer_features, keep segment ids stable, check drift, publish.

Everything is keyed by ``as_of`` (the ELT's data_interval_end): re-running a week deletes and rewrites
exactly that week's rows, and "the previous run" is always the latest accepted run *before* it, so a
re-run gives identical tables.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from segflow.ddl import ensure_schema  # the ml tables live with the other warehouse DDL
from segflow.errors import GateFailed, NotReady
from segflow.settings import PROJECT_ROOT, Settings, get_settings
from segflow.warehouse import connect, table_exists
from segflow.warehouse_lock import warehouse_step


def to_naive_utc(value: datetime | None) -> datetime | None:
    """Airflow hands out aware datetimes; the warehouse stores naive UTC."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def code_version() -> str:
    try:
        out = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import version

    return f"segflow-{version('segflow')}"


def _library_versions() -> dict[str, str]:
    import sklearn

    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__, "numpy": np.__version__,
            "pandas": pd.__version__}


@dataclass
class SegmentRun:
    run_id: str
    as_of: datetime
    status: str
    k: int
    silhouette: float
    customers: int
    segments: list[dict] = field(default_factory=list)
    previous_run_id: str | None = None

    def as_dict(self) -> dict:
        return {"run_id": self.run_id, "as_of": self.as_of.isoformat(), "status": self.status, "k": self.k,
                "silhouette": round(self.silhouette, 4), "customers": self.customers,
                "segments": self.segments, "previous_run_id": self.previous_run_id}


def _resolve_as_of(con, table: str, as_of: datetime | None, missing: str) -> datetime:
    """``as_of`` if given, else the latest week in ``ml.<table>``; NotReady when that table holds no week."""
    if not table_exists(con, "ml", table):
        raise NotReady(missing)
    if as_of is None:
        as_of = con.execute(f"select max(as_of) from ml.{table}").fetchone()[0]
        if as_of is None:  # the table exists (segflow.ddl creates it) but no run wrote to it yet
            raise NotReady(missing)
    return as_of


def _features_frame(settings: Settings, as_of: datetime | None) -> tuple[pd.DataFrame, datetime]:
    with connect(settings, read_only=True) as con:
        if not table_exists(con, "marts", "customer_features"):
            raise NotReady("marts.customer_features does not exist: run `segflow build` first.")
        frame = con.execute("select * from marts.customer_features order by customer_id").df()
    if frame.empty:
        raise NotReady("marts.customer_features is empty: nothing to segment.")
    built_as_of = pd.Timestamp(frame["as_of"].iloc[0]).to_pydatetime()
    if as_of is not None and built_as_of != as_of:
        raise NotReady(f"customer_features is built as of {built_as_of:%Y-%m-%d %H:%M}, not {as_of:%Y-%m-%d %H:%M}:"
                       " run the ELT (segflow run / DAG segflow_elt) for that interval first.")
    return frame, built_as_of


def _previous_run(con, as_of: datetime) -> tuple[str | None, dict[str, list[float]]]:
    row = con.execute("select run_id from ml.model_runs where as_of < ? and status = 'accepted' "
                      "order by as_of desc limit 1", [as_of]).fetchall()
    if not row:
        return None, {}
    run_id = row[0][0]
    centroids = {sid: json.loads(c) for sid, c in con.execute(
        "select segment_id, log_centroid from ml.segments where run_id = ?", [run_id]).fetchall()}
    return run_id, centroids


@warehouse_step("segment: recluster")
def recluster(settings: Settings | None = None, as_of: datetime | None = None) -> SegmentRun:
    """Cluster customer_features (k by silhouette), match ids to the previous run, store everything."""
    from ml.features import feature_matrix, make_preprocessor
    from ml.identity import match_segments, name_segments
    from ml.model_selection import select_k

    settings = settings or get_settings()
    frame, as_of = _features_frame(settings, to_naive_utc(as_of))
    columns = list(settings.features)
    raw = feature_matrix(frame, columns)
    preprocessor = make_preprocessor()
    X = preprocessor.fit_transform(raw)
    selection = select_k(X, range(settings.k_min, settings.k_max + 1), random_state=settings.random_seed,
                         sample_size=settings.silhouette_sample)
    labels = selection.labels
    log_space = preprocessor[:-1].transform(raw)  # imputed + signed log, before scaling
    scaler = preprocessor[-1]

    with connect(settings, read_only=True) as con:
        previous_run_id, previous = (_previous_run(con, as_of) if table_exists(con, "ml", "model_runs")
                                     else (None, {}))
    previous_scaled = {sid: scaler.transform(np.asarray(c, dtype=float).reshape(1, -1))[0]
                       for sid, c in previous.items() if len(c) == len(columns)}
    segment_ids = match_segments(previous_scaled, selection.centroids,
                                 max_distance=settings.segment_match_max_distance)
    profiles = pd.DataFrame(raw, columns=columns).groupby(labels).mean().sort_index()
    names = name_segments(profiles, pd.DataFrame(raw, columns=columns).mean())

    fingerprint = hashlib.sha256(pd.util.hash_pandas_object(frame[["customer_id", *columns]], index=False)
                                 .values.tobytes()).hexdigest()
    run_id = f"seg-{as_of:%Y%m%d}-{fingerprint[:8]}"
    silhouette = float(selection.scores[selection.best_k])
    status = "accepted" if silhouette >= settings.min_silhouette else "rejected"
    n = len(frame)
    segments = []
    for cluster in range(selection.best_k):
        members = labels == cluster
        segments.append({
            "segment_id": segment_ids[cluster], "segment_name": names[cluster],
            "customer_count": int(members.sum()), "share": round(float(members.mean()), 4),
            "is_new": segment_ids[cluster] not in previous_scaled,
            "profile": {c: round(float(v), 3) for c, v in profiles.loc[cluster].items()},
            "log_centroid": log_space[members].mean(axis=0).tolist(),
        })
    segments.sort(key=lambda s: s["segment_id"])
    params = {"algorithm": "kmeans", "k_range": [settings.k_min, settings.k_max],
              "random_state": settings.random_seed, "silhouette_sample": settings.silhouette_sample,
              "preprocessing": "median impute -> signed log1p -> standard scale",
              "match_max_distance": settings.segment_match_max_distance}
    snapshot = frame[["customer_id", *columns, *[c for c in ("sessions_7d", "orders_28d", "revenue_28d")
                                                  if c not in columns]]].copy()
    snapshot.insert(0, "as_of", as_of)
    assignments = pd.DataFrame({"as_of": as_of, "run_id": run_id, "customer_id": frame["customer_id"],
                                "segment_id": [segment_ids[c] for c in labels]})
    with connect(settings) as con:
        ensure_schema(con)
        con.execute("begin transaction")
        for table in ("model_runs", "segments", "segment_assignments"):
            con.execute(f"delete from ml.{table} where as_of = ?", [as_of])
        con.execute(
            "insert into ml.model_runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, as_of, status, "kmeans", selection.best_k, silhouette,
             json.dumps({str(k): round(v, 5) for k, v in selection.scores.items()}), json.dumps(params),
             json.dumps(columns), n, fingerprint, code_version(), json.dumps(_library_versions()),
             previous_run_id, datetime.now()],
        )
        con.executemany("insert into ml.segments values (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            (as_of, run_id, s["segment_id"], s["segment_name"], s["customer_count"], s["share"], s["is_new"],
             json.dumps(s["profile"]), json.dumps(s["log_centroid"])) for s in segments])
        con.register("_assignments", assignments)
        con.execute("insert into ml.segment_assignments select * from _assignments")
        # the feature snapshot is the exact training data of this run (drift reference for the next one)
        con.register("_snapshot", snapshot)
        con.execute("create table if not exists ml.feature_snapshots as select * from _snapshot limit 0")
        con.execute("delete from ml.feature_snapshots where as_of = ?", [as_of])
        con.execute("insert into ml.feature_snapshots by name select * from _snapshot")
        con.execute("commit")
    for s in segments:
        s.pop("log_centroid")
    return SegmentRun(run_id=run_id, as_of=as_of, status=status, k=selection.best_k, silhouette=silhouette,
                      customers=n, segments=segments, previous_run_id=previous_run_id)


@dataclass
class DriftResult:
    as_of: datetime
    reference_as_of: datetime | None
    verdict: str
    max_psi: float | None
    features: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"as_of": self.as_of.isoformat(),
                "reference_as_of": self.reference_as_of.isoformat() if self.reference_as_of else None,
                "verdict": self.verdict, "max_psi": self.max_psi, "features": self.features}


@warehouse_step("segment: drift")
def check_drift(settings: Settings | None = None, as_of: datetime | None = None) -> DriftResult:
    """PSI of this week's feature snapshot against the previous week's, per feature; stored in ml.drift_*."""
    from ml.drift import drift_report, overall_verdict

    settings = settings or get_settings()
    as_of = to_naive_utc(as_of)
    with connect(settings, read_only=True) as con:
        as_of = _resolve_as_of(con, "feature_snapshots", as_of,
                               "No feature snapshot yet: run `segflow segment` first.")
        current = con.execute("select * from ml.feature_snapshots where as_of = ?", [as_of]).df()
        if current.empty:
            raise NotReady(f"No feature snapshot as of {as_of}: run `segflow segment` for that week first.")
        ref_row = con.execute("select max(as_of) from ml.feature_snapshots where as_of < ?", [as_of]).fetchone()
        reference_as_of = ref_row[0] if ref_row else None
        reference = (con.execute("select * from ml.feature_snapshots where as_of = ?", [reference_as_of]).df()
                     if reference_as_of else None)
    columns = [c for c in current.columns if c not in ("as_of", "customer_id")]
    if reference is None or reference.empty:
        result = DriftResult(as_of=as_of, reference_as_of=None, verdict="no_reference", max_psi=None)
        report = None
    else:
        report = drift_report(reference, current, columns, bins=settings.psi_bins, warn=settings.psi_warn,
                              alert=settings.psi_alert)
        result = DriftResult(as_of=as_of, reference_as_of=reference_as_of, verdict=overall_verdict(report),
                             max_psi=round(float(report["psi"].max()), 4),
                             features=[{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
                                       for r in report.to_dict("records")])
    drifted = [f["feature"] for f in result.features if f["verdict"] == "drift"]
    with connect(settings) as con:
        ensure_schema(con)
        con.execute("begin transaction")
        con.execute("delete from ml.drift_runs where as_of = ?", [as_of])
        con.execute("delete from ml.drift_metrics where as_of = ?", [as_of])
        con.execute("insert into ml.drift_runs values (?, ?, ?, ?, ?, ?)",
                    [as_of, reference_as_of, result.verdict, result.max_psi, json.dumps(drifted), datetime.now()])
        if report is not None:
            con.executemany("insert into ml.drift_metrics values (?, ?, ?, ?, ?, ?, ?)", [
                (as_of, reference_as_of, r["feature"], float(r["psi"]), r["verdict"], float(r["reference_mean"]),
                 float(r["current_mean"])) for r in report.to_dict("records")])
        con.execute("commit")
    return result


@dataclass
class Publication:
    as_of: datetime
    run_id: str
    path: str
    rows: int

    def as_dict(self) -> dict:
        return {"as_of": self.as_of.isoformat(), "run_id": self.run_id, "path": self.path, "rows": self.rows}


@warehouse_step("segment: publish")
def publish(settings: Settings | None = None, as_of: datetime | None = None) -> Publication:
    """Export the week's segments, only if its data gate passed and its model was accepted."""
    settings = settings or get_settings()
    as_of = to_naive_utc(as_of)
    with connect(settings, read_only=True) as con:
        as_of = _resolve_as_of(con, "model_runs", as_of, "No segmentation run yet: run `segflow segment` first.")
        run = con.execute("select run_id, status, silhouette from ml.model_runs where as_of = ?", [as_of]).fetchall()
        gate = (con.execute("select bool_and(success), count(*) from meta.dq_results where as_of = ?",
                            [as_of]).fetchone() if table_exists(con, "meta", "dq_results") else (None, 0))
        last_good = (con.execute("select max(as_of) from ml.publications").fetchone()[0]
                     if table_exists(con, "ml", "publications") else None)
        keep = f" The last good segments (as of {last_good}) stay published." if last_good else ""
        if not run:
            raise NotReady(f"No segmentation run as of {as_of}: run `segflow segment` first.")
        run_id, status, silhouette = run[0]
        if not gate[1]:
            raise GateFailed(f"No data-quality result as of {as_of}: the ELT gate has not run.{keep}")
        if not gate[0]:
            raise GateFailed(f"Data-quality gate failed as of {as_of}: not publishing.{keep}")
        if status != "accepted":
            raise GateFailed(f"Model run {run_id} was rejected (silhouette {silhouette:.3f} < "
                             f"{settings.min_silhouette}): not publishing.{keep}")
        frame = con.execute(
            "select a.customer_id, a.segment_id, s.segment_name, a.as_of from ml.segment_assignments a "
            "join ml.segments s on s.run_id = a.run_id and s.segment_id = a.segment_id "
            "where a.run_id = ? order by a.customer_id", [run_id]).df()
    out_dir = settings.exports_dir / "segments"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"segments_{as_of:%Y-%m-%d}.csv"
    tmp = target.with_suffix(".csv.tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(target)  # atomic: a reader never sees half a file
    if last_good is None or as_of >= last_good:  # re-publishing an older week never moves `latest` back
        shutil.copyfile(target, out_dir / "latest.csv.tmp")
        (out_dir / "latest.csv.tmp").replace(out_dir / "latest.csv")
    with connect(settings) as con:
        ensure_schema(con)
        con.execute("begin transaction")
        con.execute("delete from ml.publications where as_of = ?", [as_of])
        con.execute("insert into ml.publications values (?, ?, ?, ?, ?)",
                    [as_of, run_id, str(target), len(frame), datetime.now()])
        con.execute("commit")
    return Publication(as_of=as_of, run_id=run_id, path=str(target), rows=len(frame))
