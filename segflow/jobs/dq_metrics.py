"""The data-quality gate's run metrics and history (``meta.dq_history``, one row per gate run).

Every number is an aggregate computed by DuckDB over whole tables (bounded memory), measured relative to the
run's as-of, never the wall clock:

* **window** (the ``SEGFLOW_DQ_WINDOW_DAYS`` before the as-of): events received, sessions started, orders
  placed, the share of order lines among the events, the median session length and order value, and the
  hours from the newest event received to the as-of (freshness);
* **delivery** (loads since the previous gate run, by ``load_seq``): rows delivered, the shares rejected at
  load, dropped as exact re-deliveries (duplicate rate) and quarantined by staging, per reason;
* **state** (as of the run): missing values of the fields segmentation uses (event customer and channel;
  profile e-mail, signup, country, age band; only fields the sources provide), and the outlier rate: the
  share of customers with a segmentation feature beyond ``SEGFLOW_DQ_OUTLIER_IQR`` interquartile ranges
  outside the quartiles, on the signed-log scale the clustering sees (features whose quartiles coincide are
  skipped).

:func:`bounds` turns the history into the ``run_metrics`` suite's bounds: volumes against the previous
passing run, distributions against a band learned from earlier passing runs, with a note for every metric it
could not compare.
"""

from __future__ import annotations

import json
import statistics
from datetime import datetime, timedelta

from segflow.settings import Settings
from segflow.warehouse import table_exists

# learned metric -> the count it is measured on (too few rows make it noise)
LEARNED_BASIS = {"purchase_share": "events_in_window", "median_session_minutes": "sessions_in_window",
                 "median_order_value": "orders_in_window"}
VOLUMES = ("events_in_window", "sessions_in_window", "orders_in_window")
PROFILE_FIELDS = ("email_hash", "signup_at", "country", "age_band")


def _one(con, sql: str, params: list | None = None) -> tuple:
    return con.execute(sql, params or []).fetchall()[0]


def _share(part, whole) -> float | None:
    return float(part) / float(whole) if whole else None


def measure(con, settings: Settings, as_of: datetime, since_load_seq: int) -> dict:
    """Every metric of the run (see the module docstring)."""
    start = as_of - timedelta(days=settings.dq_window_days)
    m: dict = {"window_days": settings.dq_window_days}
    events, order_lines, no_customer, no_channel, has_channel = _one(con, """
        select count(*), count(*) filter (where is_order_line), count(*) filter (where customer_id is null),
               count(*) filter (where channel is null), count(channel)
        from intermediate.int_events_stitched where received_at >= ? and received_at < ?""", [start, as_of])
    newest, = _one(con, "select max(received_at) from intermediate.int_events_stitched where received_at < ?",
                   [as_of])
    m["events_in_window"] = int(events)
    m["purchase_share"] = _share(order_lines, events)
    m["hours_since_last_event"] = round((as_of - newest).total_seconds() / 3600, 3) if newest else None
    sessions, median_seconds = _one(con, "select count(*), median(duration_seconds) from marts.fct_sessions "
                                    "where started_at >= ? and started_at < ?", [start, as_of])
    m["sessions_in_window"] = int(sessions)
    m["median_session_minutes"] = float(median_seconds) / 60 if median_seconds is not None else None
    orders, median_value = _one(con, "select count(*), median(revenue) from marts.fct_orders "
                                "where ordered_at >= ? and ordered_at < ?", [start, as_of])
    m["orders_in_window"] = int(orders)
    m["median_order_value"] = float(median_value) if median_value is not None else None
    m.update(_delivery(con, since_load_seq))
    missing = {"events.customer_id": _share(no_customer, events)}
    if has_channel:
        missing["events.channel"] = _share(no_channel, events)
    missing.update(_profile_missing(con))
    missing = {k: round(v, 6) for k, v in missing.items() if v is not None}
    m["missing_by_field"] = missing
    m["missing_pct"] = round(100 * statistics.fmean(missing.values()), 4) if missing else None
    m["customers"], m["outlier_rate"] = _outliers(con, settings)
    return m


def _delivery(con, since_load_seq: int) -> dict:
    files, rows_in, loaded, rejected, max_seq = _one(con, """
        select count(*), coalesce(sum(coalesce(rows_in_file, rows_loaded + rows_rejected)), 0),
               coalesce(sum(rows_loaded), 0),
               coalesce(sum(rows_rejected), 0), max(load_seq)
        from meta.load_manifest where load_seq > ?""", [since_load_seq])
    runs_loads = "select load_id from meta.load_manifest where load_seq > ?"
    duplicates = 0
    if table_exists(con, "staging", "stg_raw__events_duplicates"):
        duplicates, = _one(con, f"select count(*) from staging.stg_raw__events_duplicates where _load_id in "
                                f"({runs_loads})", [since_load_seq])
    quarantine: dict[str, int] = {}
    views = [t for (t,) in con.execute(
        "select table_name from information_schema.tables where table_schema = 'staging' "
        "and table_name like 'stg\\_raw\\_\\_%\\_quarantine' escape '\\' order by 1").fetchall()]
    for view in views:
        for reason, count in con.execute(
                f"select quarantine_reason, count(*) from staging.{view} where _load_id in ({runs_loads}) "
                "group by 1", [since_load_seq]).fetchall():
            quarantine[reason] = quarantine.get(reason, 0) + count
    return {
        "files_loaded": int(files), "rows_delivered": int(rows_in), "rows_loaded": int(loaded),
        "max_load_seq": int(max_seq) if max_seq is not None else int(since_load_seq),
        "reject_rate": _share(rejected, rows_in),
        "duplicate_rate": _share(duplicates, loaded),
        "quarantine_rate": _share(sum(quarantine.values()), loaded),
        "quarantine_by_reason": {r: round(c / loaded, 6) for r, c in sorted(quarantine.items())} if loaded else {},
    }


def _profile_missing(con) -> dict[str, float | None]:
    if not table_exists(con, "intermediate", "int_customer_profiles"):
        return {}
    row = _one(con, "select count(*), " + ", ".join(f"count({f})" for f in PROFILE_FIELDS)
               + " from intermediate.int_customer_profiles")
    total = row[0]
    # a field no profile has is not delivered by the sources: not "missing"
    return {f"profiles.{f}": _share(total - present, total) for f, present in zip(PROFILE_FIELDS, row[1:],
                                                                                  strict=True) if present}


def _outliers(con, settings: Settings) -> tuple[int, float | None]:
    present = {c for (c,) in con.execute(
        "select column_name from information_schema.columns where table_schema = 'marts' "
        "and table_name = 'customer_features'").fetchall()}
    features = [f for f in settings.features if f in present]
    customers, = _one(con, "select count(*) from marts.customer_features")
    if not features or not customers:
        return int(customers), None
    scaled = {f: f"(sign({f}) * ln(1 + abs({f})))" for f in features}  # the scale the clustering sees
    quartiles = _one(con, "select " + ", ".join(
        f"quantile_cont({scaled[f]}, 0.25), quantile_cont({scaled[f]}, 0.75)" for f in features)
        + " from marts.customer_features")
    k = settings.dq_outlier_iqr
    rules = []
    for i, feature in enumerate(features):
        q1, q3 = quartiles[2 * i], quartiles[2 * i + 1]
        if q1 is None or q3 is None or q3 <= q1:
            continue
        iqr = q3 - q1
        rules.append(f"{scaled[feature]} not between {q1 - k * iqr!r} and {q3 + k * iqr!r}")
    if not rules:
        return int(customers), 0.0
    outliers, = _one(con, f"select count(*) from marts.customer_features where {' or '.join(rules)}")
    return int(customers), outliers / customers


def history(con, as_of: datetime, limit: int) -> tuple[list[dict], dict | None]:
    """The latest ``limit`` passing runs before ``as_of`` (newest first), and the latest run before it at all."""
    if not table_exists(con, "meta", "dq_history"):
        return [], None
    cursor = con.execute("select * from meta.dq_history where as_of < ? order by as_of desc", [as_of])
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    return [r for r in rows if r["success"]][:limit], (rows[0] if rows else None)


def _round(value: float) -> float:
    return float(f"{value:.6g}")  # readable bounds in Data Docs; far finer than any tolerance


def bounds(current: dict, passing: list[dict], settings: Settings) -> tuple[dict, set[str], list[str]]:
    """``run_metrics`` parameters (``<metric>_min``/``_max``), the metrics that get checked, and notes on
    what was not compared."""
    params: dict = {}
    checked: set[str] = set()
    notes: list[str] = []
    floor = settings.dq_min_rows_for_comparison
    for rate, limit in (("reject_rate", settings.dq_max_reject_rate),
                        ("quarantine_rate", settings.dq_max_quarantine_rate)):
        if current.get(rate) is not None:
            params[f"{rate}_min"], params[f"{rate}_max"] = 0.0, limit
            checked.add(rate)
    if not passing:
        notes.append("first run (no earlier passing gate run): volume change and learned distributions "
                     "not compared")
        return params, checked, notes
    reference = passing[0]
    change = settings.dq_max_volume_change
    for metric in VOLUMES:
        before = reference.get(metric)
        if before is None or before < floor:
            notes.append(f"{metric}: not compared (the run as of {reference['as_of']} had {before}, "
                         f"fewer than SEGFLOW_DQ_MIN_ROWS_FOR_COMPARISON={floor})")
            continue
        params[f"{metric}_min"], params[f"{metric}_max"] = _round(before * (1 - change)), _round(before * (1 + change))
        checked.add(metric)
    tolerance = settings.dq_distribution_tolerance
    for metric, basis in LEARNED_BASIS.items():
        values = [r[metric] for r in passing if r.get(metric) is not None and (r.get(basis) or 0) >= floor]
        if not values:
            notes.append(f"{metric}: not compared (no earlier passing run with {floor}+ {basis})")
            continue
        if current.get(basis, 0) < floor:
            notes.append(f"{metric}: not compared ({basis} is {current.get(basis)}, fewer than {floor})")
            continue
        centre = statistics.median(values)
        spread = statistics.median(abs(v - centre) for v in values) * 1.4826
        half = max(tolerance * abs(centre), 3 * spread)
        params[f"{metric}_min"], params[f"{metric}_max"] = _round(centre - half), _round(centre + half)
        checked.add(metric)
    return params, checked, notes


def history_row(as_of: datetime, metrics: dict, success: bool, evaluated: int, failed: int, failures: str,
                reference_as_of: datetime | None, baseline_runs: int, data_docs: str | None) -> dict:
    """The ``meta.dq_history`` row of a run (column order of the DDL)."""
    return {
        "as_of": as_of, "success": success, "checks_evaluated": evaluated, "checks_passed": evaluated - failed,
        "checks_failed": failed, "failures": failures or None, "window_days": metrics["window_days"],
        "events_in_window": metrics["events_in_window"], "sessions_in_window": metrics["sessions_in_window"],
        "orders_in_window": metrics["orders_in_window"], "hours_since_last_event": metrics["hours_since_last_event"],
        "purchase_share": metrics["purchase_share"], "median_session_minutes": metrics["median_session_minutes"],
        "median_order_value": metrics["median_order_value"], "reference_as_of": reference_as_of,
        "baseline_runs": baseline_runs, "files_loaded": metrics["files_loaded"],
        "rows_delivered": metrics["rows_delivered"], "rows_loaded": metrics["rows_loaded"],
        "reject_rate": metrics["reject_rate"], "duplicate_rate": metrics["duplicate_rate"],
        "quarantine_rate": metrics["quarantine_rate"],
        "quarantine_by_reason": json.dumps(metrics["quarantine_by_reason"]),
        "missing_pct": metrics["missing_pct"], "missing_by_field": json.dumps(metrics["missing_by_field"]),
        "outlier_rate": metrics["outlier_rate"], "customers": metrics["customers"],
        "max_load_seq": metrics["max_load_seq"], "data_docs": data_docs, "validated_at": datetime.now(),
    }
