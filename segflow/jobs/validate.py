"""The data-quality gate: GX suites on the run's loads, staged events, sessions, orders, customer profiles
and customer features, plus one row of run metrics (freshness, volume vs the previous run, distributions
learned from history, delivery rates).

Frames are read with a read-only connection (GX's SQL path is broken on DuckDB) and are bounded
(:mod:`segflow.jobs.dq_frames`); run metrics are SQL aggregates (:mod:`segflow.jobs.dq_metrics`). Results go
to ``meta.dq_results`` (one row per suite), ``meta.dq_history`` (one row per run), JSON under
``artifacts/data_quality/<as-of>/`` and GX Data Docs under ``artifacts/data_docs/`` (styled offline). A
failure raises :class:`GateFailed` so the Airflow task fails and nothing downstream publishes.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from segflow.ddl import ensure_schema
from segflow.errors import GateFailed, NotReady
from segflow.jobs.dq_frames import FrameScope, read_frame
from segflow.jobs.dq_metrics import bounds, history, history_row, measure
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect, table_exists
from segflow.warehouse_lock import warehouse_step

log = logging.getLogger("segflow.gate")

# which setting moves the bound of a failed check: (suite, text in its failures) -> setting attribute
_SETTINGS = {
    ("staged_events", "expect_table_row_count_to_be_between"): "min_events",
    ("customer_features", "expect_table_row_count_to_be_between"): "min_customers",
    ("staged_events", "quantity"): "dq_max_quantity",
    ("staged_events", "price"): "dq_max_price",
    ("staged_events", "customer_id"): "dq_min_identified_share",
    ("staged_events", "received_at"): "dq_max_staleness_hours",
    ("staged_events", "occurred_at"): "clock_skew_minutes",
    ("sessions", "duration_seconds"): "max_session_hours",
    ("customer_profiles", "email_shape"): "dq_min_valid_profile_share",
    ("customer_profiles", "age_"): "dq_max_age",
    ("run_metrics", "_in_window"): "dq_max_volume_change",
    ("run_metrics", "purchase_share"): "dq_distribution_tolerance",
    ("run_metrics", "median_"): "dq_distribution_tolerance",
    ("run_metrics", "reject_rate"): "dq_max_reject_rate",
    ("run_metrics", "quarantine_rate"): "dq_max_quarantine_rate",
}


def _hints(failed: dict[str, str], settings: Settings) -> str:
    names = dict.fromkeys(attr for (suite, needle), attr in _SETTINGS.items()
                          if suite in failed and needle in failed[suite])
    hints = [f"SEGFLOW_{attr.upper()} is {getattr(settings, attr)}" for attr in names]
    return f" Thresholds involved: {', '.join(hints)}." if hints else ""


@dataclass
class GateResult:
    as_of: datetime | None
    success: bool
    suites: dict[str, dict]
    notes: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    data_docs: str | None = None

    def as_dict(self) -> dict:
        return {"as_of": self.as_of.isoformat() if self.as_of else None, "success": self.success,
                "suites": self.suites, "notes": self.notes, "metrics": self.metrics, "data_docs": self.data_docs}


def parameters(settings: Settings, as_of: datetime) -> dict:
    """The suites' runtime parameters: business thresholds from settings, time bounds from the run."""
    return {
        "min_customers": settings.min_customers, "min_events": settings.min_events,
        "max_quantity": settings.dq_max_quantity, "max_price": settings.dq_max_price,
        "min_identified_share": settings.dq_min_identified_share,
        "as_of": as_of, "fresh_after": as_of - timedelta(hours=settings.dq_max_staleness_hours),
        "earliest_event": datetime.combine(settings.min_event_date, datetime.min.time()),
        "latest_event": as_of + timedelta(minutes=settings.clock_skew_minutes),
        "max_session_seconds": settings.max_session_hours * 3600,
        "min_age": settings.dq_min_age, "max_age": settings.dq_max_age,
        "min_valid_profile_share": settings.dq_min_valid_profile_share,
    }


def _read(settings: Settings, as_of: datetime | None) -> tuple:
    from expectations.runner import provided_columns
    from expectations.suites import SUITES

    frames, totals = {}, {}
    # the row-count floors stay exact on a sample only while they are below its size
    sample_rows = max(settings.dq_sample_rows, settings.min_events, settings.min_customers)
    with connect(settings, read_only=True) as con:
        if not table_exists(con, "marts", "customer_features"):
            raise NotReady("marts.customer_features does not exist: run `segflow build` first.")
        built = con.execute("select as_of from intermediate.int_run_context").fetchall()[0][0]
        if as_of is not None and as_of != built:
            raise NotReady(f"The warehouse is built as of {built:%Y-%m-%d %H:%M}, not {as_of:%Y-%m-%d %H:%M}: "
                           "run `segflow build --as-of` for that time (or `segflow run`) first.")
        as_of = built
        passing, previous = history(con, as_of, settings.dq_baseline_runs)
        scope = FrameScope(as_of=as_of, since_load_seq=previous["max_load_seq"] if previous else 0,
                           salt=secrets.token_hex(16))
        for name, module in SUITES.items():
            frames[name], totals[name] = read_frame(con, module, sample_rows, settings.random_seed, scope)
        metrics = measure(con, settings, as_of, scope.since_load_seq)
        # which features the sources can produce: sessions need recent interactive events, spend needs orders,
        # and recency (in days) can only vary when activity spans more than one day
        recent_interactive, order_lines, active_days = con.execute(
            "select count(*) filter (where e.is_interactive and e.occurred_at >= c.as_of - to_days(?)), "
            "count(*) filter (where e.is_order_line), count(distinct cast(e.occurred_at as date)) "
            "from intermediate.int_events_stitched e cross join intermediate.int_run_context c",
            [settings.recent_window_days]).fetchall()[0]
    provided = {name: provided_columns(frame) for name, frame in frames.items()}
    provided["customer_features"] = ({"recency_days"} if active_days > 1 else set()) \
        | ({"sessions_28d"} if recent_interactive else set()) | ({"monetary"} if order_lines else set())
    provided["raw_loads"] = None
    return as_of, frames, totals, provided, metrics, passing


@warehouse_step("validate")
def validate(settings: Settings | None = None, as_of: datetime | None = None, raise_on_failure: bool = True
             ) -> GateResult:
    import pandas as pd

    from expectations.runner import validate_suites, write_summary
    from expectations.suites import SUITES, run_metrics

    settings = settings or get_settings()
    as_of, frames, totals, provided, metrics, passing = _read(settings, as_of)
    params = parameters(settings, as_of)
    extra, checked, notes = bounds(metrics, passing, settings)
    params.update(extra)
    batches = {name: (frames[name], partial(module.build_suite, provided[name])) for name, module in SUITES.items()}
    batches[run_metrics.NAME] = (pd.DataFrame([{m: metrics[m] for m in run_metrics.COLUMNS}]),
                                 partial(run_metrics.build_suite, checked))
    docs_dir = settings.artifacts_dir / "data_docs"
    summaries, index = validate_suites(batches, params, docs_dir=docs_dir, run_name=f"{as_of:%Y-%m-%dT%H:%M:%S}")
    for name, summary in summaries.items():
        summary.rows = totals.get(name, summary.rows)  # the relation's rows; validated_rows stays what GX saw
    success = all(s.success for s in summaries.values())
    data_docs = index.as_uri() if index else None
    out_dir = settings.artifacts_dir / "data_quality" / as_of.strftime("%Y-%m-%dT%H%M%S")
    rows = []
    for name, summary in summaries.items():
        path = out_dir / f"{name}.json"
        write_summary(summary, path)
        rows.append((as_of, name, summary.success, summary.evaluated, summary.failed, summary.rows,
                     summary.describe_failures() or None, str(path), datetime.now()))
    evaluated = sum(s.evaluated for s in summaries.values())
    failed_checks = sum(s.failed for s in summaries.values())
    failed = {n: s.describe_failures() for n, s in summaries.items() if not s.success}
    record = history_row(as_of, metrics, success, evaluated, failed_checks, json.dumps(failed) if failed else "",
                         passing[0]["as_of"] if passing else None, len(passing), data_docs)
    with connect(settings) as con:
        ensure_schema(con)
        con.execute("begin transaction")
        con.execute("delete from meta.dq_results where as_of = ?", [as_of])
        con.executemany("insert into meta.dq_results values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute("delete from meta.dq_history where as_of = ?", [as_of])
        con.execute(f"insert into meta.dq_history ({', '.join(record)}) values ({', '.join('?' * len(record))})",
                    list(record.values()))
        con.execute("commit")
    result = GateResult(as_of=as_of, success=success, notes=notes, data_docs=data_docs,
                        metrics={k: v for k, v in record.items() if k not in ("as_of", "validated_at")},
                        suites={n: {"success": s.success, "evaluated": s.evaluated, "failed": s.failed,
                                    "rows": s.rows, "validated_rows": s.validated_rows,
                                    "failures": s.describe_failures()}
                                for n, s in summaries.items()})
    _log(result, evaluated, failed_checks)
    if raise_on_failure and not success:
        raise GateFailed(f"Data-quality gate failed as of {as_of:%Y-%m-%d %H:%M}: {json.dumps(failed)}."
                         f"{_hints(failed, settings)} Data Docs: {data_docs} Details: {out_dir}")
    return result


def _log(result: GateResult, evaluated: int, failed: int) -> None:
    """The task log's short account: verdict, each failing suite with why, what was not compared, the docs."""
    verdict = "PASS" if result.success else "FAIL"
    log.info("Data-quality gate as of %s: %s (%d checks in %d suites, %d failed)", result.as_of, verdict,
             evaluated, len(result.suites), failed)
    for name, suite in result.suites.items():
        if not suite["success"]:
            log.error("  %s: %s", name, suite["failures"])
    for note in result.notes:
        log.info("  note: %s", note)
    log.info("Data Docs: %s", result.data_docs)
