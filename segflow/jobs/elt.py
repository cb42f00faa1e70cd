"""The ELT steps for one interval: load -> dbt build -> data-quality gate."""

from __future__ import annotations

from datetime import datetime

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
