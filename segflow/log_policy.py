"""What a task log shows: segflow's lines and dbt's, not the libraries' chatter. The one place it is set.

Every DAG file imports :mod:`segflow.orchestration`, which calls :func:`apply` (a task process parses its DAG
file before it runs the task, so the levels hold in every task log, whatever Airflow deployment runs it).
``segflow.*`` loggers stay at Airflow's level (INFO).
"""

from __future__ import annotations

import logging

LIBRARY_LEVELS: dict[str, int] = {
    # GX logs hundreds of INFO lines while it imports and on every datasource change
    "great_expectations": logging.WARNING,
    "great_expectations.data_context.types.base": logging.WARNING,
    # astronomer-cosmos while it renders the DAG (every parse: a line per task about packages.yml, a warning
    # per dbt node it does not render: exposures, hooks) ...
    "cosmos": logging.WARNING,
    "cosmos.airflow.graph": logging.ERROR,
    "cosmos.operators.local": logging.ERROR,  # "install the OpenLineage provider to emit events"
    # ... but its watcher module logs dbt's lines (producer) and each model's result (watchers): kept
    "cosmos.operators._watcher.base": logging.INFO,
    "cosmos.operators._watcher.state": logging.INFO,
}


def apply() -> None:
    for name, level in LIBRARY_LEVELS.items():
        logging.getLogger(name).setLevel(level)
