"""The one place the DuckDB warehouse is opened.

DuckDB allows a single read-write process, and while it holds the file even read-only opens are refused.
Every connection goes through :func:`connect`, which waits (bounded) for the lock instead of failing after
a few milliseconds, and turns a timeout into a clear :class:`WarehouseLocked` error.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from segflow.errors import NotReady, WarehouseLocked
from segflow.settings import Settings, get_settings

_LOCK_MARKERS = ("Could not set lock on file", "Conflicting lock is held")


def _is_lock_error(exc: Exception) -> bool:
    return any(marker in str(exc) for marker in _LOCK_MARKERS)


@contextmanager
def connect(
    settings: Settings | None = None, *, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse; waits up to ``settings.lock_timeout_seconds`` for another writer to finish."""
    settings = settings or get_settings()
    path = settings.warehouse_path
    if read_only and not path.exists():
        raise NotReady(f"No warehouse at {path} yet: run `segflow load` and `segflow build` first.")
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + settings.lock_timeout_seconds
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                holder = re.search(r"PID (\d+)", str(exc))
                who = f" (held by process {holder.group(1)})" if holder else ""
                raise WarehouseLocked(
                    f"The warehouse {path} is locked by another writer{who} and stayed locked for "
                    f"{settings.lock_timeout_seconds:.0f} s. Run warehouse steps one at a time (the Airflow "
                    "pool 'segflow_warehouse' has one slot for this) or raise SEGFLOW_LOCK_TIMEOUT_SECONDS."
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        configure(con, settings)
        yield con
    finally:
        con.close()


def configure(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Apply the memory limit, threads, spill directory and UTC session zone (as dbt's profile does)."""
    settings.duckdb_temp_path.mkdir(parents=True, exist_ok=True)
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"set memory_limit = '{settings.duckdb_memory}'")
    con.execute(f"set threads = {int(settings.duckdb_thread_count)}")
    con.execute("set temp_directory = ?", [str(settings.duckdb_temp_path)])


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])
