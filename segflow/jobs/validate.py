"""The data-quality gate: GX suites on staged events and customer features.

Frames are read with a read-only connection (GX's SQL path is broken on DuckDB) and validated in pandas.
Results are stored in ``meta.dq_results`` and as JSON under artifacts; a failure raises
:class:`GateFailed` so the Airflow task fails and nothing downstream publishes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from segflow.errors import GateFailed
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect

_DDL = """
create schema if not exists meta;
create table if not exists meta.dq_results (
    as_of timestamp not null,
    suite varchar not null,
    success boolean not null,
    evaluated integer not null,
    failed integer not null,
    rows bigint not null,
    failures varchar,
    result_file varchar,
    validated_at timestamp not null
);
"""


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


def validate(settings: Settings | None = None, as_of: datetime | None = None, raise_on_failure: bool = True
             ) -> GateResult:
    from expectations.runner import provided_columns, validate_frame, write_summary
    from expectations.suites import SUITES

    settings = settings or get_settings()
    parameters = {"min_customers": settings.min_customers, "min_events": settings.min_events,
                  "max_quantity": settings.dq_max_quantity,
                  "max_price": settings.dq_max_price, "min_identified_share": settings.dq_min_identified_share}
    frames = {}
    with connect(settings, read_only=True) as con:
        for name, module in SUITES.items():
            columns = ", ".join(module.COLUMNS) if module.COLUMNS else "*"
            frames[name] = con.execute(f"select {columns} from {module.TABLE}").df()
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
    out_dir = settings.artifacts_dir / "data_quality" / as_of.strftime("%Y-%m-%dT%H%M%S")
    rows = []
    for name, summary in summaries.items():
        path = out_dir / f"{name}.json"
        write_summary(summary, path)
        rows.append((as_of, name, summary.success, summary.evaluated, summary.failed, summary.rows,
                     summary.describe_failures() or None, str(path), datetime.now()))
    with connect(settings) as con:
        con.execute(_DDL)
        con.execute("begin transaction")
        con.execute("delete from meta.dq_results where as_of = ?", [as_of])
        con.executemany("insert into meta.dq_results values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute("commit")
    result = GateResult(as_of=as_of, success=all(s.success for s in summaries.values()),
                        suites={n: {"success": s.success, "evaluated": s.evaluated, "failed": s.failed,
                                    "rows": s.rows, "failures": s.describe_failures()}
                                for n, s in summaries.items()})
    if raise_on_failure and not result.success:
        failed = {n: s["failures"] for n, s in result.suites.items() if not s["success"]}
        raise GateFailed(f"Data-quality gate failed as of {as_of:%Y-%m-%d %H:%M}: {json.dumps(failed)}."
                         f"{_hints(failed, parameters)} Details: {out_dir}")
    return result
