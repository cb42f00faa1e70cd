"""segflow's classes for the tasks Cosmos renders (segflow/dbt_tasks.py): a watcher never runs dbt itself."""

from __future__ import annotations

import pytest
from cosmos.operators.watcher import DbtRunWatcherOperator, DbtSnapshotWatcherOperator

from segflow.dbt_tasks import SegflowRunWatcher, cosmos_configs, swap_class
from segflow.errors import SegflowError


def _watcher(cls, task_id: str, unique_id: str):
    project, profile = cosmos_configs()
    return cls(task_id=task_id, project_dir=str(project.dbt_project_path), profile_config=profile,
               producer_task_id="dbt_producer_watcher", model_unique_id=unique_id, poke_interval=7)


def test_a_model_watcher_gets_segflows_class_with_its_attributes():
    task = _watcher(DbtRunWatcherOperator, "orders_run", "model.segflow.orders")
    swap_class(task)
    assert type(task) is SegflowRunWatcher and isinstance(task, DbtRunWatcherOperator)
    assert (task.task_id, task.producer_task_id, task.poke_interval) == ("orders_run", "dbt_producer_watcher", 7)


def test_a_watcher_segflow_has_no_class_for_is_refused():
    task = _watcher(DbtSnapshotWatcherOperator, "orders_snapshot", "snapshot.segflow.orders")
    with pytest.raises(SegflowError, match="orders_snapshot.*DbtSnapshotWatcherOperator"):
        swap_class(task)
