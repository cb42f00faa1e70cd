"""A read-only summary of the warehouse: what was loaded, built, validated, segmented and published.

``segflow status`` never waits for a writer. When the warehouse is free it reads it (and refreshes the
published snapshot); while a step holds it, it shows the snapshot the last step published when it finished
(``$SEGFLOW_HOME/artifacts/status.json``, written by :func:`segflow.warehouse_lock.warehouse_step`) and says who
holds the warehouse since when.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

from segflow.errors import NotReady, WarehouseLocked
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect, table_exists

LIVE_READ_TIMEOUT_SECONDS = 0.5
"""How long ``segflow status`` tries to read the warehouse itself before it shows the published snapshot."""

_JSON_COLUMNS = ("quarantine_by_reason", "missing_by_field")


def _scalar(con, sql: str, params: list | None = None):
    row = con.execute(sql, params or []).fetchone()
    return row[0] if row else None


def summary(settings: Settings | None = None, *, evaluation: bool = True, timeout: float | None = None) -> dict:
    """Everything ``segflow status`` shows, read from the warehouse (waits up to ``timeout`` for a writer)."""
    settings = settings or get_settings()
    out: dict = {"home": str(settings.home), "warehouse": str(settings.warehouse_path)}
    with connect(settings, read_only=True, timeout=timeout) as con:
        if table_exists(con, "meta", "load_manifest"):
            files, rows_in, loaded, rejected = con.execute(
                "select count(*), coalesce(sum(rows_in_file), 0), coalesce(sum(rows_loaded), 0), "
                "coalesce(sum(rows_rejected), 0) from meta.load_manifest").fetchone()
            out["load"] = {"files": files, "rows_in_files": rows_in, "rows_loaded": loaded,
                           "rows_rejected_at_load": rejected}
            unbalanced = con.execute(
                "select source || '/' || file_name, rows_in_file, rows_loaded, rows_rejected from meta.load_manifest "
                "where rows_in_file is distinct from rows_loaded + rows_rejected order by load_seq").fetchall()
            out["load"]["unbalanced_files"] = [
                f"{name}: {counted if counted is not None else 'uncounted'} records in the file, {loaded} loaded + "
                f"{rejected} rejected" for name, counted, loaded, rejected in unbalanced]
            has_damage = con.execute(
                "select count(*) from information_schema.columns where table_schema = 'meta' "
                "and table_name = 'load_manifest' and column_name = 'damage'").fetchall()[0][0]
            # a warehouse from before the column gets it from its next load (ensure_schema); status only reads
            out["load"]["damaged_files"] = [f"{name}: {damage}" for name, damage in con.execute(
                "select source || '/' || file_name, damage from meta.load_manifest where damage is not null "
                "order by load_seq").fetchall()] if has_damage else []
        if table_exists(con, "meta", "landing_entries"):
            out["landing"] = dict(con.execute(
                "select status, count(*) from meta.landing_entries group by 1 order by 1").fetchall())
            out["landing_problems"] = [
                f"{status}: {path}: {reason}" for status, path, reason in con.execute(
                    "select status, entry_path, reason from meta.landing_entries "
                    "where status in ('rejected', 'ignored', 'pending') order by status, entry_path").fetchall()]
        if table_exists(con, "marts", "fct_load_audit"):
            staged, quarantined, duplicates, unbalanced = con.execute(
                "select sum(rows_staged), sum(rows_quarantined), sum(rows_duplicate), "
                "count(distinct case when not is_balanced then load_id end) from marts.fct_load_audit").fetchone()
            out["staging"] = {"rows_staged": int(staged or 0), "rows_quarantined": int(quarantined or 0),
                              "rows_duplicate": int(duplicates or 0), "unbalanced_files": int(unbalanced or 0)}
            has_conflicts = con.execute(
                "select count(*) from information_schema.columns where table_schema = 'marts' "
                "and table_name = 'fct_load_audit' and column_name = 'rows_conflicting'").fetchall()[0][0]
            if has_conflicts:  # a mart built before the column existed has none until its next build
                out["staging"]["rows_conflicting"] = int(con.execute(
                    "select coalesce(sum(rows_conflicting), 0) from marts.fct_load_audit").fetchall()[0][0])
            out["staging"]["quarantine_reasons"] = dict(con.execute(
                "select quarantine_reason, count(*) from staging.stg_raw__events_quarantine group by 1 "
                "order by 2 desc").fetchall())
        if table_exists(con, "meta", "build_state"):
            row = con.execute("select build_seq, as_of, mode, reason, status, finished_at from meta.build_state "
                              "order by build_seq desc limit 1").fetchone()
            if row:
                out["last_build"] = {"build": row[0], "as_of": str(row[1]) if row[1] else None, "mode": row[2],
                                     "reason": row[3], "status": row[4],
                                     "finished_at": str(row[5]) if row[5] else None}
                if row[4] == "running":
                    # read under the warehouse lock, which a build keeps until it has recorded its end: a build
                    # still "running" is one whose process was killed (the next build is a full refresh)
                    out["last_build"]["status"] = "interrupted"
        if table_exists(con, "intermediate", "int_identity_issues"):
            out["identity_issues"] = dict(con.execute(
                "select issue, count(distinct identifier) from intermediate.int_identity_issues group by 1 "
                "order by 1").fetchall())
        if table_exists(con, "marts", "fct_sessions"):
            out["marts"] = {
                "as_of": str(_scalar(con, "select as_of from intermediate.int_run_context")),
                "events": _scalar(con, "select count(*) from intermediate.int_events_deduplicated"),
                "sessions": _scalar(con, "select count(*) from marts.fct_sessions"),
                "orders": _scalar(con, "select count(*) from marts.fct_orders"),
                "customers": _scalar(con, "select count(*) from marts.dim_customers"),
                "customers_with_features": _scalar(con, "select count(*) from marts.customer_features"),
            }
        if table_exists(con, "meta", "dq_results"):
            rows = con.execute("select as_of, suite, success, failed, failures from meta.dq_results "
                               "where as_of = (select max(as_of) from meta.dq_results) order by suite").fetchall()
            if rows:  # the table exists from the first load on; empty until the gate first runs
                out["data_quality"] = {"as_of": str(rows[0][0]),
                                       "verdict": "pass" if all(r[2] for r in rows) else "fail",
                                       "suites": {r[1]: {"success": r[2], "failed": r[3], "failures": r[4]}
                                                  for r in rows}}
        if table_exists(con, "meta", "dq_history"):
            cursor = con.execute("select * from meta.dq_history order by as_of desc, validated_at desc limit 1")
            row = cursor.fetchall()
            if row:  # the last gate run's line of the data-quality history (and its Data Docs)
                names = [d[0] for d in cursor.description]
                last = dict(zip(names, row[0], strict=True))
                out.setdefault("data_quality", {})["history"] = {
                    k: (str(v) if isinstance(v, datetime) else json.loads(v) if k in _JSON_COLUMNS and v else v)
                    for k, v in last.items()}
        if table_exists(con, "ml", "model_runs"):
            runs = con.execute("select run_id, as_of, status, k, silhouette, previous_run_id from ml.model_runs "
                               "order by as_of").fetchall()
            out["segment_runs"] = [{"run_id": r[0], "as_of": str(r[1]), "status": r[2], "k": r[3],
                                    "silhouette": round(r[4], 4), "previous_run_id": r[5]} for r in runs]
            if runs:
                latest = runs[-1][0]
                seg = con.execute("select segment_id, segment_name, customer_count, share, is_new "
                                  "from ml.segments where run_id = ? order by segment_id", [latest]).fetchall()
                out["segments"] = [{"segment_id": s[0], "name": s[1], "size": s[2], "share": s[3],
                                    "is_new": s[4]} for s in seg]
        if table_exists(con, "ml", "drift_runs"):
            row = con.execute("select as_of, reference_as_of, verdict, max_psi, drifted_features from ml.drift_runs "
                              "order by as_of desc limit 1").fetchone()
            if row:
                out["drift"] = {"as_of": str(row[0]), "reference_as_of": str(row[1]) if row[1] else None,
                                "verdict": row[2], "max_psi": row[3], "drifted_features": json.loads(row[4])}
        if table_exists(con, "meta", "run_log"):
            out["recent_runs"] = [
                {"step": r[0], "status": r[1], "as_of": str(r[2]) if r[2] else None, "by": r[3],
                 "started_at": str(r[4]), "seconds": round(r[5], 1), "error": r[6]}
                for r in con.execute("select step, status, as_of, invoked_by, started_at, duration_seconds, error "
                                     "from meta.run_log order by started_at desc limit 8").fetchall()]
        if table_exists(con, "ml", "publications"):
            row = con.execute("select as_of, path, row_count from ml.publications order by as_of desc limit 1"
                              ).fetchone()
            if row:
                out["published"] = {"as_of": str(row[0]), "path": row[1], "rows": row[2]}
    out["links"] = links(settings)
    truth = settings.truth_dir / "personas.csv"
    if evaluation and truth.exists() and "segments" in out:
        out["evaluation"] = evaluate(settings)
    return out


def links(settings: Settings) -> dict[str, str]:
    """Where to look next: the files that exist in this home, and the Airflow UI's address."""
    port = os.environ.get("AIRFLOW__API__PORT") or str(settings.airflow_port)
    found = {
        "report": max((settings.artifacts_dir / "reports").glob("*"), default=None, key=lambda p: p.stat().st_mtime)
        if (settings.artifacts_dir / "reports").is_dir() else None,
        "data_docs": settings.artifacts_dir / "data_docs" / "index.html",
        "dbt_docs": settings.dbt_target_dir / "static_index.html",
        "export": settings.exports_dir / "segments" / "latest.csv",
    }
    out = {name: str(path) for name, path in found.items() if path is not None and path.exists()}
    out["airflow_ui"] = f"http://127.0.0.1:{port} (`segflow airflow ui` starts it)"
    return out


def snapshot_path(settings: Settings):
    return settings.artifacts_dir / "status.json"


def publish_snapshot(settings: Settings, step: str) -> bool:
    """Write what status shows now, for readers while the next writer holds the warehouse. Best effort, never
    waits: a step must not fail or hang because its status could not be published. Returns True if written."""
    try:
        data = summary(settings, evaluation=False, timeout=0)
    except (NotReady, WarehouseLocked):
        return False
    except Exception:  # noqa: BLE001 - a half-built warehouse (a step that failed early) has nothing to show
        return False
    return _write_snapshot(settings, data, f"segflow {step}")


def _write_snapshot(settings: Settings, data: dict, step: str) -> bool:
    record = {"published_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"), "published_by": step,
              "summary": {k: v for k, v in data.items() if k != "evaluation"}}  # demo-only, recomputed live
    target = snapshot_path(settings)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, indent=1, default=str))
        tmp.replace(target)  # atomic: a reader sees the old snapshot or the new one, never half of one
    except OSError:
        return False  # a read-only home: status still answers from the warehouse
    return True


def current(settings: Settings | None = None) -> dict:
    """The summary for ``segflow status``: live when the warehouse is free, else the last published snapshot.

    ``source`` says which; a snapshot also carries ``published_at``/``published_by`` and ``busy`` (who holds the
    warehouse)."""
    from segflow.warehouse_lock import describe_holder, hold

    settings = settings or get_settings()
    if not settings.warehouse_path.exists():
        return summary(settings)  # says what to run first (NotReady)
    try:
        # a segflow writer is known at once (no wait); a process that is not segflow may hold DuckDB's own lock
        # for a moment, which the read waits out briefly
        with hold(settings, exclusive=False, timeout=0):
            data = summary(settings, timeout=LIVE_READ_TIMEOUT_SECONDS)
    except WarehouseLocked:
        busy = describe_holder(settings).strip(" ()") or "held by a process that is not segflow"
        path = snapshot_path(settings)
        if not path.is_file():
            raise NotReady(f"The warehouse is in use ({busy}) and no status was published yet: try again when "
                           "that step has finished.") from None
        record = json.loads(path.read_text())
        data = record["summary"]
        data.update(source="snapshot", published_at=record["published_at"], published_by=record["published_by"],
                    busy=busy)
        return data
    _write_snapshot(settings, data, "segflow status")
    data["source"] = "live"
    return data


def evaluate(settings: Settings | None = None) -> dict:
    """Adjusted Rand index of the latest segments against the generator's true personas (demo data only)."""
    import pandas as pd
    from sklearn.metrics import adjusted_rand_score

    settings = settings or get_settings()
    truth = pd.read_csv(settings.truth_dir / "personas.csv")
    with connect(settings, read_only=True) as con:
        assigned = con.execute(
            "select customer_id, segment_id from ml.segment_assignments "
            "where as_of = (select max(as_of) from ml.segment_assignments)").df()
    merged = assigned.merge(truth, on="customer_id", how="inner")
    return {"adjusted_rand_index": round(float(adjusted_rand_score(merged["persona"], merged["segment_id"])), 4),
            "customers_compared": len(merged)}

