"""Weekly business validation of the segments: per-segment KPIs with intervals, and how strongly the segments
separate them (docs/business-metrics.md).

For a week (``as_of``) the customers and segments are the week's ``ml.segment_assignments``; their KPI inputs
come from ``marts.fct_customer_daily_activity`` (orders, gross and net revenue and activity per customer and
day), cut into windows of whole days that end at as_of. Re-running a week deletes and rewrites exactly that
week's rows of ``ml.segment_kpis`` and ``ml.segment_separation``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import pandas as pd

from segflow.ddl import ensure_schema
from segflow.errors import NotReady
from segflow.jobs.ml_common import resolve_as_of, to_naive_utc
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect, table_exists
from segflow.warehouse_lock import warehouse_step

__all__ = ["KpiRun", "Windows", "customer_kpi_inputs", "segment_kpis", "windows"]

log = logging.getLogger(__name__)

OVERALL = "(all)"


@dataclass(frozen=True)
class Windows:
    """Days ``d`` with ``previous_start <= d < current_start`` (previous window) and
    ``current_start <= d < end`` (current window); churned = no active day on or after ``churn_cutoff``."""

    previous_start: date
    current_start: date
    end: date
    churn_cutoff: date


def windows(as_of: datetime, window_days: int, churn_inactive_days: int) -> Windows:
    """as_of is an exclusive bound: at midnight its own day is not in the window, otherwise it is (partly)."""
    end = as_of.date() if as_of.time() == time(0) else as_of.date() + timedelta(days=1)
    current = end - timedelta(days=window_days)
    return Windows(current - timedelta(days=window_days), current, end, end - timedelta(days=churn_inactive_days))


@dataclass
class KpiRun:
    as_of: datetime
    run_id: str
    windows: Windows
    customers: int
    segments: int
    history_starts: date | None
    separation: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        w = self.windows
        return {"as_of": self.as_of.isoformat(), "run_id": self.run_id, "customers": self.customers,
                "segments": self.segments,
                "current_window": [w.current_start.isoformat(), (w.end - timedelta(days=1)).isoformat()],
                "previous_window": [w.previous_start.isoformat(), (w.current_start - timedelta(days=1)).isoformat()],
                "churned_if_inactive_since": w.churn_cutoff.isoformat(),
                "history_starts": self.history_starts.isoformat() if self.history_starts else None,
                "separation": [{k: _json_number(v) for k, v in row.items()} for row in self.separation],
                "notes": self.notes}


def _json_number(value):
    """NaN / infinity (a test with one group or no variance) as None: the result goes to JSON (CLI, XCom)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


_ACTIVE = {"order": "order_count > 0", "activity": "(is_active_day or order_count > 0)"}


def customer_kpi_inputs(con, as_of: datetime, w: Windows, active_on: str = "order") -> pd.DataFrame:
    """One row per customer assigned in the week: orders, net revenue and gross order revenue in the current
    window, active in the previous / current window, ever active before the window's end, churned."""
    return con.execute(f"""
        with assigned as (
            select customer_id, segment_id from ml.segment_assignments where as_of = $as_of
        ),
        days as (
            select customer_id, activity_date, order_count, gross_revenue, net_revenue, {_ACTIVE[active_on]} as active
            from marts.fct_customer_daily_activity
            where activity_date < $end and customer_id in (select customer_id from assigned)
        ),
        per_customer as (
            select
                customer_id,
                sum(order_count) filter (where activity_date >= $current_start) as orders,
                sum(net_revenue) filter (where activity_date >= $current_start) as revenue,
                sum(gross_revenue) filter (where activity_date >= $current_start) as order_revenue,
                bool_or(active) filter (where activity_date >= $current_start) as active_current,
                bool_or(active) filter (where activity_date >= $previous_start
                                        and activity_date < $current_start) as active_previous,
                max(activity_date) filter (where active) as last_active_date
            from days
            group by customer_id
        )
        select
            assigned.customer_id,
            assigned.segment_id,
            cast(coalesce(per_customer.orders, 0) as bigint) as orders,
            cast(coalesce(per_customer.revenue, 0) as double) as revenue,
            cast(coalesce(per_customer.order_revenue, 0) as double) as order_revenue,
            coalesce(per_customer.active_previous, false) as active_previous,
            coalesce(per_customer.active_current, false) as active_current,
            per_customer.last_active_date is not null as ever_active,
            coalesce(per_customer.last_active_date < $churn_cutoff, false) as churned
        from assigned
        left join per_customer on assigned.customer_id = per_customer.customer_id
        order by assigned.customer_id
    """, {"as_of": as_of, "end": w.end, "current_start": w.current_start, "previous_start": w.previous_start,
          "churn_cutoff": w.churn_cutoff}).df()


def _read(settings: Settings, as_of: datetime | None) -> tuple[datetime, str, pd.DataFrame, date | None, Windows]:
    with connect(settings, read_only=True) as con:
        as_of = resolve_as_of(con, "segment_assignments", as_of,
                              "no segmentation run yet: run `segflow segment` (or the weekly DAG) first.")
        runs = con.execute("select distinct run_id from ml.segment_assignments where as_of = ?", [as_of]).fetchall()
        if not runs:
            raise NotReady(f"no segment assignments as of {as_of:%Y-%m-%d %H:%M}: recluster that week first.")
        if not table_exists(con, "marts", "fct_customer_daily_activity"):
            raise NotReady("marts.fct_customer_daily_activity does not exist: run `segflow build` first.")
        built, = con.execute("select max(as_of) from marts.customer_features").fetchone()
        if built is None or built < as_of:
            raise NotReady(f"the marts are built as of {built}, before {as_of:%Y-%m-%d %H:%M}: build that week "
                           "(segflow run --as-of) first.")
        w = windows(as_of, settings.kpi_window_days, settings.churn_inactive_days)
        frame = customer_kpi_inputs(con, as_of, w, settings.kpi_active_on)
        history, = con.execute("select min(activity_date) from marts.fct_customer_daily_activity").fetchone()
    return as_of, runs[0][0], frame, history, w


@warehouse_step("segment: kpis")
def segment_kpis(settings: Settings | None = None, as_of: datetime | None = None) -> KpiRun:
    """Compute and store the week's per-segment KPIs and separation tests (idempotent per week)."""
    from ml.business import segment_kpis as kpis
    from ml.business import segment_separation

    settings = settings or get_settings()
    as_of, run_id, frame, history, w = _read(settings, to_naive_utc(as_of))
    table = kpis(frame, "segment_id", confidence=settings.ab_confidence, overall_label=OVERALL)
    separation = segment_separation(frame, "segment_id")
    notes = []
    if history is None or history > w.previous_start:
        notes.append(f"the data start on {history}, after the previous window's first day {w.previous_start}: "
                     "retention compares with a partial window")
    if history is None or history > w.churn_cutoff:
        notes.append(f"the data start on {history}, after the churn cut-off {w.churn_cutoff}: no one can have "
                     "churned yet")
    for note in notes:
        log.warning("segment KPIs as of %s: %s", as_of, note)
    table.insert(0, "run_id", run_id)
    table.insert(0, "as_of", as_of)
    separation.insert(0, "as_of", as_of)
    with connect(settings) as con:
        ensure_schema(con)
        con.execute("begin transaction")
        con.execute("delete from ml.segment_kpis where as_of = ?", [as_of])
        con.execute("delete from ml.segment_separation where as_of = ?", [as_of])
        con.register("_kpis", table)
        con.execute("insert into ml.segment_kpis by name select * from _kpis")
        con.register("_separation", separation)
        con.execute("insert into ml.segment_separation by name select * from _separation")
        con.execute("commit")
    summary = [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items() if k != "as_of"}
               for row in separation.to_dict("records")]
    return KpiRun(as_of=as_of, run_id=run_id, windows=w, customers=len(frame),
                  segments=int(frame["segment_id"].nunique()), history_starts=history, separation=summary,
                  notes=notes)
