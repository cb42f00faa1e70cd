"""Weekly segmentation: recluster customer_features, keep segment ids stable, store the run.

Everything is keyed by ``as_of`` (the ELT's data_interval_end): re-running a week deletes and rewrites
exactly that week's rows, and "the previous run" is always the latest accepted run *before* it, so a
re-run gives identical tables. Drift is :mod:`segflow.jobs.drift`, publication :mod:`segflow.jobs.publish_segments`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from segflow.ddl import ensure_schema  # the ml tables live with the other warehouse DDL
from segflow.errors import NotReady
from segflow.jobs.anomalies import exclude_flagged
from segflow.jobs.ml_common import code_version, library_versions, to_naive_utc
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect, table_exists
from segflow.warehouse_lock import warehouse_step

__all__ = ["SegmentRun", "recluster", "to_naive_utc"]


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
    frame, anomalies_excluded = exclude_flagged(settings, frame, as_of)  # flagged customers (bots) stay out
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
    params["anomalies_excluded"] = anomalies_excluded  # None: no anomaly run for the week (or exclusion off)
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
             json.dumps(columns), n, fingerprint, code_version(), json.dumps(library_versions()),
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
