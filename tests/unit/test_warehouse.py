"""Opening the DuckDB warehouse: readiness, and waiting for / reporting another process's write lock.

The lock holder is a real second Python process (DuckDB's lock is per process, so a thread would not do).
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from segflow.errors import NotReady, SegflowError, WarehouseLocked
from segflow.settings import Settings
from segflow.warehouse import connect, table_exists

HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("create table if not exists held (n integer)")
con.execute("insert into held values (1)")
print("open", flush=True)
time.sleep(float(sys.argv[2]))
con.execute("insert into held values (2)")
con.close()
"""


def _hold(path, seconds: float) -> subprocess.Popen:
    """Start a process that opens ``path`` read-write and keeps it for ``seconds``; returns once it is open."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if line.strip() != "open":
        proc.kill()
        raise AssertionError(f"lock holder did not start: {line!r} {proc.stderr.read()}")
    return proc


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def test_read_only_on_missing_warehouse_is_not_ready(tmp_path):
    settings = Settings(home=tmp_path / "home")
    with pytest.raises(NotReady) as info:
        with connect(settings, read_only=True):
            pass
    assert str(settings.warehouse_path) in str(info.value)
    assert "segflow load" in str(info.value)
    assert isinstance(info.value, SegflowError) and info.value.exit_code == 2
    assert not settings.warehouse_path.exists(), "a read-only probe must not create the file"


def test_read_write_creates_the_warehouse_and_read_only_sees_it(tmp_path):
    settings = Settings(home=tmp_path / "home")
    with connect(settings) as con:
        con.execute("create schema meta; create table meta.t (x integer); insert into meta.t values (7)")
        assert table_exists(con, "meta", "t")
        assert not table_exists(con, "meta", "missing")
    assert settings.warehouse_path.is_file()
    with connect(settings, read_only=True) as con:
        assert con.execute("select x from meta.t").fetchall() == [(7,)]
        with pytest.raises(Exception, match="read-only"):
            con.execute("insert into meta.t values (8)")


def test_connection_is_closed_after_the_block(tmp_path):
    settings = Settings(home=tmp_path / "home")
    with connect(settings) as con:
        con.execute("select 1")
    with pytest.raises(Exception, match="(?i)closed"):
        con.execute("select 1")


def test_locked_by_another_process_raises_clear_error_then_recovers(tmp_path):
    settings = Settings(home=tmp_path / "home", lock_timeout_seconds=1)
    settings.warehouse_path.parent.mkdir(parents=True)
    holder = _hold(settings.warehouse_path, 60)
    try:
        for read_only in (False, True):
            started = time.monotonic()
            with pytest.raises(WarehouseLocked) as info:
                with connect(settings, read_only=read_only):
                    pass
            waited = time.monotonic() - started
            message = str(info.value)
            assert str(settings.warehouse_path) in message
            assert "segflow_warehouse" in message
            assert f"held by process {holder.pid}" in message
            assert "SEGFLOW_LOCK_TIMEOUT_SECONDS" in message
            assert 0.9 <= waited < 10, f"should wait about the 1 s timeout, waited {waited:.1f} s"
        assert holder.poll() is None, "the holder must still be running while we were refused"
    finally:
        _stop(holder)
    with connect(settings) as con:
        # the holder was killed mid-sleep: its committed first insert is there, the second never ran
        assert con.execute("select n from held").fetchall() == [(1,)]


def test_waits_for_a_writer_that_releases_within_the_timeout(tmp_path):
    settings = Settings(home=tmp_path / "home", lock_timeout_seconds=10)
    settings.warehouse_path.parent.mkdir(parents=True)
    holder = _hold(settings.warehouse_path, 1.0)
    try:
        started = time.monotonic()
        with connect(settings) as con:
            waited = time.monotonic() - started
            # we only got in after the holder finished its work (its last insert) and let go
            assert con.execute("select n from held order by n").fetchall() == [(1,), (2,)]
        assert 0.5 <= waited < 10
        assert holder.wait(timeout=10) == 0
    finally:
        _stop(holder)
