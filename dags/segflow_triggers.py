"""
### segflow_triggers — near-real-time triggers: abandoned carts and session offers (every 5 minutes)

Reads the landing files that arrived since its last run (complete ones only: a `.ready` marker or unchanged for
`SEGFLOW_LOAD_MIN_FILE_AGE_SECONDS`), detects

- **abandoned carts**: an add_to_cart with no purchase within `SEGFLOW_TRIGGER_CART_MINUTES` (event time);
- **session offers**: a customer views the same product priced from `SEGFLOW_TRIGGER_OFFER_MIN_PRICE`
  `SEGFLOW_TRIGGER_OFFER_MIN_VIEWS` times in one session;

writes each trigger once to `activation.trigger_outbox` (`$SEGFLOW_HOME/activation.duckdb`) and sends the pending
ones to the sink at `SEGFLOW_SINK_URL` (batched, idempotency keys, retries, dead letters). Customers without
marketing and analytics consent, flagged as anomalies, or withdrawing consent in a fresh landing file are never
triggered. See docs/activation.md.

It does **not** take the warehouse pool: it never writes the warehouse, and reads consent and identities from
it only through a read-only connection that waits at most `SEGFLOW_TRIGGER_REFERENCE_TIMEOUT_SECONDS` (the last
copy is used while the daily ELT builds), so it never queues behind a dbt build nor delays one.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from segflow.orchestration import DEFAULT_ARGS, fail_fast_on_user_errors


@dag(
    dag_id="segflow_triggers",
    schedule=timedelta(minutes=5),
    start_date=pendulum.datetime(2025, 9, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=15),
    default_args=DEFAULT_ARGS,
    tags=["segflow", "activation", "triggers"],
    doc_md=__doc__,
)
def segflow_triggers():
    @task(execution_timeout=timedelta(minutes=10))
    @fail_fast_on_user_errors
    def detect_triggers() -> dict:
        from segflow.activation.triggers import run_triggers

        return run_triggers().as_dict()

    detect_triggers()


segflow_triggers()
