"""The status artifact of a published week: what the Segments page in the Airflow UI shows.

Written by :func:`segflow.jobs.publish_segments.publish` once a week's segments are exported (the warehouse
lock is already held there), as ``$SEGFLOW_HOME/exports/status/status_<as-of>.json`` plus ``latest.json``,
which, like the segment export, only moves forward. Readers (the UI plugin, ``segflow.ui``) never open the
warehouse: they read these files.
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path

from segflow.settings import Settings
from segflow.warehouse import connect, table_exists

SCHEMA_VERSION = 1
TOP_DRIFT_FEATURES = 5


def status_dir(settings: Settings) -> Path:
    return settings.exports_dir / "status"


def latest_path(settings: Settings) -> Path:
    return status_dir(settings) / "latest.json"


def _num(value, digits: int = 4) -> float | None:
    """A rounded float, or None for a missing or non-finite value (the artifact is strict JSON)."""
    return round(float(value), digits) if value is not None and math.isfinite(value) else None


def _iso(value) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else (str(value) if value is not None else None)


def _model(con, run_id: str) -> dict:
    row = con.execute("select run_id, as_of, status, algorithm, k, silhouette, customer_count, code_version, "
                      "data_fingerprint, previous_run_id, created_at from ml.model_runs where run_id = ?",
                      [run_id]).fetchall()[0]
    keys = ("run_id", "as_of", "status", "algorithm", "k", "silhouette", "customers", "code_version",
            "data_fingerprint", "previous_run_id", "created_at")
    out = {k: _iso(v) if isinstance(v, datetime) else v for k, v in zip(keys, row, strict=True)}
    out["silhouette"] = _num(out["silhouette"])
    return out


def _segments(con, run_id: str, weeks: list[datetime]) -> list[dict]:
    rows = con.execute("select segment_id, segment_name, name_rule, customer_count, share, is_new from ml.segments "
                       "where run_id = ? order by segment_id", [run_id]).fetchall()
    # the size of each segment id in each of the trend's weeks (accepted runs only); None = the id did not exist
    history = {(sid, as_of): size for sid, as_of, size in con.execute(
        "select s.segment_id, s.as_of, s.customer_count from ml.segments s join ml.model_runs r using (run_id) "
        "where r.status = 'accepted' and s.as_of >= ? and s.as_of <= ?", [weeks[0], weeks[-1]]).fetchall()}
    return [{"segment_id": sid, "name": name, "rule": rule, "size": int(size), "share": _num(share),
             "is_new": bool(is_new), "trend": [history.get((sid, w)) for w in weeks]}
            for sid, name, rule, size, share, is_new in rows]


def _drift(con, as_of: datetime) -> dict | None:
    if not table_exists(con, "ml", "drift_runs"):
        return None
    row = con.execute("select verdict, max_psi, reference_as_of, drifted_features, reasons, max_centroid_shift, "
                      "silhouette_drop from ml.drift_runs "
                      "where as_of = ? and coalesce(run_kind, 'weekly') = 'weekly' order by created_at desc "
                      "limit 1", [as_of]).fetchall()
    if not row:
        return None
    verdict, max_psi, reference, drifted, reasons, shift, silhouette_drop = row[0]
    # the population tests (against the fixed baseline and against last week), largest effect first
    top = con.execute("select feature, comparison, psi, verdict from ml.drift_metrics where as_of = ? "
                      "and coalesce(scope, 'population') = 'population' and psi is not null "
                      "order by psi desc, feature limit ?", [as_of, TOP_DRIFT_FEATURES]).fetchall()
    return {"verdict": verdict, "max_psi": _num(max_psi),
            "reference_as_of": _iso(reference), "drifted_features": json.loads(drifted) if drifted else [],
            "reasons": (json.loads(reasons) if reasons else [])[:10], "max_centroid_shift": _num(shift),
            "silhouette_drop": _num(silhouette_drop),
            "top_features": [{"feature": f, "comparison": c, "psi": _num(p), "verdict": v} for f, c, p, v in top]}


def _data_quality(con, as_of: datetime) -> dict | None:
    rows = con.execute("select suite, success, failed from meta.dq_results where as_of = ? order by suite",
                       [as_of]).fetchall()
    if not rows:
        return None
    out = {"verdict": "pass" if all(r[1] for r in rows) else "fail",
           "suites": [{"suite": s, "success": bool(ok), "failed": int(failed or 0)} for s, ok, failed in rows]}
    if table_exists(con, "meta", "dq_history"):
        hist = con.execute("select checks_passed, checks_failed, quarantine_rate from meta.dq_history "
                           "where as_of = ? order by validated_at desc limit 1", [as_of]).fetchall()
        if hist:
            out.update(checks_passed=hist[0][0], checks_failed=hist[0][1], quarantine_rate=_num(hist[0][2]))
    return out


def _anomalies(con, as_of: datetime) -> dict | None:
    if not table_exists(con, "ml", "anomaly_runs"):
        return None
    row = con.execute("select customer_count, flagged_count, excluded_from_segments from ml.anomaly_runs "
                      "where as_of = ? order by created_at desc limit 1", [as_of]).fetchall()
    if not row:
        return None
    return {"customers_scored": int(row[0][0] or 0), "flagged": int(row[0][1] or 0),
            "excluded_from_segments": bool(row[0][2])}


def build_status(settings: Settings, con, as_of: datetime, run_id: str, export_path: str, rows: int) -> dict:
    """The status record of one published week, read from an open warehouse connection."""
    weeks = [w for (w,) in con.execute(
        "select distinct as_of from ml.model_runs where status = 'accepted' and as_of <= ? "
        "order by as_of desc limit ?", [as_of, settings.status_trend_weeks]).fetchall()][::-1]
    transitions = con.execute(
        "select from_segment_id, to_segment_id, customers from ml.segment_transitions where run_id = ? "
        "order by from_segment_id nulls first, to_segment_id nulls first", [run_id]).fetchall()
    return {
        "schema_version": SCHEMA_VERSION,
        "as_of": _iso(as_of),
        "written_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "model": _model(con, run_id),
        "weeks": [_iso(w) for w in weeks],
        "segments": _segments(con, run_id, weeks),
        "transitions": [{"from": f, "to": t, "customers": int(n)} for f, t, n in transitions],
        "drift": _drift(con, as_of),
        "data_quality": _data_quality(con, as_of),
        "anomalies": _anomalies(con, as_of),
        "export": {"path": export_path, "rows": rows},
    }


def _write_atomic(path: Path, record: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=1, allow_nan=False))
    tmp.replace(path)  # a reader sees the old file or the new one, never half of one


def write_status(settings: Settings, as_of: datetime, run_id: str, export_path: str, rows: int) -> Path:
    """Write the week's status file; move ``latest.json`` to it unless a later week is already there.

    Called by the publish step, which holds the warehouse lock; returns the week's file."""
    with connect(settings, read_only=True) as con:
        record = build_status(settings, con, as_of, run_id, export_path, rows)
    folder = status_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"status_{as_of:%Y-%m-%d}.json"
    _write_atomic(target, record)
    latest = latest_path(settings)
    current = json.loads(latest.read_text()).get("as_of") if latest.is_file() else None
    if current is None or record["as_of"] >= current:  # re-publishing an older week never moves `latest` back
        _write_atomic(latest, record)
    return target
