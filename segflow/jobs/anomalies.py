"""Weekly anomaly detection: score every customer's traffic, flag the non-human / unusual ones, say why.

``detect_anomalies(settings, as_of)`` reads the week's customers (``marts.customer_features``, which must be
built as of that week) and their sessions of the last ``SEGFLOW_ANOMALY_WINDOW_DAYS`` (``marts.fct_sessions``),
computes a few traffic features chosen for what they mean, fits :class:`ml.anomaly.AnomalyDetector` (isolation
forest + local outlier factor on robust z-scores, flagged by a contamination-free rule) and writes
``ml.anomaly_runs`` (one row per week) and ``ml.customer_anomalies`` (one row per customer: both scores, the
flag, the reasons). Re-running a week deletes and rewrites exactly that week's rows. No ground truth is read.

Flagged customers stay out of marketing: :func:`exclude_flagged` drops them from the week's features frame before
reclustering (segflow.jobs.segment) and from the segment export (segflow.jobs.publish_segments).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from segflow.ddl import ensure_schema
from segflow.errors import NotReady
from segflow.jobs.ml_common import code_version, library_versions, resolve_as_of, to_naive_utc
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect, table_exists
from segflow.warehouse_lock import warehouse_step

# what each feature says about a customer; all measured over the window's sessions
FEATURES = {
    "events_per_session": "mean events per session (crawlers request many pages per visit)",
    "events_per_minute": "events per minute of session time (cadence; people read, scripts do not)",
    "sessions_in_window": "sessions in the window",
    "other_device_share": "share of sessions from a device that is no desktop, phone or tablet (TV, console, "
                          "headless browser, crawler)",
    "cart_session_share": "share of sessions with an add-to-cart",
    "purchase_session_share": "share of sessions with a purchase",
}


@dataclass
class AnomalyRun:
    run_id: str
    as_of: datetime
    customers: int
    flagged: int
    top_flagged: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"run_id": self.run_id, "as_of": self.as_of.isoformat(), "customers": self.customers,
                "flagged": self.flagged, "top_flagged": self.top_flagged}


def traffic_features(con, as_of: datetime, settings: Settings) -> pd.DataFrame:
    """One row per customer of ``marts.customer_features``: the traffic features (null without sessions)."""
    return con.execute("""
        with

        customers as (
            select customer_id from marts.customer_features
        ),

        sessions as (
            select * from marts.fct_sessions
            where customer_id is not null
              and started_at >= ?::timestamp - to_days(?) and started_at < ?
        ),

        per_customer as (
            select
                customer_id,
                count(*) as sessions_in_window,
                avg(event_count) as events_per_session,
                sum(event_count - 1) as gaps,
                sum(duration_seconds) / 60.0 as minutes,
                avg(case when device_type = 'other' then 1.0 else 0.0 end) as other_device_share,
                avg(case when has_cart_add then 1.0 else 0.0 end) as cart_session_share,
                avg(case when has_purchase then 1.0 else 0.0 end) as purchase_session_share
            from sessions
            group by customer_id
        )

        select
            customers.customer_id,
            per_customer.events_per_session,
            case when per_customer.gaps >= ? and per_customer.minutes > 0
                then per_customer.gaps / per_customer.minutes end as events_per_minute,
            per_customer.sessions_in_window,
            per_customer.other_device_share,
            per_customer.cart_session_share,
            per_customer.purchase_session_share
        from customers
        left join per_customer
            on customers.customer_id = per_customer.customer_id
        order by customers.customer_id
    """, [as_of, settings.anomaly_window_days, as_of, settings.anomaly_min_cadence_gaps]).df()


def _load(settings: Settings, as_of: datetime | None) -> tuple[pd.DataFrame, datetime]:
    with connect(settings, read_only=True) as con:
        for table in ("customer_features", "fct_sessions"):
            if not table_exists(con, "marts", table):
                raise NotReady(f"marts.{table} does not exist: run `segflow build` first.")
        built = con.execute("select max(as_of), count(*) from marts.customer_features").fetchone()
        if not built[1]:
            raise NotReady("marts.customer_features is empty: nobody to score.")
        built_as_of = pd.Timestamp(built[0]).to_pydatetime()
        if as_of is not None and built_as_of != as_of:
            raise NotReady(f"customer_features is built as of {built_as_of:%Y-%m-%d %H:%M}, not "
                           f"{as_of:%Y-%m-%d %H:%M}: run the ELT (segflow run / DAG segflow_elt) for that interval "
                           "first.")
        return traffic_features(con, built_as_of, settings), built_as_of


def make_detector(settings: Settings):
    from ml.anomaly import AnomalyDetector

    return AnomalyDetector(
        n_estimators=settings.anomaly_trees, max_samples=settings.anomaly_tree_samples,
        isolation_threshold=settings.anomaly_isolation_threshold, n_neighbors=settings.anomaly_density_neighbors,
        density_sample=settings.anomaly_density_sample, density_threshold=settings.anomaly_density_threshold,
        rule=settings.anomaly_rule, min_unusual_features=settings.anomaly_min_unusual_features,
        unusual_z=settings.anomaly_unusual_z, random_state=settings.random_seed)


def _reasons(z: np.ndarray, raw: np.ndarray, medians: np.ndarray, settings: Settings) -> list[str | None]:
    """JSON reasons per row (None when no feature is unusual): feature, value, population median, robust z."""
    from ml.anomaly import top_reasons

    names = list(FEATURES)
    index = {n: j for j, n in enumerate(names)}
    out: list[str | None] = [None] * len(z)
    rows = np.flatnonzero(np.abs(z).max(axis=1) >= settings.anomaly_unusual_z)
    for row, reasons in zip(rows, top_reasons(z[rows], names, top=settings.anomaly_reasons,
                                               min_abs_z=settings.anomaly_unusual_z), strict=True):
        for r in reasons:
            j = index[r["feature"]]
            r["value"] = None if np.isnan(raw[row, j]) else round(float(raw[row, j]), 4)
            r["median"] = round(float(medians[j]), 4)
        out[row] = json.dumps(reasons) if reasons else None
    return out


@warehouse_step("anomalies: detect")
def detect_anomalies(settings: Settings | None = None, as_of: datetime | None = None) -> AnomalyRun:
    """Score the week's customers, flag anomalies, store scores and reasons (idempotent per week)."""
    from ml.features import feature_matrix

    settings = settings or get_settings()
    frame, as_of = _load(settings, to_naive_utc(as_of))
    names = list(FEATURES)
    X = feature_matrix(frame, names)
    detector = make_detector(settings).fit(X)
    details = detector.score_details(X)
    flagged = details["margin"] < 0
    medians = detector.preprocessor_.named_steps["impute"].statistics_
    fingerprint = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).values.tobytes()).hexdigest()
    run_id = f"anom-{as_of:%Y%m%d}-{fingerprint[:8]}"
    scores = pd.DataFrame({
        "as_of": as_of, "run_id": run_id, "customer_id": frame["customer_id"],
        "isolation_score": details["isolation"].round(6), "density_score": details["density"].round(6),
        "max_abs_z": np.abs(details["robust_z"]).max(axis=1).round(3), "is_flagged": flagged,
        "reasons": _reasons(details["robust_z"], X, medians, settings)})
    params = {k: v for k, v in detector.get_params().items()}
    params.update(window_days=settings.anomaly_window_days, min_cadence_gaps=settings.anomaly_min_cadence_gaps,
                  reasons=settings.anomaly_reasons, preprocessing="median impute -> signed log1p -> robust z")
    with connect(settings) as con:
        ensure_schema(con)
        con.execute("begin transaction")
        con.execute("delete from ml.anomaly_runs where as_of = ?", [as_of])
        con.execute("delete from ml.customer_anomalies where as_of = ?", [as_of])
        con.execute("insert into ml.anomaly_runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            as_of, run_id, len(frame), int(flagged.sum()), settings.anomaly_exclude_from_segments,
            json.dumps(FEATURES), json.dumps(params, default=str),
            json.dumps({n: round(float(m), 4) for n, m in zip(names, medians, strict=True)}),
            code_version(), json.dumps(library_versions()), datetime.now()])
        con.register("_scores", scores)
        con.execute("insert into ml.customer_anomalies by name select * from _scores")
        con.execute("commit")
    top = scores[flagged].sort_values("isolation_score", ascending=False).head(10)
    return AnomalyRun(run_id=run_id, as_of=as_of, customers=len(frame), flagged=int(flagged.sum()),
                      top_flagged=[{"customer_id": r.customer_id, "reasons": json.loads(r.reasons or "[]")}
                                   for r in top.itertuples()])


def flagged_customers(settings: Settings, as_of: datetime) -> set[str] | None:
    """Customers flagged for ``as_of``; None when the anomaly step did not run for that week."""
    with connect(settings, read_only=True) as con:
        if not table_exists(con, "ml", "anomaly_runs") or not con.execute(
                "select count(*) from ml.anomaly_runs where as_of = ?", [as_of]).fetchone()[0]:
            return None
        return {c for (c,) in con.execute("select customer_id from ml.customer_anomalies where as_of = ? and "
                                          "is_flagged", [as_of]).fetchall()}


def exclude_flagged(settings: Settings, frame: pd.DataFrame, as_of: datetime) -> tuple[pd.DataFrame, int | None]:
    """``frame`` without the customers flagged for ``as_of``, and how many were dropped (None: the anomaly step did
    not run for that week, or SEGFLOW_ANOMALY_EXCLUDE_FROM_SEGMENTS is off - nobody is dropped)."""
    if not settings.anomaly_exclude_from_segments:
        return frame, None
    flagged = flagged_customers(settings, as_of)
    if flagged is None:
        return frame, None
    keep = ~frame["customer_id"].isin(flagged)
    return frame[keep].reset_index(drop=True), int((~keep).sum())


def list_anomalies(settings: Settings | None = None, as_of: datetime | None = None) -> dict:
    """The week's flagged customers with scores and reasons (latest scored week by default)."""
    settings = settings or get_settings()
    with connect(settings, read_only=True) as con:
        as_of = resolve_as_of(con, "anomaly_runs", to_naive_utc(as_of),
                              "No anomaly run yet: run `segflow anomalies` first.")
        run = con.execute("select run_id, customer_count, flagged_count from ml.anomaly_runs where as_of = ?",
                          [as_of]).fetchall()
        if not run:
            raise NotReady(f"No anomaly run as of {as_of}: run `segflow anomalies --as-of ...` first.")
        rows = con.execute("select customer_id, isolation_score, density_score, reasons from ml.customer_anomalies "
                           "where as_of = ? and is_flagged order by isolation_score desc, customer_id",
                           [as_of]).fetchall()
    return {"as_of": as_of.isoformat(), "run_id": run[0][0], "customers": run[0][1], "flagged": run[0][2],
            "anomalies": [{"customer_id": c, "isolation_score": round(i, 4), "density_score": round(d, 2),
                           "reasons": json.loads(r or "[]")} for c, i, d, r in rows]}
