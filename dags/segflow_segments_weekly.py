"""
### segflow_segments_weekly — recluster, drift, publish (weekly, on the features asset)

Triggered when `segflow_elt` closes a week (asset `segflow://warehouse/customer_features/weekly`).
The week (`as_of`) comes from, in order: the `as_of` param of a manual run, the triggering asset event,
the run's logical date.

1. **recluster** — k-means on `marts.customer_features`, k chosen by silhouette in the configured range;
   segment ids matched to last week's (stable identities), named from their profiles; model run recorded
   with code version, data fingerprint, params and metrics.
2. **segment_kpis** — per-segment conversion, AOV, revenue per customer and share, retention and churn with
   confidence intervals, and how strongly the segments separate them (chi-square / Kruskal–Wallis), written to
   `ml.segment_kpis` and `ml.segment_separation` (docs/business-metrics.md). Runs beside drift; publication does
   not wait for it.
3. **check_drift** — PSI of every feature against last week's snapshot; verdict stable / warn / drift.
4. **publish** — exports the segments only if the week's data gate passed and the model met the quality
   floor; otherwise the task fails, the last good export stays, and an alert is logged and sent to
   `SEGFLOW_ALERT_WEBHOOK_URL` if set.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, task

from segflow.airflow_tasks import warehouse_task
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
    def recluster(as_of: str | None) -> dict:
        from datetime import datetime

        from segflow.jobs.segment import recluster as run

        return run(as_of=datetime.fromisoformat(as_of) if as_of else None).as_dict()

    @warehouse_task
    @fail_fast_on_user_errors
    def check_drift(as_of: str | None) -> dict:
        import logging
        from datetime import datetime

        from segflow.jobs.drift import check_drift as run

        result = run(as_of=datetime.fromisoformat(as_of) if as_of else None)
        if result.verdict == "drift":
            logging.getLogger(__name__).warning("Feature drift as of %s (max PSI %.3f): %s", as_of,
                                                result.max_psi, [f["feature"] for f in result.features
                                                                 if f["verdict"] == "drift"])
        return {k: v for k, v in result.as_dict().items() if k != "features"}

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

    week = resolve_as_of()
    clustered = recluster(week)
    drift = check_drift(week)
    clustered >> drift >> publish(week)
    clustered >> segment_kpis(week)


segflow_segments_weekly()
