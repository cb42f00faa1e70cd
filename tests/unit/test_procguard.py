"""The guard under every dbt run: a command and everything it starts end with their parent, on request, or
with the caller's exception, and never outlive the warehouse lock they write under.

Real processes throughout: a parent Python process, the guard, a shell wrapper and its `sleep` grandchild
(the shape of `dbt` launched through a wrapper script, which the parent-death signal alone does not reach).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from segflow import procguard
from segflow.errors import WarehouseLocked
from segflow.settings import Settings
from segflow.warehouse_lock import hold

pytestmark = pytest.mark.skipif(not procguard.supported(), reason="the guard relies on Linux process control")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def _wrapper(tmp_path: Path, body: str) -> Path:
    """A shell script that does NOT exec its payload: the payload is the wrapper's child (the guard's grandchild)
    and writes its pid to pid.txt once it runs."""
    script = tmp_path / "wrapper.sh"
    script.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return script


def _read_pid(path: Path, seconds: float = 20) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text().split()[0])
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


PARENT = """
import sys
from segflow import procguard
from segflow.settings import Settings
from segflow.warehouse_lock import hold

settings = Settings(home=sys.argv[1])
with hold(settings, exclusive=True, step="test parent") as fd:
    procguard.run([sys.argv[2]], keep_fds=(fd,))
"""


def _start_parent(tmp_path: Path, script: Path) -> tuple[subprocess.Popen, Settings]:
    settings = Settings(home=tmp_path / "home")
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(settings.home), str(script)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return parent, settings


def test_kill_9_of_the_parent_takes_the_wrapped_grandchild_down(tmp_path):
    pid_file = tmp_path / "pid.txt"
    script = _wrapper(tmp_path, f"""
        sleep 300 &
        echo $! > {pid_file}
        wait
        """)
    parent, _ = _start_parent(tmp_path, script)
    grandchild = _read_pid(pid_file)
    assert _alive(grandchild)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    assert _wait_gone([grandchild], 3) == [], "the wrapped grandchild outlived its killed parent"


def test_a_grandchild_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path):
    pid_file = tmp_path / "pid.txt"
    # python, not sh: the payload itself ignores SIGTERM (a wedged dbt), so only SIGKILL can end it
    script = _wrapper(tmp_path, f"""
        {sys.executable} -c "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); \\
open('{pid_file}', 'w').write(str(os.getpid())); time.sleep(300)"
        """)
    parent, _ = _start_parent(tmp_path, script)
    grandchild = _read_pid(pid_file)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    time.sleep(1)
    assert _alive(grandchild), "SIGTERM is ignored: it must still be running inside the grace period"
    assert _wait_gone([grandchild], procguard.GRACE_SECONDS + 3) == []


def test_the_warehouse_lock_stays_held_until_the_group_is_gone(tmp_path):
    """A killed parent's lock passes to the guard: no next writer while its dying child may still write."""
    pid_file = tmp_path / "pid.txt"
    script = _wrapper(tmp_path, f"""
        {sys.executable} -c "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); \\
open('{pid_file}', 'w').write(str(os.getpid())); time.sleep(300)"
        """)
    parent, settings = _start_parent(tmp_path, script)
    grandchild = _read_pid(pid_file)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    with pytest.raises(WarehouseLocked) as info:
        with hold(settings, exclusive=True, timeout=0.5):
            pass
    assert f"held by process {parent.pid}: test parent" in str(info.value)
    assert "that process is gone and its dbt is being stopped" in str(info.value)
    assert _wait_gone([grandchild], procguard.GRACE_SECONDS + 3) == []
    started = time.monotonic()
    with hold(settings, exclusive=True, timeout=5):
        assert time.monotonic() - started < 2, "the lock must be free once the group is gone"


def test_stop_all_stops_the_group_and_the_caller_learns_it_was_stopped(tmp_path):
    pid_file = tmp_path / "pid.txt"
    script = _wrapper(tmp_path, f"""
        sleep 300 &
        echo $! > {pid_file}
        wait
        """)
    outcome: dict = {}

    def call() -> None:
        try:
            outcome["code"] = procguard.run([str(script)])
        except procguard.Stopped as exc:
            outcome["stopped"] = str(exc)

    worker = threading.Thread(target=call)
    worker.start()
    grandchild = _read_pid(pid_file)
    assert procguard.stop_all() == 1
    worker.join(timeout=procguard.GRACE_SECONDS + 5)
    assert not worker.is_alive()
    assert "stopped on request" in outcome.get("stopped", ""), outcome
    assert _wait_gone([grandchild], 1) == []


def test_an_exception_in_the_caller_stops_the_group_before_it_propagates(tmp_path):
    """What an Airflow execution_timeout or a Ctrl-C does: an exception raised while run() waits."""
    pid_file = tmp_path / "pid.txt"
    script = _wrapper(tmp_path, f"""
        sleep 300 &
        echo $! > {pid_file}
        wait
        """)

    def timeout(signum, frame):
        raise TimeoutError("task timed out")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(3)
    try:
        with pytest.raises(TimeoutError):
            procguard.run([str(script)])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    grandchild = _read_pid(pid_file, seconds=1)
    assert not _alive(grandchild), "the group must be gone when the exception reaches the caller"


def test_what_a_finished_command_left_running_is_stopped(tmp_path):
    pid_file = tmp_path / "pid.txt"
    script = _wrapper(tmp_path, f"""
        sleep 300 &
        echo $! > {pid_file}
        exit 3
        """)
    assert procguard.run([str(script)]) == 3
    assert _wait_gone([_read_pid(pid_file, seconds=1)], 2) == []


def test_exit_codes_pass_through(tmp_path):
    assert procguard.run([sys.executable, "-c", "raise SystemExit(7)"]) == 7
    assert procguard.run([sys.executable, "-c", "pass"]) == 0
