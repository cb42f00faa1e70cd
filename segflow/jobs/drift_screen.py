"""Daily drift screen between weekly segmentations, and the record of the early re-clusters it asks for.

After each daily ELT run (DAG segflow_elt, not on the day a week closes) the freshly built
marts.customer_features are tested against the last accepted week's snapshot and the baseline with the weekly
check's population tests (segment shares and per-segment tests need this week's assignments, which only a
re-cluster makes). A drift verdict asks for an early re-cluster: the DAG then triggers a run of segflow_segments_weekly for
the current data and :func:`record_recluster_trigger` writes it to ml.recluster_triggers. One request per
segmentation: once a trigger is recorded after the last accepted week, the screen does not ask again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from segflow.ddl import ensure_schema
from segflow.errors import NotReady
from segflow.jobs.drift import DriftResult, _assignments, _reason, _records, evaluate, references_before
from segflow.jobs.drift_tests import write_drift
from segflow.jobs.ml_common import to_naive_utc
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect, table_exists
from segflow.warehouse_lock import warehouse_step


@dataclass
class ScreenResult:
    drift: DriftResult
    recluster: bool
    trigger_run_id: str | None

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.drift.as_dict().items() if k != "features"}
        return {**out, "recluster": self.recluster, "trigger_run_id": self.trigger_run_id,
                "reason": "; ".join(self.drift.reasons[:3])}


def trigger_run_id(as_of: datetime) -> str:
    return f"drift_recluster__{as_of:%Y-%m-%dT%H:%M:%S}"


@warehouse_step("segment: drift screen")
def screen_drift(settings: Settings | None = None, as_of: datetime | None = None) -> ScreenResult:
    """Test today's customer_features against the last accepted week and the baseline; stored in ml.drift_*
    (run_kind 'screen'); ``recluster`` says whether an early re-cluster should be triggered."""
    settings = settings or get_settings()
    as_of = to_naive_utc(as_of)
    with connect(settings, read_only=True) as con:
        if not table_exists(con, "marts", "customer_features"):
            raise NotReady("marts.customer_features does not exist: run `segflow build` first.")
        current = con.execute("select * from marts.customer_features order by customer_id").df()
        if current.empty:
            raise NotReady("marts.customer_features is empty: nothing to screen.")
        built = pd.Timestamp(current["as_of"].iloc[0]).to_pydatetime()
        if as_of is not None and built != as_of:
            raise NotReady(f"customer_features is built as of {built:%Y-%m-%d %H:%M}, not {as_of:%Y-%m-%d %H:%M}.")
        as_of = built
        references = references_before(con, as_of, settings)
        if references:
            reference_as_of, base_weeks, last, baseline = references
            last_labels = _assignments(con, reference_as_of)
            already = table_exists(con, "ml", "recluster_triggers") and con.execute(
                "select count(*) from ml.recluster_triggers where as_of > ?", [reference_as_of]).fetchone()[0] > 0
    if not references:
        result = DriftResult(as_of=as_of, reference_as_of=None, verdict="no_reference", max_psi=None,
                             run_kind="screen")
        write_drift(settings, result, None, {})
        return ScreenResult(result, False, None)
    current = current[[c for c in current.columns if c in last.columns]]
    status, tests, bins = evaluate(settings, current, last, baseline, baseline["customer_id"].nunique(),
                                   last_labels, None, None)
    population = tests[tests["scope"] == "population"]
    result = DriftResult(
        as_of=as_of, reference_as_of=reference_as_of, baseline_as_of=base_weeks[0], verdict=status,
        run_kind="screen", max_psi=round(float(population["psi"].max()), 4) if len(population) else None,
        tests=len(tests), drift_tests=int((tests["status"] == "drift").sum()),
        reasons=[_reason(r) for r in tests[tests["status"] == "drift"].sort_values("p_adjusted").to_dict("records")],
        features=_records(tests))
    write_drift(settings, result, tests, bins)
    recluster = status == "drift" and settings.drift_recluster_on_drift and not already
    return ScreenResult(result, recluster, trigger_run_id(as_of) if recluster else None)


@warehouse_step("segment: record re-cluster trigger")
def record_recluster_trigger(settings: Settings | None = None, as_of: datetime | None = None, reason: str = "",
                             dag_run_id: str | None = None) -> dict:
    """Record (replace) the early re-cluster triggered for ``as_of`` in ml.recluster_triggers."""
    settings = settings or get_settings()
    as_of = to_naive_utc(as_of)
    triggered_at = datetime.now()
    with connect(settings) as con:
        ensure_schema(con)
        con.execute("begin transaction")
        con.execute("delete from ml.recluster_triggers where as_of = ?", [as_of])
        con.execute("insert into ml.recluster_triggers values (?, ?, ?, ?)",
                    [as_of, reason or "drift", triggered_at, dag_run_id])
        con.execute("commit")
    return {"as_of": as_of.isoformat(), "reason": reason or "drift", "triggered_at": triggered_at.isoformat(),
            "dag_run_id": dag_run_id}


def screen_interval(settings: Settings | None = None, as_of: datetime | None = None) -> dict:
    """The ELT DAG's daily step: screen (and alert on drift) unless ``as_of`` closes a week, when the weekly
    segmentation runs its full check anyway."""
    from segflow.jobs.drift import notify_drift

    settings = settings or get_settings()
    as_of = to_naive_utc(as_of)
    if as_of is not None and as_of.weekday() == settings.week_start_weekday:
        return {"as_of": as_of.isoformat(), "verdict": "skipped", "recluster": False, "trigger_run_id": None,
                "reason": "the week closes: the weekly segmentation checks drift itself"}
    result = screen_drift(settings, as_of)
    notify_drift(result.drift, settings)
    return result.as_dict()
