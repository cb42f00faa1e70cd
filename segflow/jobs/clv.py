"""Weekly predictive CLV: BG/NBD + Gamma-Gamma fitted on the purchase summary, stored beside historic CLV.

Reads ``marts.customer_purchase_summary`` (frequency, recency and age in weeks, mean repeat value) joined with
``marts.customer_value`` (historic CLV = net revenue to date); both hold analytics-consenting customers only, so
opted-out and erased people never reach the fit. Writes one ``ml.clv_models`` row per as-of (status, estimates,
log-likelihoods, counts, settings, code version) and, for a fitted week, one ``ml.customer_clv`` row per customer.
Re-running a week deletes and rewrites exactly that week's rows. A week with too few repeat customers, a fit that
does not converge or a spend model without a finite mean is recorded with its reason (no customer rows), never a
crash: the segments are published either way. See docs/clv.md.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from segflow.ddl import ensure_schema
from segflow.errors import InputError, NotReady
from segflow.jobs.ml_common import code_version, library_versions, to_naive_utc
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect, table_exists
from segflow.warehouse_lock import warehouse_step

__all__ = ["ClvRun", "fit_clv"]

_SUMMARY_SQL = """
select
    summary.customer_id,
    summary.frequency,
    summary.recency_weeks,
    summary.t_weeks,
    summary.monetary_value,
    summary.calibration_end_date,
    summary.observation_end_date,
    cast(value.net_revenue as double) as historic_clv,
    value.as_of
from marts.customer_purchase_summary as summary
inner join marts.customer_value as value
    on summary.customer_id = value.customer_id
order by summary.customer_id
"""


@dataclass
class ClvRun:
    as_of: datetime
    status: str  # fitted | not_ready | not_converged | failed
    reason: str | None
    customers: int
    repeat_customers: int
    params: dict = field(default_factory=dict)
    totals: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"as_of": self.as_of.isoformat(), "status": self.status, "reason": self.reason,
                "customers": self.customers, "repeat_customers": self.repeat_customers,
                "params": {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.params.items()},
                "totals": self.totals}


def _summary(settings: Settings, as_of: datetime | None) -> tuple[pd.DataFrame, datetime]:
    with connect(settings, read_only=True) as con:
        for table in ("customer_purchase_summary", "customer_value"):
            if not table_exists(con, "marts", table):
                raise NotReady(f"marts.{table} does not exist: run `segflow build` first.")
        frame = con.execute(_SUMMARY_SQL).df()
        built = con.execute("select max(as_of) from marts.customer_value").fetchone()[0]
    if built is None:
        raise NotReady("marts.customer_value is empty: no customer has ordered yet, nothing to value.")
    built = pd.Timestamp(built).to_pydatetime()
    if as_of is not None and built != as_of:
        raise NotReady(f"the marts are built as of {built:%Y-%m-%d %H:%M}, not {as_of:%Y-%m-%d %H:%M}: run the ELT "
                       "(segflow run / DAG segflow_elt) for that interval first.")
    if not frame.empty and (frame["calibration_end_date"] != frame["observation_end_date"]).any():
        raise InputError("SEGFLOW_CLV_CALIBRATION_END is set, so customer_purchase_summary holds a calibration/"
                         "holdout split (for evaluation) instead of the whole history: unset it and rebuild before "
                         "`segflow clv`.")
    return frame, built


def _model_row(run: ClvRun, frame: pd.DataFrame, settings: Settings, extra: dict) -> dict:
    fingerprint = hashlib.sha256(pd.util.hash_pandas_object(
        frame[["customer_id", "frequency", "recency_weeks", "t_weeks", "monetary_value"]], index=False)
        .values.tobytes()).hexdigest()
    observation_end = frame["observation_end_date"].iloc[0] if len(frame) else None
    row = {"as_of": run.as_of, "status": run.status, "reason": run.reason, "customer_count": run.customers,
           "repeat_customer_count": run.repeat_customers, "spend_customer_count": None,
           "r": None, "alpha": None, "a": None, "b": None, "bgnbd_log_likelihood": None,
           "p": None, "q": None, "gamma": None, "gamma_gamma_log_likelihood": None, "converged": None,
           "spend_frequency_correlation": None, "horizon_weeks": settings.clv_horizon_weeks,
           "annual_discount_rate": settings.clv_annual_discount_rate, "margin": settings.clv_margin,
           "observation_end_date": observation_end, "data_fingerprint": fingerprint,
           "code_version": code_version(), "library_versions": json.dumps(library_versions()),
           "fit_seconds": None, "created_at": datetime.now()}
    row.update(extra)
    return row


def _fit(frame: pd.DataFrame, settings: Settings, run: ClvRun) -> tuple[dict, pd.DataFrame | None]:
    """Fit both models and predict; returns the ml.clv_models fields and the customer rows (None unless fitted)."""
    from ml.clv import BetaGeoFitter, GammaGammaFitter, horizon_purchases

    x = frame["frequency"].to_numpy(dtype=np.float64)
    t_x = frame["recency_weeks"].to_numpy(dtype=np.float64)
    big_t = frame["t_weeks"].to_numpy(dtype=np.float64)
    zbar = frame["monetary_value"].to_numpy(dtype=np.float64)
    started = time.perf_counter()
    purchases = BetaGeoFitter().fit(x, t_x, big_t)
    # a repeat customer whose repeat purchases were all free says nothing the spend model can use (log 0): it is
    # left out of the spend fit and valued at the population's expected spend, like a customer without repeats
    priced = (x > 0) & (zbar > 0)
    spend_x = np.where(priced, x, 0.0)
    extra = {**{k: purchases.params_[k] for k in ("r", "alpha", "a", "b")},
             "bgnbd_log_likelihood": purchases.log_likelihood_, "converged": purchases.converged_,
             "spend_customer_count": int(priced.sum())}
    run.params = {**purchases.params_}
    if priced.sum() >= 2:
        if np.ptp(x[priced]) > 0 and np.ptp(zbar[priced]) > 0:
            extra["spend_frequency_correlation"] = float(np.corrcoef(x[priced], zbar[priced])[0, 1])
        spend = GammaGammaFitter().fit(spend_x, np.where(priced, zbar, 0.0))
        extra.update({"p": spend.p_, "q": spend.q_, "gamma": spend.gamma_,
                      "gamma_gamma_log_likelihood": spend.log_likelihood_,
                      "converged": purchases.converged_ and spend.converged_})
        run.params.update(spend.params_)
    else:
        spend = None
    if not extra["converged"]:
        run.status, run.reason = "not_converged", "the maximum-likelihood search did not converge"
        extra["fit_seconds"] = time.perf_counter() - started
        return extra, None
    if spend is None or spend.q_ <= 1:
        run.status = "failed"
        run.reason = ("fewer than 2 repeat customers with a positive spend" if spend is None else
                      f"the fitted spend distribution has no finite mean (Gamma-Gamma q = {spend.q_:.3f} <= 1)")
        extra["fit_seconds"] = time.perf_counter() - started
        return extra, None
    edge = sorted(k for k, v in run.params.items() if not 1e-4 < v < 1e4)
    if edge:  # a limit the data cannot pin down (e.g. no dropout seen yet, spend constant within a customer)
        run.reason = f"estimates at the edge of the parameter space: {', '.join(edge)}"
    try:
        expected_spend = spend.conditional_expected_spend(spend_x, np.where(priced, zbar, 0.0))
        expected, discounted = horizon_purchases(purchases, x, t_x, big_t, horizon_weeks=settings.clv_horizon_weeks,
                                                 annual_discount_rate=settings.clv_annual_discount_rate)
        alive = purchases.probability_alive(x, t_x, big_t)
    except ValueError as exc:  # e.g. a = 1 exactly, where the closed form is 0/0
        run.status, run.reason = "failed", f"predictions impossible with these estimates: {exc}"
        extra["fit_seconds"] = time.perf_counter() - started
        return extra, None
    extra["fit_seconds"] = time.perf_counter() - started
    customers = pd.DataFrame({
        "as_of": run.as_of, "customer_id": frame["customer_id"], "expected_purchases": expected,
        "probability_alive": alive, "expected_avg_spend": expected_spend,
        "predictive_clv": settings.clv_margin * expected_spend * discounted, "historic_clv": frame["historic_clv"]})
    run.totals = {"expected_purchases": round(float(expected.sum()), 2),
                  "predictive_clv": round(float(customers["predictive_clv"].sum()), 2),
                  "historic_clv": round(float(customers["historic_clv"].sum()), 2),
                  "mean_probability_alive": round(float(customers["probability_alive"].mean()), 4)}
    return extra, customers


@warehouse_step("clv: fit")
def fit_clv(settings: Settings | None = None, as_of: datetime | None = None) -> ClvRun:
    """Fit BG/NBD + Gamma-Gamma on the week's purchase summary and store ml.clv_models / ml.customer_clv."""
    settings = settings or get_settings()
    frame, as_of = _summary(settings, to_naive_utc(as_of))
    repeat = int((frame["frequency"] > 0).sum())
    run = ClvRun(as_of=as_of, status="fitted", reason=None, customers=len(frame), repeat_customers=repeat)
    customers = None
    extra: dict = {}
    if repeat < settings.clv_min_repeat_customers:
        run.status = "not_ready"
        run.reason = (f"{repeat} customers with a repeat purchase, fewer than SEGFLOW_CLV_MIN_REPEAT_CUSTOMERS = "
                      f"{settings.clv_min_repeat_customers}: too little history to fit purchase and spend models")
    else:
        extra, customers = _fit(frame, settings, run)
    row = _model_row(run, frame, settings, extra)
    with connect(settings) as con:
        ensure_schema(con)
        con.execute("begin transaction")
        con.execute("delete from ml.clv_models where as_of = ?", [as_of])
        con.execute("delete from ml.customer_clv where as_of = ?", [as_of])
        con.execute(f"insert into ml.clv_models ({', '.join(row)}) values ({', '.join('?' * len(row))})",
                    list(row.values()))
        if customers is not None:
            con.register("_customer_clv", customers)
            con.execute("insert into ml.customer_clv by name select * from _customer_clv")
            con.unregister("_customer_clv")
        con.execute("commit")
    return run
