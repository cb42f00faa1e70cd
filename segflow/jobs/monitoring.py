"""Weekly segment monitoring: SPC control charts on segment KPIs and STL trend breaks in daily activity.

KPIs per accepted week and segment id (members = that week's assignments; activity = the 7 days before as_of in
marts.fct_customer_daily_activity): customers (size), conversion (share of members with an order), AOV (gross
revenue per order), revenue (gross), sessions. Each KPI series gets an individuals chart from its first
``spc_baseline_weeks`` weeks and the Western Electric rules; signals ending at this week go to ml.spc_signals.
Per current segment, its members' daily sessions over ``stl_days`` are decomposed by STL; outlier days of the
last week and a level shift of the trend over it go to ml.trend_breaks. Re-running a week rewrites exactly that week's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from segflow.ddl import ensure_schema
from segflow.errors import NotReady
from segflow.jobs.ml_common import resolve_as_of, to_naive_utc
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect, table_exists
from segflow.warehouse_lock import warehouse_step

KPIS = ("customers", "conversion", "aov", "revenue", "sessions")
# a KPI flat during its baseline would flag any change: sigma is floored at this share of the centre
MIN_RELATIVE_SIGMA = 0.01

_KPI_SQL = """
with weeks as (
    select distinct as_of from ml.model_runs where status = 'accepted' and as_of <= ?
),
members as (
    select a.as_of, a.segment_id, a.customer_id
    from ml.segment_assignments as a
    inner join weeks using (as_of)
),
activity as (
    select m.as_of, m.segment_id, m.customer_id,
           coalesce(sum(d.session_count), 0) as sessions, coalesce(sum(d.order_count), 0) as orders,
           coalesce(sum(d.gross_revenue), 0) as revenue
    from members as m
    left join marts.fct_customer_daily_activity as d
        on d.customer_id = m.customer_id
        and d.activity_date >= cast(m.as_of - interval 7 day as date)
        and d.activity_date < cast(m.as_of as date)
    group by m.as_of, m.segment_id, m.customer_id
)
select as_of, segment_id, count(*) as customers, avg(case when orders > 0 then 1.0 else 0.0 end) as conversion,
       cast(sum(revenue) as double) / nullif(sum(orders), 0) as aov, cast(sum(revenue) as double) as revenue,
       cast(sum(sessions) as double) as sessions
from activity
group by as_of, segment_id
order by as_of, segment_id
"""

_DAILY_SQL = """
select a.segment_id, d.activity_date, sum(d.session_count) as sessions
from ml.segment_assignments as a
inner join marts.fct_customer_daily_activity as d on d.customer_id = a.customer_id
where a.as_of = ? and d.activity_date >= ? and d.activity_date < ?
group by a.segment_id, d.activity_date
"""


@dataclass
class MonitoringResult:
    as_of: datetime
    segments: int
    spc_signals: int
    trend_breaks: int
    signals: list[dict] = field(default_factory=list)
    breaks: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"as_of": self.as_of.isoformat(), "segments": self.segments, "spc_signals": self.spc_signals,
                "trend_breaks": self.trend_breaks, "signals": self.signals, "breaks": self.breaks}


def spc_for_week(kpis: pd.DataFrame, as_of: datetime, settings: Settings) -> pd.DataFrame:
    """Run-rule signals ending at ``as_of``, per segment id and KPI (``kpis``: one row per week and segment)."""
    from ml.spc import control_limits, run_rule_signals

    rows = []
    for sid, series in kpis.sort_values("as_of").groupby("segment_id"):
        if len(series) < settings.spc_baseline_weeks + 1 or series["as_of"].iloc[-1] != as_of:
            continue
        for kpi in KPIS:
            values = series[kpi].to_numpy(dtype=np.float64)
            baseline = values[:settings.spc_baseline_weeks]
            if np.isfinite(baseline).sum() < 2 or not np.isfinite(values[-1]):
                continue
            center = float(np.nanmean(baseline))
            limits = control_limits(baseline, min_sigma=MIN_RELATIVE_SIGMA * abs(center))
            signals = run_rule_signals(values, limits, tuple(settings.spc_rules))
            for s in signals[signals["index"] == len(values) - 1].to_dict("records"):
                rows.append({"segment_id": sid, "kpi": kpi, "value": float(values[-1]), "center": limits.center,
                             "sigma": limits.sigma, "rule": int(s["rule"]), "side": int(s["side"])})
    return pd.DataFrame(rows, columns=["segment_id", "kpi", "value", "center", "sigma", "rule", "side"])


def breaks_for_week(daily: pd.DataFrame, as_of: datetime, settings: Settings) -> pd.DataFrame:
    """STL breaks of each segment's daily sessions (``daily``: segment_id, activity_date, sessions; days without
    activity count as 0): outlier days of the last 7 days, and a level shift of the trend over them."""
    from ml.spc import level_shift, trend_breaks

    days = pd.date_range(as_of - timedelta(days=settings.stl_days), as_of - timedelta(days=1), freq="D")
    rows = []
    for sid, part in daily.groupby("segment_id"):
        series = part.set_index(pd.to_datetime(part["activity_date"]))["sessions"].astype(float)
        series = series.reindex(days, fill_value=0.0)
        if (series > 0).sum() < 14:  # too sparse to decompose meaningfully
            continue
        fit = trend_breaks(series, period=7, k=settings.stl_break_k)
        base = {"segment_id": sid, "metric": "sessions"}
        for day, r in fit[(fit.index >= as_of - timedelta(days=7)) & fit["is_break"]].iterrows():
            rows.append({**base, "kind": "outlier", "activity_date": day.date(), "value": r["value"],
                         "trend": r["trend"], "seasonal": r["seasonal"], "resid": r["resid"],
                         "threshold": r["threshold"]})
        shift = level_shift(fit, k=settings.stl_break_k, min_relative_change=settings.stl_level_change)
        if shift["is_shift"]:
            last = fit.iloc[-1]
            rows.append({**base, "kind": "level_shift", "activity_date": fit.index[-1].date(), "value": last["value"],
                         "trend": last["trend"], "seasonal": last["seasonal"], "resid": shift["change"],
                         "threshold": settings.stl_level_change * abs(shift["before"])})
    return pd.DataFrame(rows, columns=["segment_id", "metric", "kind", "activity_date", "value", "trend", "seasonal",
                                       "resid", "threshold"])


def _insert(con, sql: str, rows: list[tuple]) -> None:
    if rows:  # DuckDB's executemany refuses an empty list
        con.executemany(sql, rows)


@warehouse_step("segment: monitoring")
def monitor_segments(settings: Settings | None = None, as_of: datetime | None = None) -> MonitoringResult:
    """Segment KPIs of the week, SPC signals and STL trend breaks, stored in ml.segment_kpi_series / spc_signals /
    trend_breaks."""
    settings = settings or get_settings()
    as_of = to_naive_utc(as_of)
    with connect(settings, read_only=True) as con:
        as_of = resolve_as_of(con, "segment_assignments", as_of, "No segments yet: run `segflow segment` first.")
        if not table_exists(con, "marts", "fct_customer_daily_activity"):
            raise NotReady("marts.fct_customer_daily_activity does not exist: run `segflow build` first.")
        kpis = con.execute(_KPI_SQL, [as_of]).df()
        daily = con.execute(_DAILY_SQL, [as_of, (as_of - timedelta(days=settings.stl_days)).date(),
                                         as_of.date()]).df()
    kpis["as_of"] = pd.to_datetime(kpis["as_of"])
    current = kpis[kpis["as_of"] == as_of]
    signals = spc_for_week(kpis, as_of, settings)
    breaks = breaks_for_week(daily, as_of, settings)
    now = datetime.now()
    with connect(settings) as con:
        ensure_schema(con)
        con.execute("begin transaction")
        for table in ("segment_kpi_series", "spc_signals", "trend_breaks"):
            con.execute(f"delete from ml.{table} where as_of = ?", [as_of])
        _insert(con, "insert into ml.segment_kpi_series values (?, ?, ?, ?, ?, ?, ?)", [
            (as_of, r["segment_id"], int(r["customers"]), *(None if pd.isna(r[k]) else float(r[k])
                                                            for k in ("conversion", "aov", "revenue", "sessions")))
            for r in current.to_dict("records")])
        _insert(con, "insert into ml.spc_signals values (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            (as_of, r["segment_id"], r["kpi"], r["value"], r["center"], r["sigma"], r["rule"], r["side"], now)
            for r in signals.to_dict("records")])
        _insert(con, "insert into ml.trend_breaks values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            (as_of, r["segment_id"], r["metric"], r["kind"], r["activity_date"], r["value"], r["trend"], r["seasonal"],
             r["resid"], r["threshold"], now) for r in breaks.to_dict("records")])
        con.execute("commit")
    return MonitoringResult(as_of=as_of, segments=len(current), spc_signals=len(signals), trend_breaks=len(breaks),
                            signals=signals.to_dict("records"),
                            breaks=[{**b, "activity_date": b["activity_date"].isoformat()}
                                    for b in breaks.to_dict("records")])
