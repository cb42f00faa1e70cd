"""Names the DAGs share (no Airflow import here: DAG files stay cheap to parse)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta

from segflow import log_policy
from segflow.airflow_local import WAREHOUSE_POOL

__all__ = ["WAREHOUSE_POOL", "MARTS_URI", "WEEKLY_FEATURES_URI", "DEFAULT_ARGS", "PII_KEY_VARIABLE",
           "alert_on_failure", "fail_fast_on_user_errors", "parse_settings", "task_settings"]

MARTS_URI = "segflow://warehouse/marts"
WEEKLY_FEATURES_URI = "segflow://warehouse/customer_features/weekly"
DEFAULT_ARGS = {"owner": "segflow", "retries": 1, "retry_delay": timedelta(minutes=1)}
PII_KEY_VARIABLE = "segflow_pii_key"

log_policy.apply()  # every DAG file imports this module: library noise stays out of every task log


def parse_settings():
    """Settings for a DAG file while Airflow parses it (the dbt tasks are rendered from them). An invalid
    setting must not make the DAG vanish as an import error: the DAG then parses with every setting at its
    default, and its first task fails with the setting's one-line message (``fail_fast_on_user_errors``)."""
    import logging

    from segflow.settings import Settings, SettingsError, get_settings

    try:
        return get_settings()
    except SettingsError as exc:
        logging.getLogger(__name__).warning("segflow: parsing with default settings: %s", exc)
        return Settings.model_construct()


def task_settings():
    """Settings for a task that pseudonymizes (dbt_build, purge_raw_pii). The PII key is the worker's
    SEGFLOW_PII_KEY / SEGFLOW_PII_KEY_FILE when set, else the Airflow Variable ``segflow_pii_key``: Airflow's
    place for a secret, which a secrets backend (Vault, a cloud secret manager) can serve and which is masked
    in task logs. Call it inside a task only (it talks to the Execution API)."""
    from segflow.settings import get_settings

    settings = get_settings()
    if settings.pii_key is not None or settings.pii_key_file is not None:
        return settings
    from airflow.sdk import Variable
    from airflow.sdk.log import mask_secret

    value = Variable.get(PII_KEY_VARIABLE, default=None)
    if not value:
        return settings
    mask_secret(value)
    return get_settings(pii_key=value)


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
