"""Names the DAGs share (no Airflow import here: DAG files stay cheap to parse)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta

from segflow.airflow_local import WAREHOUSE_POOL

__all__ = ["WAREHOUSE_POOL", "MARTS_URI", "WEEKLY_FEATURES_URI", "DEFAULT_ARGS", "alert_on_failure",
           "fail_fast_on_user_errors"]

MARTS_URI = "segflow://warehouse/marts"
WEEKLY_FEATURES_URI = "segflow://warehouse/customer_features/weekly"
DEFAULT_ARGS = {"owner": "segflow", "retries": 1, "retry_delay": timedelta(minutes=1)}


def fail_fast_on_user_errors(func: Callable) -> Callable:
    """A failed gate or bad input will not fix itself: fail the task without retrying, with the plain message."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from airflow.sdk.exceptions import AirflowFailException

        from segflow.errors import SegflowError, WarehouseLocked

        try:
            return func(*args, **kwargs)
        except WarehouseLocked:
            raise  # transient: let Airflow retry
        except SegflowError as exc:
            raise AirflowFailException(str(exc)) from None

    return wrapper


def alert_on_failure(context) -> None:
    """``on_failure_callback`` of the gate and the publication: log + the configured webhook (segflow.alerts,
    imported when a task fails, not when the DAG file is parsed)."""
    from segflow.alerts import on_failure

    on_failure(context)
