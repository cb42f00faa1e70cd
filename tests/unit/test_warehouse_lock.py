"""segflow's warehouse lock between real processes: one writer or many readers, the same message for every
waiter, no stale lock after kill -9, and no starvation either way.

DuckDB's own lock is per process, and so is the kernel's flock between processes: every holder here is a
second Python process (tests/unit/test_warehouse.py covers a holder that is not segflow).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from segflow.errors import WarehouseLocked
from segflow.settings import Settings
from segflow.warehouse import connect
from segflow.warehouse_lock import hold, lock_path

HOLDER = """
import sys, time
from segflow.settings import Settings
from segflow.warehouse import connect

settings = Settings(home=sys.argv[1])
with connect(settings, read_only=sys.argv[2] == "read") as con:
    print("open", flush=True)
    time.sleep(float(sys.argv[3]))
"""

# holds the lock for `hold` seconds, lets go, and takes it again at once, for `total` seconds
CHURN = """
import sys, time
from segflow.settings import Settings
from segflow.warehouse_lock import hold

settings = Settings(home=sys.argv[1])
exclusive, each, total, offset = sys.argv[2] == "write", float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
time.sleep(offset)
print("started", flush=True)
end = time.monotonic() + total
while time.monotonic() < end:
    with hold(settings, exclusive=exclusive, timeout=60):
        time.sleep(each)
"""


def _holder(settings: Settings, mode: str, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(settings.home), mode, str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if line.strip() != "open":
        proc.kill()
        raise AssertionError(f"holder did not start: {line!r} {proc.stderr.read()}")
    return proc


def _churn(settings: Settings, mode: str, each: float, total: float, offset: float = 0.0) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", CHURN, str(settings.home), mode, str(each), str(total),
                             str(offset)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started", proc.stderr.read()
    return proc


def _stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def home(tmp_path) -> Settings:
    settings = Settings(home=tmp_path / "home", lock_timeout_seconds=1)
    with connect(settings) as con:
        con.execute("create table t as select 1 as x")
    return settings


def test_a_segflow_writer_makes_writers_and_readers_wait_with_one_message(home):
    holder = _holder(home, "write", 60)
    try:
        messages = []
        for read_only in (False, True):
            started = time.monotonic()
            with pytest.raises(WarehouseLocked) as info:
                with connect(home, read_only=read_only):
                    pass
            assert 0.9 <= time.monotonic() - started < 5
            messages.append(str(info.value))
        with pytest.raises(WarehouseLocked) as info:
            with hold(home, exclusive=True):  # what dbt's run waits on
                pass
        messages.append(str(info.value))
        assert len(set(messages)) == 1, messages
        message = messages[0]
        assert message.startswith(f"The warehouse {home.warehouse_path} is locked by another writer "
                                  f"(held by process {holder.pid}: python, since ")
        assert "stayed locked for 1 s" in message and "SEGFLOW_LOCK_TIMEOUT_SECONDS" in message
    finally:
        _stop(holder)


def test_readers_share_the_warehouse(home):
    first = _holder(home, "read", 60)
    try:
        started = time.monotonic()
        with connect(home, read_only=True) as con:
            assert con.execute("select x from t").fetchall() == [(1,)]
        assert time.monotonic() - started < 1, "a reader must not wait for another reader"
        with pytest.raises(WarehouseLocked):
            with connect(home):  # a writer waits for the readers
                pass
    finally:
        _stop(first)


def test_a_killed_writer_leaves_no_stale_lock(home):
    holder = _holder(home, "write", 600)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert lock_path(home).exists()  # the file stays; the lock on it went with the process
    started = time.monotonic()
    with connect(home) as con:
        assert con.execute("select x from t").fetchall() == [(1,)]
    assert time.monotonic() - started < 1


def test_a_waiting_reader_gets_in_between_the_steps_of_a_busy_writer(home):
    """A writer that takes the lock again right after letting go (step after step) must not starve a reader."""
    writer = _churn(home, "write", each=0.5, total=12)
    try:
        time.sleep(0.3)
        started = time.monotonic()
        with hold(home, exclusive=False, timeout=5):
            waited = time.monotonic() - started
        assert waited < 2, f"the reader waited {waited:.1f} s for a writer that lets go every 0.5 s"
    finally:
        _stop(writer)


def test_a_waiting_writer_is_not_starved_by_overlapping_readers(home):
    """Two readers whose holds overlap keep the lock shared without a gap; the writer must still get in."""
    readers = [_churn(home, "read", each=0.6, total=12), _churn(home, "read", each=0.6, total=12, offset=0.3)]
    try:
        time.sleep(0.5)
        started = time.monotonic()
        with hold(home, exclusive=True, timeout=5):
            waited = time.monotonic() - started
        assert waited < 2, f"the writer waited {waited:.1f} s"
    finally:
        _stop(*readers)


def test_the_lock_is_reentrant_in_a_thread_and_exclusive_across_threads(home):
    with hold(home, exclusive=True) as outer:
        with hold(home, exclusive=True) as inner, connect(home) as con:  # a step's own connection goes through
            assert inner == outer
            con.execute("insert into t values (2)")
        seen: dict = {}

        def other_thread() -> None:
            try:
                with hold(home, exclusive=False, timeout=0.3):
                    seen["got"] = True
            except WarehouseLocked:
                seen["locked"] = True

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert seen == {"locked": True}
    with connect(home, read_only=True) as con:
        assert con.execute("select count(*) from t").fetchall() == [(2,)]


def test_a_shared_lock_is_not_silently_upgraded(home):
    with hold(home, exclusive=False):
        with pytest.raises(RuntimeError, match="upgraded"):
            with hold(home, exclusive=True):
                pass
