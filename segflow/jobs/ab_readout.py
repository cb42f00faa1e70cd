"""A/B readout per segment (``segflow ab-readout``): an experiment's assignment table and outcomes, the week's
segments, uplift with confidence intervals into ``ml.ab_readouts`` (docs/business-metrics.md).

Re-reading an experiment for the same week replaces its rows (idempotent per experiment and week).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

from segflow.ddl import ensure_schema
from segflow.errors import InputError, NotReady
from segflow.jobs.ml_common import resolve_as_of, to_naive_utc
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect, table_exists
from segflow.warehouse_lock import warehouse_step

__all__ = ["AbReadout", "format_readout", "marts_outcomes", "read_assignments", "read_outcomes", "run_ab_readout"]


@dataclass
class AbReadout:
    experiment_id: str
    as_of: datetime
    rows: pd.DataFrame
    without_outcome: int
    outcomes_from: str

    def as_dict(self) -> dict:
        return {"experiment_id": self.experiment_id, "as_of": self.as_of.isoformat(),
                "without_outcome": self.without_outcome, "outcomes_from": self.outcomes_from,
                "rows": self.rows.to_dict("records")}


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype={"customer_id": str, "experiment_id": str})
    except FileNotFoundError:
        raise InputError(f"{what} file {path} does not exist") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{what} file {path} cannot be read as CSV: {str(exc).splitlines()[0]}") from None


def read_assignments(path: Path, experiment_id: str | None = None) -> tuple[pd.DataFrame, str]:
    """The assignment CSV (customer_id, arm, optional experiment_id) and the experiment's id: the file's
    experiment_id column (one value), else ``experiment_id``, else the file name without extension."""
    frame = _read_csv(path, "assignments")
    if "experiment_id" in frame.columns:
        ids = sorted(frame["experiment_id"].dropna().astype(str).unique())
        if len(ids) > 1:
            raise InputError(f"{path} holds {len(ids)} experiments ({', '.join(ids[:3])}...): give one "
                             "experiment per file")
        if ids and experiment_id and ids[0] != experiment_id:
            raise InputError(f"{path} is experiment {ids[0]!r}, not --experiment-id {experiment_id!r}")
        experiment_id = ids[0] if ids else experiment_id
    return frame, experiment_id or path.stem


def read_outcomes(path: Path) -> pd.DataFrame:
    return _read_csv(path, "outcomes")


def marts_outcomes(con, start: date, last: date) -> pd.DataFrame:
    """Per customer with activity from ``start`` to ``last`` (both included): converted (>= 1 order) and net
    revenue, from marts.fct_customer_daily_activity."""
    if not table_exists(con, "marts", "fct_customer_daily_activity"):
        raise NotReady("marts.fct_customer_daily_activity does not exist: run `segflow build` first.")
    return con.execute("""
        select customer_id, sum(order_count) > 0 as converted, cast(sum(net_revenue) as double) as revenue
        from marts.fct_customer_daily_activity
        where activity_date >= ? and activity_date < ?
        group by customer_id
    """, [start, last + timedelta(days=1)]).df()


@warehouse_step("ab readout")
def run_ab_readout(assignments: pd.DataFrame, experiment_id: str, outcomes: pd.DataFrame | None = None,
                   period: tuple[date, date] | None = None, settings: Settings | None = None,
                   as_of: datetime | None = None) -> AbReadout:
    """Readout of one experiment against the week's segments (``as_of``, default: the latest segmentation);
    outcomes given, or from the marts over ``period`` (first and last day, included)."""
    from ml.ab_readout import ab_readout

    settings = settings or get_settings()
    if (outcomes is None) == (period is None):
        raise InputError("give either outcomes or a period (--from/--to) to read them from the marts")
    if period is not None and period[0] > period[1]:
        raise InputError(f"--from {period[0]} is after --to {period[1]}")
    with connect(settings, read_only=True) as con:
        as_of = resolve_as_of(con, "segment_assignments", to_naive_utc(as_of),
                              "no segmentation run yet: run `segflow segment` (or the weekly DAG) first.")
        segments = con.execute("select customer_id, segment_id from ml.segment_assignments where as_of = ?",
                               [as_of]).df()
        if segments.empty:
            raise NotReady(f"no segment assignments as of {as_of:%Y-%m-%d %H:%M}: recluster that week first.")
        source = "file"
        if outcomes is None:
            outcomes = marts_outcomes(con, *period)
            source = f"marts {period[0]}..{period[1]}"
    try:
        rows = ab_readout(assignments, outcomes, segments, confidence=settings.ab_confidence,
                          min_arm_size=settings.ab_min_arm_size)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    without = rows.attrs.get("without_outcome", 0)
    stored = rows.drop(columns=["uplift_relative"])
    stored.insert(0, "as_of", as_of)
    stored.insert(0, "experiment_id", experiment_id)
    with connect(settings) as con:
        ensure_schema(con)
        con.execute("begin transaction")
        con.execute("delete from ml.ab_readouts where experiment_id = ? and as_of = ?", [experiment_id, as_of])
        con.register("_readout", stored)
        con.execute("insert into ml.ab_readouts by name select * from _readout")
        con.execute("commit")
    return AbReadout(experiment_id, as_of, rows, without, source)


def _num(value: float, percent: bool) -> str:
    if pd.isna(value):
        return "-"
    return f"{value * 100:.2f}%" if percent else f"{value:,.2f}"


def format_readout(result: AbReadout) -> str:
    """A plain-text table: one line per segment and metric."""
    lines = [f"experiment {result.experiment_id} - segments as of {result.as_of:%Y-%m-%d %H:%M}, outcomes from "
             f"{result.outcomes_from}",
             f"{'segment':<14}{'metric':<22}{'n ctrl':>8}{'n treat':>8}{'control':>12}{'treatment':>12}"
             f"{'uplift':>12}  {'interval':<26}"]
    for r in result.rows.to_dict("records"):
        pct = r["metric"] == "conversion_rate"
        interval = f"[{_num(r['ci_low'], pct)}, {_num(r['ci_high'], pct)}]"
        flag = "  small sample" if r["small_sample"] else ""
        lines.append(f"{r['segment_id']:<14}{r['metric']:<22}{r['n_control']:>8}{r['n_treatment']:>8}"
                     f"{_num(r['control'], pct):>12}{_num(r['treatment'], pct):>12}{_num(r['uplift'], pct):>12}"
                     f"  {interval:<26}{flag}")
    if result.without_outcome:
        lines.append(f"{result.without_outcome} assigned customers had no outcome row: counted as not converted, "
                     "revenue 0")
    return "\n".join(lines)
