"""Weekly drift check: this week's feature snapshot against the reference, stored in ml.drift_*."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from segflow.ddl import ensure_schema
from segflow.errors import NotReady
from segflow.jobs.ml_common import resolve_as_of, to_naive_utc
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect
from segflow.warehouse_lock import warehouse_step


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
        as_of = resolve_as_of(con, "feature_snapshots", as_of,
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
