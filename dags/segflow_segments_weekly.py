"""
### segflow_segments_weekly — anomalies, recluster, drift, CLV, monitoring, publish (weekly, on the features asset)

Triggered when `segflow_elt` closes a week (asset `segflow://warehouse/customer_features/weekly`), or early
by `segflow_elt`'s daily drift screen (`trigger_recluster`, conf `as_of` = that day; see `ml.recluster_triggers`).
The week (`as_of`) comes from, in order: the `as_of` param of a manual run, the triggering asset event,
the run's logical date.

1. **detect_anomalies** — isolation forest + local outlier factor on every customer's traffic features
   (cadence, events per session, device, carts, purchases); customers both detectors flag are listed with
   their reasons in `ml.customer_anomalies` (`segflow anomalies --list`) and kept out of the segments.
2. **recluster** — without the flagged customers: customer_features + engagement + activity trend
   (docs/segmentation.md); algorithm
   (k-means / Gaussian mixture) and k chosen by silhouette, Davies-Bouldin, Calinski-Harabasz and bootstrap
   stability, keeping last week's choice unless the evidence is clear; ids kept while member overlap and
   anchored centroids hold, splits / merges / births / deaths in `ml.segment_lineage`, customer flows in
   `ml.segment_transitions`; unique names with the rule behind them; hybrid rule segments from
   `rule_segments.yml`; model run recorded with code version, data fingerprint, params and every candidate's
   scores.
2b. **register_model** — the week's model version (segmentation pipeline + grid-searched assignment
   classifier, joblib under `$SEGFLOW_HOME/models/<version>/`) is recorded in `ml.model_registry` and promoted
   to champion only when every quality floor holds (silhouette, stability vs the champion, smallest segment,
   classifier macro-F1); otherwise the champion stays, scores the week's customers (what publish exports) and an
   alert says why (docs/model-registry.md).
3. **segment_kpis** — per-segment conversion, AOV, revenue per customer and share, retention and churn with
   confidence intervals, and how strongly the segments separate them (chi-square / Kruskal–Wallis), written to
   `ml.segment_kpis` and `ml.segment_separation` (docs/business-metrics.md). Runs beside drift; publication does
   not wait for it.
4. **check_drift** — per feature (calendar-driven ones excluded) PSI on pinned bins and KS, against last week
   and the fixed baseline; segment shares (chi-square); each segment's cohort; all p-values corrected together
   (Holm), drift only when significant and PSI above the floor; centroid shift and silhouette trend warn.
   A drift verdict alerts (log + webhook). Stored in `ml.drift_runs` / `ml.drift_metrics` / `ml.drift_bins`.
5. **fit_clv** — BG/NBD + Gamma-Gamma on `marts.customer_purchase_summary`: each customer's expected
   purchases over `SEGFLOW_CLV_HORIZON_WEEKS`, probability alive, expected spend, predictive and historic CLV
   (`ml.customer_clv`), the fit in `ml.clv_models`. Too few repeat customers or a fit that does not converge is
   recorded there (status and reason) and does not stop the publication.
6. **monitor_segments** — SPC control charts (Western Electric rules 1-4) on each segment's weekly size,
   conversion, AOV, revenue and sessions, STL trend breaks in its daily sessions: `ml.segment_kpi_series`,
   `ml.spc_signals`, `ml.trend_breaks`. See docs/drift.md.
7. **publish** — exports the segments only if the week's data gate passed and the model met the quality
   floor; otherwise the task fails, the last good export stays, and an alert is logged and sent to
   `SEGFLOW_ALERT_WEBHOOK_URL` if set.
8. **activate** — sends the week's delta (who entered / left / moved segment since the previous publication,
   with its campaign action) to the CRM sink at `SEGFLOW_SINK_URL` (docs/activation.md); without a sink it only
   reports. It reads the published files, not the warehouse (no pool). Dead-lettered batches fail the task.
9. **write_report** — once the steps above are done (also when publication was refused: the report says so),
   the week's static HTML report (plots of the model choice, profiles, flow, drift, SPC, anomalies, CLV, funnel,
   paths) in `$SEGFLOW_HOME/reports/weekly/segments_<date>.html` and `latest.html`; the task's **Weekly report**
   button opens it (docs/report.md).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, task

from segflow.airflow_tasks import report_task, warehouse_task
from segflow.orchestration import (
    DEFAULT_ARGS,
    WEEKLY_FEATURES_URI,
    alert_on_failure,
    fail_fast_on_user_errors,
)

WEEKLY_FEATURES = Asset(WEEKLY_FEATURES_URI)


@dag(
    dag_id="segflow_segments_weekly",
    schedule=[WEEKLY_FEATURES],
    start_date=pendulum.datetime(2025, 9, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={"as_of": Param(None, type=["null", "string"],
                           description="Week to (re)segment, e.g. 2025-10-27T00:00:00 (default: from trigger)")},
    tags=["segflow", "ml", "segments"],
    doc_md=__doc__,
)
def segflow_segments_weekly():
    @task
    def resolve_as_of(params=None, triggering_asset_events=None, logical_date=None) -> str | None:
        if params and params.get("as_of"):
            return params["as_of"]
        if triggering_asset_events:
            extras = [event.extra.get("as_of") for event in triggering_asset_events[WEEKLY_FEATURES]
                      if event.extra and event.extra.get("as_of")]
            if extras:
                return max(extras)
        if logical_date is not None:
            return logical_date.in_timezone("UTC").strftime("%Y-%m-%dT%H:%M:%S")
        return None

    @warehouse_task
    @fail_fast_on_user_errors
    def detect_anomalies(as_of: str | None) -> dict:
        from datetime import datetime

        from segflow.jobs.anomalies import detect_anomalies as run

        return run(as_of=datetime.fromisoformat(as_of) if as_of else None).as_dict()

    @warehouse_task
    @fail_fast_on_user_errors
    def recluster(as_of: str | None) -> dict:
        from datetime import datetime

        from segflow.jobs.segment import recluster as run

        return run(as_of=datetime.fromisoformat(as_of) if as_of else None).as_dict()

    @warehouse_task
    @fail_fast_on_user_errors
    def register_model(as_of: str | None) -> dict:
        from datetime import datetime

        from segflow.jobs.registry import register_model as run

        return run(as_of=datetime.fromisoformat(as_of) if as_of else None).as_dict()

    @warehouse_task
    @fail_fast_on_user_errors
    def check_drift(as_of: str | None) -> dict:
        from datetime import datetime

        from segflow.jobs.drift import check_drift as run
        from segflow.jobs.drift import notify_drift

        result = run(as_of=datetime.fromisoformat(as_of) if as_of else None)
        notify_drift(result)
        return {k: v for k, v in result.as_dict().items() if k != "features"}

    @warehouse_task
    @fail_fast_on_user_errors
    def fit_clv(as_of: str | None) -> dict:
        import logging
        from datetime import datetime

        from segflow.jobs.clv import fit_clv as run

        result = run(as_of=datetime.fromisoformat(as_of) if as_of else None)
        if result.status != "fitted":
            logging.getLogger(__name__).warning("CLV as of %s not fitted (%s): %s", as_of, result.status,
                                                result.reason)
        return result.as_dict()

    @warehouse_task
    @fail_fast_on_user_errors
    def monitor_segments(as_of: str | None) -> dict:
        from datetime import datetime

        from segflow.jobs.monitoring import monitor_segments as run

        return {k: v for k, v in run(as_of=datetime.fromisoformat(as_of) if as_of else None).as_dict().items()
                if k not in ("signals", "breaks")}

    @warehouse_task
    @fail_fast_on_user_errors
    def segment_kpis(as_of: str | None) -> dict:
        from datetime import datetime

        from segflow.jobs.segment_kpis import segment_kpis as run

        return run(as_of=datetime.fromisoformat(as_of) if as_of else None).as_dict()

    @warehouse_task(on_failure_callback=alert_on_failure)
    @fail_fast_on_user_errors
    def publish(as_of: str | None) -> dict:
        from datetime import datetime

        from segflow.jobs.publish_segments import publish as run

        return run(as_of=datetime.fromisoformat(as_of) if as_of else None).as_dict()

    @report_task(trigger_rule="all_done")
    @fail_fast_on_user_errors
    def write_report(as_of: str | None) -> dict:
        import logging
        from datetime import datetime

        from segflow.report import write_report as run

        report = run(as_of=datetime.fromisoformat(as_of) if as_of else None)
        logging.getLogger(__name__).info("Weekly report written: %s (open: %s)", report.path, report.link)
        return report.as_dict()

    @task(on_failure_callback=alert_on_failure)
    @fail_fast_on_user_errors
    def activate(as_of: str | None) -> dict:
        from datetime import datetime

        from segflow.activation.deliver import activate as run

        return run(as_of=datetime.fromisoformat(as_of) if as_of else None)

    week = resolve_as_of()
    anomalies = detect_anomalies(week)
    clustered = recluster(week)
    anomalies >> clustered
    drift = check_drift(week)
    published = publish(week)
    monitored, kpis = monitor_segments(week), segment_kpis(week)
    clustered >> register_model(week) >> drift >> [monitored, published]
    fit_clv(week) >> published  # the pool runs one warehouse writer at a time
    clustered >> kpis
    published >> activate(week)
    [monitored, kpis, published] >> write_report(week)


segflow_segments_weekly()
