"""The data-quality gate: GX suites on staged events and customer features.

Frames are read with a read-only connection (GX's SQL path is broken on DuckDB) and validated in pandas.
A table larger than ``SEGFLOW_DQ_SAMPLE_ROWS`` is validated on a bounded frame (see :func:`read_frame`), so
the gate's memory does not grow with the history.
Results are stored in ``meta.dq_results`` and as JSON under artifacts; a failure raises
:class:`GateFailed` so the Airflow task fails and nothing downstream publishes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from segflow.ddl import ensure_schema
from segflow.errors import GateFailed
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect
from segflow.warehouse_lock import warehouse_step

if TYPE_CHECKING:
    import pandas as pd



# which setting moves the bound of a failed expectation (business thresholds a deployment may need to change)
_SETTINGS = {
    ("staged_events", "expect_table_row_count_to_be_between"): ("SEGFLOW_MIN_EVENTS", "min_events"),
    ("customer_features", "expect_table_row_count_to_be_between"): ("SEGFLOW_MIN_CUSTOMERS", "min_customers"),
    ("staged_events", "quantity"): ("SEGFLOW_DQ_MAX_QUANTITY", "max_quantity"),
    ("staged_events", "price"): ("SEGFLOW_DQ_MAX_PRICE", "max_price"),
    ("staged_events", "customer_id"): ("SEGFLOW_DQ_MIN_IDENTIFIED_SHARE", "min_identified_share"),
}


def _hints(failed: dict[str, str], parameters: dict) -> str:
    hints = [f"{variable} is {parameters[key]}" for (suite, needle), (variable, key) in _SETTINGS.items()
             if suite in failed and needle in failed[suite]]
    return f" Thresholds involved: {', '.join(hints)}." if hints else ""


@dataclass
class GateResult:
    as_of: datetime | None
    success: bool
    suites: dict[str, dict]

    def as_dict(self) -> dict:
        return {"as_of": self.as_of.isoformat() if self.as_of else None, "success": self.success,
                "suites": self.suites}


def read_frame(con, module, sample_rows: int, seed: int) -> tuple[pd.DataFrame, int]:
    """The rows GX validates, and the table's row count.

    The whole table when it has at most ``sample_rows`` rows. Otherwise a repeatable reservoir sample of
    ``sample_rows`` plus every row that decides a strict check: the minimum and maximum of each range-checked
    column, one row per value of a set-checked column, and rows with nulls in a not-null column. Range, set
    and not-null checks are therefore exact on the whole table; `mostly` shares and standard deviations are
    estimated from the sample; the row-count floor is exact as long as it is below ``sample_rows`` (the caller
    makes sure). Uniqueness of the key over the whole table is a dbt test of the same table.
    """
    columns = ", ".join(module.COLUMNS) if module.COLUMNS else "*"
    table, key = module.TABLE, module.KEY
    total = con.execute(f"select count(*) from {table}").fetchall()[0][0]
    if total <= sample_rows:
        return con.execute(f"select {columns} from {table}").df(), total
    keys = [f"select {key} from (select {key} from {table} using sample reservoir({int(sample_rows)} rows) "
            f"repeatable ({int(seed)})) as sample"]
    for column in module.RANGED:
        keys.append(f"select arg_min({key}, {column}) from {table}")
        keys.append(f"select arg_max({key}, {column}) from {table}")
    for column in module.IN_SET:
        keys.append(f"select min({key}) from {table} group by {column}")
    parts = [f"select {columns} from {table} where {key} in ({' union '.join(keys)})"]
    for column in module.NOT_NULL:
        parts.append(f"(select {columns} from {table} where {column} is null limit 10)")
    return con.execute(" union all ".join(parts)).df(), total


@warehouse_step("validate")
def validate(settings: Settings | None = None, as_of: datetime | None = None, raise_on_failure: bool = True
             ) -> GateResult:
    from expectations.runner import provided_columns, validate_frame, write_summary
    from expectations.suites import SUITES

    settings = settings or get_settings()
    parameters = {"min_customers": settings.min_customers, "min_events": settings.min_events,
                  "max_quantity": settings.dq_max_quantity,
                  "max_price": settings.dq_max_price, "min_identified_share": settings.dq_min_identified_share}
    frames, totals = {}, {}
    # the row-count floors stay exact on a sample only while they are below its size
    sample_rows = max(settings.dq_sample_rows, settings.min_events, settings.min_customers)
    with connect(settings, read_only=True) as con:
        for name, module in SUITES.items():
            frames[name], totals[name] = read_frame(con, module, sample_rows, settings.random_seed)
        if as_of is None:
            as_of = con.execute("select as_of from intermediate.int_run_context").fetchone()[0]
        # which features the sources can produce: sessions need recent interactive events, spend needs orders,
        # and recency (in days) can only vary when activity spans more than one day
        recent_interactive, order_lines, active_days = con.execute(
            "select count(*) filter (where e.is_interactive and e.occurred_at >= c.as_of - to_days(?)), "
            "count(*) filter (where e.is_order_line), count(distinct cast(e.occurred_at as date)) "
            "from intermediate.int_events_stitched e cross join intermediate.int_run_context c",
            [settings.recent_window_days]).fetchone()
    feature_sources = ({"recency_days"} if active_days > 1 else set()) \
        | ({"sessions_28d"} if recent_interactive else set()) | ({"monetary"} if order_lines else set())
    provided = {"staged_events": provided_columns(frames["staged_events"]), "customer_features": feature_sources}
    summaries = {name: validate_frame(frames[name], SUITES[name], parameters, provided[name]) for name in SUITES}
    for name, summary in summaries.items():
        summary.rows = totals[name]  # the table's rows; validated_rows stays what GX saw
    out_dir = settings.artifacts_dir / "data_quality" / as_of.strftime("%Y-%m-%dT%H%M%S")
    rows = []
    for name, summary in summaries.items():
        path = out_dir / f"{name}.json"
        write_summary(summary, path)
        rows.append((as_of, name, summary.success, summary.evaluated, summary.failed, summary.rows,
                     summary.describe_failures() or None, str(path), datetime.now()))
    with connect(settings) as con:
        ensure_schema(con)
        con.execute("begin transaction")
        con.execute("delete from meta.dq_results where as_of = ?", [as_of])
        con.executemany("insert into meta.dq_results values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute("commit")
    result = GateResult(as_of=as_of, success=all(s.success for s in summaries.values()),
                        suites={n: {"success": s.success, "evaluated": s.evaluated, "failed": s.failed,
                                    "rows": s.rows, "validated_rows": s.validated_rows,
                                    "failures": s.describe_failures()}
                                for n, s in summaries.items()})
    if raise_on_failure and not result.success:
        failed = {n: s["failures"] for n, s in result.suites.items() if not s["success"]}
        raise GateFailed(f"Data-quality gate failed as of {as_of:%Y-%m-%d %H:%M}: {json.dumps(failed)}."
                         f"{_hints(failed, parameters)} Details: {out_dir}")
    return result
