"""The ELT steps for one interval: load -> dbt build -> data-quality gate."""

from __future__ import annotations

from datetime import datetime, timedelta

from segflow.jobs.build import build
from segflow.jobs.load import load_landing
from segflow.jobs.ml_common import to_naive_utc
from segflow.jobs.validate import validate
from segflow.settings import Settings, get_settings
from segflow.warehouse_lock import warehouse_step


@warehouse_step("load")
def load_interval(settings: Settings | None = None, as_of: datetime | None = None) -> dict:
    """Load every not-yet-loaded landing file whose partition date is before ``as_of``."""
    as_of = to_naive_utc(as_of)
    report = load_landing(settings or get_settings(), until=as_of.date() if as_of else None)
    out = report.as_dict()
    out["files"] = [f for f in out["files"] if f["status"] not in ("skipped", "deferred")]
    return out


def run_elt(settings: Settings | None = None, as_of: datetime | None = None, full_refresh: bool = False) -> dict:
    settings = settings or get_settings()
    as_of = to_naive_utc(as_of)
    loaded = load_interval(settings, as_of)
    built = build(settings, as_of, full_refresh=full_refresh)
    gate = validate(settings, as_of)
    return {"load": {k: v for k, v in loaded.items() if k != "files"}, "build": built.as_dict(),
            "gate": gate.as_dict()}


def no_new_data(settings: Settings | None, start: datetime | None, end: datetime | None) -> str | None:
    """Why an ELT run for ``[start, end)`` has nothing to do, or None: no landing file dated on one of its days
    was ever loaded (by this run or an earlier one), and SEGFLOW_SKIP_WHEN_NO_NEW_DATA is on.

    A scheduled run past the end of the deliveries (the demo's data, a source that paused) then ends green with
    this message instead of gating unchanged data; re-running an interval that had data still rebuilds it."""
    from segflow.warehouse import connect, table_exists

    settings = settings or get_settings()
    start, end = to_naive_utc(start), to_naive_utc(end)
    if not settings.skip_when_no_new_data or start is None or end is None:
        return None
    first, last = start.date(), end.date()
    with connect(settings, read_only=True) as con:
        if not table_exists(con, "meta", "load_manifest"):
            latest, files = None, 0
        else:
            files, = con.execute("select count(*) from meta.load_manifest where partition_date >= ? and "
                                 "partition_date < ?", [first, last]).fetchall()[0]
            latest, = con.execute("select max(partition_date) from meta.load_manifest").fetchall()[0]
    if files:
        return None
    days = f"{first}" if (last - first).days <= 1 else f"{first} to {last - timedelta(days=1)}"
    return (f"no new data: no landing file was delivered for {days} (the latest delivered day is "
            f"{latest or 'none'}); nothing to build or gate, the run ends without changing the warehouse. "
            "The next run with deliveries catches up. SEGFLOW_SKIP_WHEN_NO_NEW_DATA=false builds and gates anyway.")
