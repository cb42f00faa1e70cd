"""The one place the DuckDB warehouse is opened.

DuckDB allows a single read-write process, and while it holds the file even read-only opens are refused.
Every connection goes through :func:`connect`, which first queues on segflow's warehouse lock
(:mod:`segflow.warehouse_lock`: exclusive to write, shared to read) and then waits for DuckDB's own lock (held
by a process that is not segflow), both bounded, and turns a timeout into a clear :class:`WarehouseLocked` error.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from segflow.errors import NotReady
from segflow.settings import Settings, get_settings
from segflow.warehouse_lock import hold, locked_error

_LOCK_MARKERS = ("Could not set lock on file", "Conflicting lock is held")


def is_lock_error(message: str) -> bool:
    """True when DuckDB's error text says another process holds the file."""
    return any(marker in message for marker in _LOCK_MARKERS)


@contextmanager
def connect(
    settings: Settings | None = None, *, read_only: bool = False, timeout: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse; waits up to ``timeout`` (default ``settings.lock_timeout_seconds``) for writers."""
    settings = settings or get_settings()
    path = settings.warehouse_path
    if read_only and not path.exists():
        raise NotReady(f"No warehouse at {path} yet: run `segflow load` and `segflow build` first.")
    path.parent.mkdir(parents=True, exist_ok=True)
    wait = settings.lock_timeout_seconds if timeout is None else timeout
    deadline = time.monotonic() + wait
    with hold(settings, exclusive=not read_only, timeout=wait):
        con = open_duckdb(settings, read_only, deadline, wait)
        try:
            configure(con, settings)
            yield con
        finally:
            con.close()


def open_duckdb(settings: Settings, read_only: bool, deadline: float, wait: float | None = None
                ) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect``, retried until ``deadline`` while another process (one that does not take segflow's
    lock) holds DuckDB's own lock."""
    path = settings.warehouse_path
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not is_lock_error(str(exc)):
                raise
            if time.monotonic() >= deadline:
                raise locked_error(settings, duckdb_holder(str(exc)), wait) from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def duckdb_holder(message: str) -> str:
    """`` (held by process N)`` from DuckDB's lock error text, for the lock message."""
    found = re.search(r"PID (\d+)", message)
    return f" (held by process {found.group(1)})" if found else ""


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


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame, where: str, params: list) -> None:
    """Replace the rows of ``table`` matching ``where`` (inside the caller's transaction) by ``frame``'s rows,
    matched by column name."""
    con.execute(f"delete from {table} where {where}", params)
    if len(frame):
        con.register("_insert_frame", frame)
        con.execute(f"insert into {table} by name select * from _insert_frame")
        con.unregister("_insert_frame")
