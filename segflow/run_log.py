"""``meta.run_log``: one row for every run of a warehouse step - who ran it, when, for which as-of, how it ended.

Written by :func:`segflow.warehouse_lock.warehouse_step` when the step ends (success or failure), while the step
still holds the warehouse lock, so the log never waits for another writer. A step that fails before it can
open the warehouse (the lock is refused, the file is unreadable) leaves no row: the error was shown to whoever
ran it; so does a step killed outright (kill -9), whose next build then runs in full (``meta.build_state``). The audit of erasures and consent redactions is ``meta.erasure_log``; this log holds their runs too.

Columns: ``run_id`` (uuid), ``step`` (e.g. ``build``, ``segment: recluster``), ``status`` (``success``,
``not_ready``, ``gate_failed``, ``failed`` for a segflow error, ``error`` for anything else, ``interrupted``),
``as_of`` (the step's argument, when it has one), ``invoked_by`` (``airflow:<dag>/<run id>/<task>`` inside an
Airflow task, else ``user@host``), ``pid``, ``started_at`` / ``finished_at`` (UTC), ``duration_seconds``,
``error`` (the one-line message a user saw) and ``summary`` (the result's scalar fields, JSON).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from datetime import UTC, datetime

from segflow.erasure.rules import utc_now, who
from segflow.errors import GateFailed, NotReady, SegflowError, WarehouseLocked
from segflow.settings import Settings

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 2000


def invoked_by() -> str:
    """The Airflow task running this step (Airflow puts its context in the task's environment), else user@host."""
    dag, run, task = (os.environ.get(f"AIRFLOW_CTX_{name}") for name in ("DAG_ID", "DAG_RUN_ID", "TASK_ID"))
    if dag and task:
        return f"airflow:{dag}/{run or '?'}/{task}"
    return who()


def status_of(exc: BaseException | None) -> str:
    if exc is None:
        return "success"
    if isinstance(exc, NotReady):
        return "not_ready"
    if isinstance(exc, GateFailed):
        return "gate_failed"
    if isinstance(exc, SegflowError):
        return "failed"
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        return "interrupted"
    return "error"


def summarize(result) -> str | None:
    """The result's top-level scalar fields (counts, ids, modes) as JSON; lists and nested objects left out."""
    data = result.as_dict() if hasattr(result, "as_dict") else result
    if not isinstance(data, dict):
        return None
    scalars = {k: v for k, v in data.items() if isinstance(v, str | int | float | bool) or v is None}
    return json.dumps(scalars, default=str, sort_keys=True) if scalars else None


def record(settings: Settings, step: str, started_at: datetime, as_of: datetime | None, result=None,
           exc: BaseException | None = None, detail: bool = True) -> None:
    """Append the step's row. Never raises: a run log that cannot be written must not hide the step's outcome.
    Without ``detail`` only the error's kind is kept and no summary (a step whose messages may name a person)."""
    from segflow.ddl import ensure_schema
    from segflow.warehouse import connect

    if isinstance(exc, WarehouseLocked):  # the step never had the warehouse (nor would this record)
        return
    finished_at = utc_now()
    if as_of is not None and as_of.tzinfo is not None:
        as_of = as_of.astimezone(UTC).replace(tzinfo=None)
    error = None if exc is None else (str(exc).strip().splitlines() or [type(exc).__name__])[0][:MAX_ERROR_CHARS]
    if exc is not None and not isinstance(exc, SegflowError) and error and type(exc).__name__ not in error:
        error = f"{type(exc).__name__}: {error}"[:MAX_ERROR_CHARS]
    row = [str(uuid.uuid4()), step, status_of(exc), as_of, invoked_by(), os.getpid(), started_at, finished_at,
           (finished_at - started_at).total_seconds(), error if detail else (exc and type(exc).__name__),
           summarize(result) if exc is None and detail else None]
    try:
        with connect(settings) as con:
            ensure_schema(con)
            con.execute("insert into meta.run_log values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    except Exception as problem:  # noqa: BLE001 - the step's own outcome is what the caller must see
        log.warning("segflow: could not record the %s run in meta.run_log: %s", step, problem)
