"""Publish the week's segments: only if its data gate passed and its model was accepted; `latest` only moves forward.

The files (snapshot, delta since the previous publication, manifest) are written by
:mod:`segflow.publish.exports`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from segflow.activation.campaigns import load_campaigns
from segflow.ddl import ensure_schema
from segflow.errors import GateFailed, NotReady
from segflow.jobs.anomalies import exclude_flagged
from segflow.jobs.ml_common import resolve_as_of, to_naive_utc
from segflow.jobs.publish_status import write_status
from segflow.publish.exports import write_exports
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect, table_exists
from segflow.warehouse_lock import warehouse_step


@dataclass
class Publication:
    as_of: datetime
    run_id: str
    path: str
    rows: int
    delta: dict | None = None

    def as_dict(self) -> dict:
        return {"as_of": self.as_of.isoformat(), "run_id": self.run_id, "path": self.path, "rows": self.rows,
                "delta": self.delta}


def _previous(con, settings: Settings, as_of: datetime):
    """The publication before ``as_of`` (the previous *published* week) and its snapshot: from its Parquet file,
    else its CSV, else (files removed) its run's assignments in the warehouse."""
    import pandas as pd

    from segflow.publish.exports import Previous

    if not table_exists(con, "ml", "publications"):
        return Previous(None, None, "none")
    row = con.execute("select as_of, run_id, path from ml.publications where as_of < ? order by as_of desc limit 1",
                      [as_of]).fetchall()
    if not row:
        return Previous(None, None, "none")
    prev_as_of, prev_run, path = row[0]
    csv_path = Path(path)
    parquet = csv_path.with_suffix(".parquet")
    if parquet.is_file():
        return Previous(prev_as_of, pd.read_parquet(parquet), "file")
    if csv_path.is_file():
        return Previous(prev_as_of, pd.read_csv(csv_path, dtype=str), "file")
    frame = con.execute(
        "select a.customer_id, a.segment_id, s.segment_name from ml.segment_assignments a "
        "join ml.segments s on s.run_id = a.run_id and s.segment_id = a.segment_id where a.run_id = ?",
        [prev_run]).df()
    return Previous(prev_as_of, frame, "warehouse")


@warehouse_step("segment: publish")
def publish(settings: Settings | None = None, as_of: datetime | None = None) -> Publication:
    """Export the week's segments, only if its data gate passed and its model was accepted."""
    settings = settings or get_settings()
    as_of = to_naive_utc(as_of)
    with connect(settings, read_only=True) as con:
        as_of = resolve_as_of(con, "model_runs", as_of, "No segmentation run yet: run `segflow segment` first.")
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
        from segflow.jobs.registry import champion_assignments

        fallback = champion_assignments(con, as_of)  # the registry rejected the week's model: the champion's
        if fallback is None and status != "accepted":
            raise GateFailed(f"Model run {run_id} was rejected (silhouette {silhouette:.3f} < "
                             f"{settings.min_silhouette}): not publishing.{keep}")
        if fallback is not None:
            run_id, frame = fallback
        else:
            frame = con.execute(
                "select a.customer_id, a.segment_id, s.segment_name, a.as_of from ml.segment_assignments a "
                "join ml.segments s on s.run_id = a.run_id and s.segment_id = a.segment_id "
                "where a.run_id = ? order by a.customer_id", [run_id]).df()
        segments = con.execute("select segment_id, segment_name, name_rule from ml.segments where run_id = ? "
                               "order by segment_id", [run_id]).df()
        previous = _previous(con, settings, as_of)
    campaigns = load_campaigns(settings)  # a bad mapping fails before anything is written
    frame, _ = exclude_flagged(settings, frame, as_of)  # also when the anomaly step ran after the recluster
    # re-publishing an older week never moves `latest` back
    manifest = write_exports(settings, as_of, run_id, frame, segments, previous, campaigns,
                             move_latest=last_good is None or as_of >= last_good)
    target = settings.exports_dir / "segments" / manifest["files"]["snapshot_csv"]
    with connect(settings) as con:
        ensure_schema(con)
        con.execute("begin transaction")
        con.execute("delete from ml.publications where as_of = ?", [as_of])
        con.execute("insert into ml.publications values (?, ?, ?, ?, ?)",
                    [as_of, run_id, str(target), len(frame), datetime.now()])
        con.execute("commit")
    write_status(settings, as_of, run_id, str(target), len(frame))  # the Segments page's artifact (docs/ui.md)
    return Publication(as_of=as_of, run_id=run_id, path=str(target), rows=len(frame),
                       delta={"previous_as_of": manifest["previous_as_of"], **manifest["delta"]})
