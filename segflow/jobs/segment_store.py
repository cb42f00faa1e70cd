"""The recluster job's second half: ids, lineage and names for the fitted segments, then one transaction that
replaces the week's rows in ml.model_runs, ml.segments, ml.segment_assignments, ml.segment_lineage,
ml.segment_transitions, ml.rule_segments, ml.rule_segment_members and ml.feature_snapshots."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import numpy as np
import pandas as pd

from segflow.ddl import ensure_schema
from segflow.jobs.ml_common import code_version, library_versions
from segflow.settings import Settings
from segflow.warehouse import connect

__all__ = ["identities_and_names", "store_run"]

_WEEK_TABLES = ("model_runs", "segments", "segment_assignments", "segment_lineage", "segment_transitions",
                "rule_segments", "rule_segment_members")


def identities_and_names(fit, frame: pd.DataFrame, columns: list[str], state: dict, settings: Settings):
    """Segment ids + lineage (:func:`ml.lineage.track_segments`) and unique names (:mod:`ml.identity`)."""
    from ml.features import feature_matrix
    from ml.identity import assign_names, propose_names
    from ml.lineage import track_segments

    members = pd.Series(fit.labels, index=frame["customer_id"].to_numpy())
    pre = fit.preprocessor
    mean, scale = state["anchor"] if state["anchor"] is not None else (pre.mean_, pre.scale_)
    lineage = track_segments(
        state["members"], state["centroids"], members, fit.log_centroids, anchor_mean=mean, anchor_scale=scale,
        used_ids=state["used_ids"], max_distance=settings.segment_match_max_distance,
        min_overlap=settings.lineage_min_overlap, event_share=settings.lineage_event_share)
    raw = pd.DataFrame(feature_matrix(frame, columns), columns=columns)
    profiles = raw.groupby(fit.labels).mean().sort_index()
    names = assign_names(lineage.ids, propose_names(profiles, raw.mean()), profiles, state["names"])
    return lineage, names


def store_run(settings: Settings, as_of: datetime, frame: pd.DataFrame, columns: list[str], raw: np.ndarray,
              fit, lineage, names, state: dict, rules: list, anomalies_excluded: int | None = None):
    """Persist the run (idempotent per as_of) and return its :class:`segflow.jobs.segment.SegmentRun`."""
    from ml.rules import evaluate_rules
    from segflow.errors import InputError
    from segflow.jobs.segment import SegmentRun

    fingerprint = hashlib.sha256(pd.util.hash_pandas_object(frame[["customer_id", *columns]], index=False)
                                 .values.tobytes()).hexdigest()
    run_id = f"seg-{as_of:%Y%m%d}-{fingerprint[:8]}"
    status = "accepted" if fit.silhouette >= settings.min_silhouette else "rejected"
    labels, ids = fit.labels, lineage.ids
    profiles = pd.DataFrame(raw, columns=columns).groupby(labels).mean().sort_index()
    segments = []
    for cluster in range(fit.k):
        is_member = labels == cluster
        segments.append({
            "segment_id": ids[cluster], "segment_name": names[cluster][0], "name_rule": names[cluster][1],
            "customer_count": int(is_member.sum()), "share": round(float(is_member.mean()), 4),
            "is_new": ids[cluster] not in state["centroids"],
            "profile": {c: (None if pd.isna(v) else round(float(v), 3)) for c, v in profiles.loc[cluster].items()},
            "log_centroid": fit.log_centroids[cluster].tolist()})
    segments.sort(key=lambda s: s["segment_id"])
    try:
        rule_members = evaluate_rules(rules, frame)
    except KeyError as exc:
        raise InputError(str(exc.args[0])) from exc
    choice = fit.choice
    params = {"algorithm": choice.algorithm, "k_range": [settings.k_min, settings.k_max],
              "algorithms": list(settings.segment_algorithms), "random_state": settings.random_seed,
              "selection_sample": settings.selection_sample, "bootstrap_runs": settings.bootstrap_runs,
              "min_segment_share": settings.min_segment_share, "min_stability": settings.min_stability,
              "selection_tolerance": settings.selection_tolerance, "selection_reason": choice.reason,
              "knee_k": choice.knee_k, "merged_segments": fit.merged,
              "merge_distance": settings.segment_merge_distance, "log_features": list(settings.log_features),
              "missing_flag_weight": settings.missing_flag_weight,
              "preprocessing": "signed log1p (log_features, anomalies_excluded: int | None = None) -> median impute -> standard scale + missing flags",
              "match_max_distance": settings.segment_match_max_distance,
              "lineage_min_overlap": settings.lineage_min_overlap, "lineage_event_share": settings.lineage_event_share,
              "anchor": {"mean": fit.preprocessor.mean_.tolist(), "scale": fit.preprocessor.scale_.tolist()}}
    params["anomalies_excluded"] = anomalies_excluded  # None: no anomaly run for the week (or exclusion off)
    snapshot = frame[["customer_id", *columns, *[c for c in ("sessions_7d", "orders_28d", "revenue_28d")
                                                  if c not in columns]]].copy()
    snapshot.insert(0, "as_of", as_of)
    assignments = pd.DataFrame({"as_of": as_of, "run_id": run_id, "customer_id": frame["customer_id"],
                                "segment_id": [ids[c] for c in labels]})
    prev = state["run_id"]
    lineage_rows = pd.DataFrame([(as_of, run_id, prev, e["event"], e["segment_id"], e["related_segment_id"],
                                  e["overlap"], e["distance"]) for e in lineage.events],
                                columns=["as_of", "run_id", "previous_run_id", "event", "segment_id",
                                         "related_segment_id", "overlap", "centroid_distance"])
    transitions = lineage.transitions.assign(as_of=as_of, run_id=run_id, previous_run_id=prev)[
        ["as_of", "run_id", "previous_run_id", "from_segment_id", "to_segment_id", "customers"]]
    rule_rows = pd.DataFrame([(as_of, run_id, r.name, r.predicate, int(rule_members[r.name].sum())) for r in rules],
                             columns=["as_of", "run_id", "rule_name", "predicate", "customer_count"])
    rule_member_rows = pd.DataFrame(
        [(as_of, run_id, r.name, cid) for r in rules for cid in frame["customer_id"][rule_members[r.name]]],
        columns=["as_of", "run_id", "rule_name", "customer_id"])
    with connect(settings) as con:
        ensure_schema(con)
        con.execute("begin transaction")
        for table in _WEEK_TABLES:
            con.execute(f"delete from ml.{table} where as_of = ?", [as_of])
        con.execute(
            "insert into ml.model_runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, as_of, status, choice.algorithm, fit.k, fit.silhouette, json.dumps(choice.scores()),
             json.dumps(params), json.dumps(columns), len(frame), fingerprint, code_version(),
             json.dumps(library_versions()), prev, datetime.now()])
        con.executemany("insert into ml.segments by name select ? as as_of, ? as run_id, ? as segment_id, "
                        "? as segment_name, ? as customer_count, ? as share, ? as is_new, ? as profile, "
                        "? as log_centroid, ? as name_rule", [
                            (as_of, run_id, s["segment_id"], s["segment_name"], s["customer_count"], s["share"],
                             s["is_new"], json.dumps(s["profile"]), json.dumps(s["log_centroid"]), s["name_rule"])
                            for s in segments])
        for table, rows in (("segment_assignments", assignments), ("segment_lineage", lineage_rows),
                            ("segment_transitions", transitions), ("rule_segments", rule_rows),
                            ("rule_segment_members", rule_member_rows)):
            if len(rows):
                con.register("_rows", rows)
                con.execute(f"insert into ml.{table} by name select * from _rows")
                con.unregister("_rows")
        # the feature snapshot is the exact training data of this run (drift reference for the next one)
        con.register("_snapshot", snapshot)
        con.execute("create table if not exists ml.feature_snapshots as select * from _snapshot limit 0")
        for column in [c for c in snapshot.columns if c not in _snapshot_columns(con)]:
            con.execute(f'alter table ml.feature_snapshots add column "{column}" double')
        con.execute("delete from ml.feature_snapshots where as_of = ?", [as_of])
        con.execute("insert into ml.feature_snapshots by name select * from _snapshot")
        con.execute("commit")
    for s in segments:
        s.pop("log_centroid")
    return SegmentRun(run_id=run_id, as_of=as_of, status=status, k=fit.k, silhouette=fit.silhouette,
                      customers=len(frame), segments=segments, previous_run_id=prev, algorithm=choice.algorithm,
                      selection_reason=choice.reason, lineage=lineage.events,
                      rule_segments={r.name: int(rule_members[r.name].sum()) for r in rules})


def _snapshot_columns(con) -> set[str]:
    return {c for (c,) in con.execute("select column_name from duckdb_columns() where schema_name = 'ml' "
                                      "and table_name = 'feature_snapshots'").fetchall()}
