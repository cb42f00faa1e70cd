"""The activation store, ``<home>/activation.duckdb``: delivery ledger, dead letters, trigger outbox and the
trigger detector's state (tables in :mod:`segflow.ddl`).

It is a DuckDB file of its own so that sending and triggers never wait for a warehouse writer (a dbt build holds
the warehouse for minutes) and never hold it. DuckDB still allows one process at a time per file, so every
opener queues on an advisory lock beside it (``activation.duckdb.lock``, ``flock``, bounded by
``SEGFLOW_LOCK_TIMEOUT_SECONDS``), as :mod:`segflow.warehouse_lock` does for the warehouse.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from segflow.ddl import ensure_activation_schema
from segflow.errors import WarehouseLocked
from segflow.settings import Settings


@contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    path = settings.activation_path.with_name(settings.activation_path.name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    deadline, delay = time.monotonic() + settings.lock_timeout_seconds, 0.01
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseLocked(
                        f"The activation store {settings.activation_path} stayed busy for "
                        f"{settings.lock_timeout_seconds:g} s (another `segflow activate` / `triggers` run holds "
                        "it); try again, or raise SEGFLOW_LOCK_TIMEOUT_SECONDS.") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def open_store(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """The activation store, read-write, for one process at a time; tables created on first use."""
    with _locked(settings):
        con = duckdb.connect(str(settings.activation_path))
        try:
            con.execute("set TimeZone = 'UTC'")
            ensure_activation_schema(con)
            yield con
        finally:
            con.close()


def forget(settings: Settings, identifiers: set[str], apply: bool = True) -> list[dict]:
    """Right to erasure in the activation store: the person's triggers, buffered events, fresh consent records
    and dead-lettered records are removed (a dead letter keeps the batch's other records), and the reference copy
    is dropped so the next trigger run copies it from the erased warehouse. Returns file changes like
    :func:`segflow.erasure.files.redact_files`. The ledger holds no personal data (keys and counts)."""
    import json
    import shutil

    changes: list[dict] = []
    ids = sorted(identifiers)
    reference = settings.home / "activation" / "reference"
    if reference.is_dir():
        changes.append({"path": str(reference), "action": "deleted", "count": 1})
        if apply:
            shutil.rmtree(reference)
    if not ids or not settings.activation_path.exists():
        return changes
    removed = 0
    with open_store(settings) as con:
        con.execute("begin transaction")
        for table in ("trigger_outbox", "trigger_events", "consent_updates"):
            removed += con.execute(f"select count(*) from {table} where list_contains(?, customer_id)",
                                   [ids]).fetchall()[0][0]
            con.execute(f"delete from {table} where list_contains(?, customer_id)", [ids])
        for key, destination, payload in con.execute(
                "select idempotency_key, destination, payload from dead_letter").fetchall():
            body = json.loads(payload)
            kept = [r for r in body["records"] if r.get("customer_id") not in identifiers]
            if len(kept) != len(body["records"]):
                removed += len(body["records"]) - len(kept)
                body["records"] = kept
                con.execute("update dead_letter set payload = ?, records = ? where idempotency_key = ? and "
                            "destination = ?", [json.dumps(body), len(kept), key, destination])
        con.execute("commit" if apply else "rollback")
    if removed:
        changes.append({"path": str(settings.activation_path), "action": "rows_removed", "count": removed})
    return changes
