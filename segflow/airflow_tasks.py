"""``@warehouse_task``: the TaskFlow decorator of every DAG task that opens the warehouse.

It is ``@task`` with two additions: the task runs in the one-slot pool ``segflow_warehouse``, and its
``on_kill`` (which Airflow calls when it stops a running task: marked failed or cleared in the UI, a timeout, a
worker shutdown) stops the dbt this task started, with everything dbt started (:func:`segflow.procguard.stop_all`).
Without it Airflow 3 only calls ``on_kill`` and waits, and dbt would keep the warehouse until the task process
is killed outright. Imported by DAG files only (it imports Airflow).
"""

from __future__ import annotations

from collections.abc import Callable

from airflow.providers.standard.decorators.python import _PythonDecoratedOperator
from airflow.sdk import BaseOperatorLink
from airflow.sdk.bases.decorator import task_decorator_factory

from segflow.airflow_local import WAREHOUSE_POOL


class WarehouseTaskOperator(_PythonDecoratedOperator):
    """``@task``'s operator (Airflow's own class, subclassed to reuse its argument handling) with an ``on_kill``
    that stops the task's guarded children."""

    custom_operator_name = "@warehouse_task"

    def on_kill(self) -> None:
        from segflow import procguard

        stopped = procguard.stop_all()
        self.log.warning("segflow: task killed; stopped %d running dbt process group(s)", stopped)


def warehouse_task(python_callable: Callable | None = None, **kwargs):
    """``@warehouse_task`` / ``@warehouse_task(outlets=[...])``: ``@task`` in the warehouse pool, stopping its dbt
    when killed."""
    kwargs.setdefault("pool", WAREHOUSE_POOL)
    return task_decorator_factory(python_callable=python_callable, decorated_operator_class=WarehouseTaskOperator,
                                  **kwargs)


class WeeklyReportLink(BaseOperatorLink):
    """The "Weekly report" button of the weekly DAG's write_report task: the URL its result holds
    (``SEGFLOW_REPORT_URL_BASE`` + /weekly/<file>, or the file:// URL). Airflow 3 computes it on the worker when
    the task ends and keeps it in XCom; the UI shows it without a plugin."""

    name = "Weekly report"

    def get_link(self, operator, *, ti_key) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        result = XCom.get_value(ti_key=ti_key, key="return_value")
        return result.get("link", "") if isinstance(result, dict) else ""


class ReportTaskOperator(WarehouseTaskOperator):
    """``@warehouse_task`` with the :class:`WeeklyReportLink` button."""

    custom_operator_name = "@report_task"
    operator_extra_links = (WeeklyReportLink(),)


def report_task(python_callable: Callable | None = None, **kwargs):
    """``@warehouse_task`` for a task returning ``{"link": <report URL>, ...}``: its "Weekly report" button opens it."""
    kwargs.setdefault("pool", WAREHOUSE_POOL)
    return task_decorator_factory(python_callable=python_callable, decorated_operator_class=ReportTaskOperator,
                                  **kwargs)
