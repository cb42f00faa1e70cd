"""
### segflow_elt — load, build, validate (daily)

For the interval `[data_interval_start, data_interval_end)`:

1. **load_raw** — every landing file whose date is before `data_interval_end` and that was never loaded
   (manifest by checksum) goes verbatim into `raw.*`; unparseable lines go to `meta.load_rejects`. When no
   file was ever delivered for the interval's day(s), the task is **skipped** with "no new data" and the run
   ends green without building (`SEGFLOW_SKIP_WHEN_NO_NEW_DATA`; e.g. a scheduled run after the demo data).
2. **dbt_build** — `dbt build` as of `data_interval_end`: staging (typed + quarantine), intermediate
   (dedup, identity stitching, sessionization), marts, and their data tests. A task group with one task per
   dbt model with its tests (`<model>_run`), rendered by astronomer-cosmos from the dbt manifest;
   `dbt_producer_watcher` runs the one build, the model tasks report each model's result with dbt's lines
   (docs/airflow.md). `SEGFLOW_AIRFLOW_DBT_TASKS=single` makes it one `dbt_build` task.
3. **quality_gate** — Great Expectations suites on the run's loads, staged events, sessions, orders, customer
   profiles and features, plus freshness, volume change vs the previous run and distributions learned from
   history. A failure fails the run: nothing downstream runs, the last published segments stay, and an alert
   is logged and sent to `SEGFLOW_ALERT_WEBHOOK_URL` if set. The log names the failed checks and links the
   GX Data Docs (`$SEGFLOW_HOME/artifacts/data_docs/index.html`).
4. **is_week_end → close_week** — on the run that closes a week (Monday 00:00 UTC by default) the
   `customer_features/weekly` asset is emitted, which triggers `segflow_segments_weekly`.
5. **drift_screen → drift_says_recluster → trigger_recluster → record_recluster** — on the other days, today's
   features are tested against the last accepted week and the fixed baseline (docs/drift.md); a drift verdict
   alerts (log + webhook) and, unless a re-cluster was already asked for since the last segmentation, triggers an
   early run of `segflow_segments_weekly` for the current data, recorded in `ml.recluster_triggers`.
5b. **assign_segments** — after the gate, the champion model's classifier assigns new customers and customers
   whose features changed since the last weekly clustering (`ml.segment_assignments_daily`,
   docs/model-registry.md).
6. **purge_raw_pii** — after the build, whatever its outcome: raw e-mail addresses of files loaded more than
   `SEGFLOW_PII_RETENTION_DAYS` before `data_interval_end` are removed (their pseudonyms are kept), recorded in
   `meta.pii_purges`.

The PII key that pseudonymizes e-mail comes from the worker's `SEGFLOW_PII_KEY` / `SEGFLOW_PII_KEY_FILE`,
else from the Airflow Variable `segflow_pii_key` (or a secrets backend serving it).

Every task that opens the DuckDB warehouse is a `@warehouse_task`: in the one-slot pool `segflow_warehouse`,
and a killed task stops its dbt (`on_kill`).
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Asset, CronTriggerTimetable, TriggerRule, dag, task

from segflow.airflow_tasks import warehouse_task
from segflow.orchestration import (
    DEFAULT_ARGS,
    MARTS_URI,
    WEEKLY_FEATURES_URI,
    alert_on_failure,
    fail_fast_on_user_errors,
    parse_settings,
)

MARTS = Asset(MARTS_URI)
WEEKLY_FEATURES = Asset(WEEKLY_FEATURES_URI)


@dag(
    dag_id="segflow_elt",
    schedule=CronTriggerTimetable("0 0 * * *", timezone="UTC", interval=dt.timedelta(days=1)),
    start_date=pendulum.datetime(2025, 9, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["segflow", "elt", "dbt", "great_expectations"],
    doc_md=__doc__,
)
def segflow_elt():
    @warehouse_task
    @fail_fast_on_user_errors
    def load_raw(data_interval_start=None, data_interval_end=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from segflow.jobs.elt import load_interval, no_new_data

        reason = no_new_data(None, data_interval_start, data_interval_end)
        if reason:
            import logging

            logging.getLogger("segflow").warning(reason)  # the skip's own message is not written to the log
            raise AirflowSkipException(reason)
        report = load_interval(as_of=data_interval_end)
        return {k: v for k, v in report.items() if k != "files"}

    @warehouse_task(on_failure_callback=alert_on_failure)
    @fail_fast_on_user_errors
    def dbt_build(data_interval_end=None) -> dict:
        """The whole `dbt build` as one task (`SEGFLOW_AIRFLOW_DBT_TASKS=single`); its log ends with the
        build's counts and the path of dbt's full log."""
        from segflow.jobs.build import build
        from segflow.jobs.ml_common import to_naive_utc
        from segflow.orchestration import task_settings

        return build(task_settings(), as_of=to_naive_utc(data_interval_end)).as_dict()

    settings = parse_settings()
    if settings.airflow_dbt_tasks == "per_model":
        from segflow.dbt_tasks import dbt_task_group

        dbt = dbt_task_group(settings)
    else:
        dbt = dbt_build()

    @warehouse_task(outlets=[MARTS], on_failure_callback=alert_on_failure)
    @fail_fast_on_user_errors
    def quality_gate(data_interval_end=None) -> dict:
        from segflow.jobs.ml_common import to_naive_utc
        from segflow.jobs.validate import validate

        return validate(as_of=to_naive_utc(data_interval_end)).as_dict()

    @task.short_circuit
    @fail_fast_on_user_errors
    def is_week_end(data_interval_end=None) -> bool:
        from segflow.settings import get_settings

        return data_interval_end.weekday() == get_settings().week_start_weekday

    @task(outlets=[WEEKLY_FEATURES])
    def close_week(data_interval_end=None, outlet_events=None) -> str:
        as_of = data_interval_end.in_timezone("UTC").strftime("%Y-%m-%dT%H:%M:%S")
        outlet_events[WEEKLY_FEATURES].extra = {"as_of": as_of}
        return as_of

    @warehouse_task(trigger_rule=TriggerRule.ALL_DONE)
    @fail_fast_on_user_errors
    def purge_raw_pii(data_interval_end=None) -> dict:
        from segflow.jobs.ml_common import to_naive_utc
        from segflow.jobs.purge_pii import purge_pii
        from segflow.orchestration import task_settings

        return purge_pii(task_settings(), as_of=to_naive_utc(data_interval_end)).as_dict()

    @warehouse_task
    @fail_fast_on_user_errors
    def drift_screen(data_interval_end=None) -> dict:
        from segflow.jobs.drift_screen import screen_interval
        from segflow.jobs.ml_common import to_naive_utc

        return screen_interval(as_of=to_naive_utc(data_interval_end))

    @warehouse_task
    @fail_fast_on_user_errors
    def assign_segments(data_interval_end=None) -> dict:
        from segflow.jobs.assign import assign_daily
        from segflow.jobs.ml_common import to_naive_utc

        return assign_daily(as_of=to_naive_utc(data_interval_end)).as_dict()

    @task.short_circuit
    def drift_says_recluster(screen: dict) -> bool:
        return bool(screen.get("recluster"))

    trigger_recluster = TriggerDagRunOperator(
        task_id="trigger_recluster",
        trigger_dag_id="segflow_segments_weekly",
        trigger_run_id="{{ ti.xcom_pull(task_ids='drift_screen')['trigger_run_id'] }}",
        conf={"as_of": "{{ ti.xcom_pull(task_ids='drift_screen')['as_of'] }}"},
        skip_when_already_exists=True,
    )

    @warehouse_task
    @fail_fast_on_user_errors
    def record_recluster(screen: dict, ti=None) -> dict:
        from datetime import datetime

        from segflow.jobs.drift_screen import record_recluster_trigger

        run_id = ti.xcom_pull(task_ids="trigger_recluster", key="trigger_run_id") or screen["trigger_run_id"]
        return record_recluster_trigger(as_of=datetime.fromisoformat(screen["as_of"]), reason=screen["reason"],
                                        dag_run_id=run_id)

    built = load_raw() >> dbt
    gate = quality_gate()
    built >> gate >> is_week_end() >> close_week()
    screen = drift_screen()
    gate >> screen
    gate >> assign_segments()
    drift_says_recluster(screen) >> trigger_recluster >> record_recluster(screen)
    built >> purge_raw_pii()


segflow_elt()
