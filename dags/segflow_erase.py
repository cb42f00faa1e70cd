"""
### segflow_erase — right to erasure (manual trigger)

Trigger with params (**Trigger DAG** in the UI, or `airflow dags trigger segflow_erase --conf '{...}'`):

- `customers` — user / customer ids of the person (any account of theirs: the identity graph finds the rest)
- `emails` — e-mail addresses (case-insensitive)
- `anonymous_ids` — device / cookie ids
- `reference` — the request's reference for the audit log (a ticket number, no personal data)
- `dry_run` — count what would be erased, change nothing

**erase** (in the one-writer pool) runs `segflow.jobs.erase.erase`: the person's rows leave raw, staging,
quarantine, the identity graph, the marts, feature snapshots and segment assignments; their rows leave the
export files and their identifiers the artifacts; keyed hashes of their ids go to `meta.erasure_list` so a
re-delivered file never brings them back; `meta.erasure_log` records this run (`airflow:<dag>/<run id>`,
the triggering user), rows per table and file, and no identifier. The task's return value holds counts only.
An unknown identifier fails the run and erases nothing. The next ELT build is a full refresh.

Airflow keeps a run's params in its metadata database: after a successful erasure delete the run
(Browse → Dag Runs → delete, or `airflow db clean`) so the ids do not outlive the erasure there.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag

from segflow.airflow_tasks import warehouse_task
from segflow.orchestration import DEFAULT_ARGS, fail_fast_on_user_errors

IDS = {"type": "array", "items": {"type": "string"}}


@dag(
    dag_id="segflow_erase",
    schedule=None,
    start_date=pendulum.datetime(2025, 9, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "customers": Param([], **IDS, description="User / customer ids of the person"),
        "emails": Param([], **IDS, description="E-mail addresses of the person"),
        "anonymous_ids": Param([], **IDS, description="Device / cookie ids"),
        "reference": Param(None, type=["null", "string"], description="Request reference (no personal data)"),
        "dry_run": Param(False, type="boolean", description="Count only, change nothing"),
    },
    tags=["segflow", "privacy"],
    doc_md=__doc__,
)
def segflow_erase():
    @warehouse_task
    @fail_fast_on_user_errors
    def erase(params=None, dag_run=None) -> dict:
        from segflow.jobs.erase import erase as run

        user = getattr(dag_run, "triggering_user_name", None)
        requested_by = f"airflow:{dag_run.dag_id}/{dag_run.run_id}" + (f" by {user}" if user else "")
        return run(customers=params["customers"], emails=params["emails"], anonymous_ids=params["anonymous_ids"],
                   reference=params["reference"], dry_run=params["dry_run"], requested_by=requested_by).as_dict()

    erase()


segflow_erase()
