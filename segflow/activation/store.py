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
