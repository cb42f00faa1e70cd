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
    """Why an ELT run for ``[start, end)`` has nothing to do, or None. Checked before loading: no file dated on
    one of the interval's days is in the landing folder or was ever loaded, and SEGFLOW_SKIP_WHEN_NO_NEW_DATA is
    on. A scheduled run past the end of the deliveries (after the demo's data, while a source pauses) then ends
    green with this message instead of gating unchanged data; re-running an interval that had data rebuilds it.
    Files that arrive late for earlier days are loaded by the next run whose day has a delivery."""
    from segflow.jobs.landing import partition_date
    from segflow.warehouse import connect, table_exists

    settings = settings or get_settings()
    start, end = to_naive_utc(start), to_naive_utc(end)
    if not settings.skip_when_no_new_data or start is None or end is None:
        return None
    first, last = start.date(), end.date()
    if last <= first:
        return None
    landing = settings.landing_dir
    dated = [d for d in (partition_date(p) for p in landing.rglob("*") if p.is_file()) if d] \
        if landing.is_dir() else []
    if any(first <= d < last for d in dated):
        return None
    latest = max(dated, default=None)
    if settings.warehouse_path.exists():
        with connect(settings, read_only=True) as con:
            if table_exists(con, "meta", "load_manifest"):
                files, loaded = con.execute(
                    "select count(*) filter (where partition_date >= ? and partition_date < ?), "
                    "max(partition_date) from meta.load_manifest", [first, last]).fetchall()[0]
                if files:
                    return None
                latest = max(d for d in (latest, loaded) if d is not None) if (latest or loaded) else None
    days = f"{first}" if (last - first).days == 1 else f"{first} to {last - timedelta(days=1)}"
    return (f"no new data: no landing file was delivered for {days} (the latest delivered day is "
            f"{latest or 'none'}); nothing to load, build or gate: the run ends without changing the warehouse. "
            "The next run whose day has a delivery catches up. SEGFLOW_SKIP_WHEN_NO_NEW_DATA=false builds and gates "
            "anyway.")
