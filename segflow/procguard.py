"""Children that cannot outlive segflow: dbt (and whatever a dbt wrapper starts) dies with its parent.

``subprocess`` alone is not enough: after ``kill -9`` of ``segflow build`` (or of an Airflow task) its dbt child
goes on writing the warehouse, and Linux's parent-death signal reaches only a direct child, not the real dbt
behind a wrapper script. So a command runs under a small *guard* process (``python -m segflow.procguard``):

- the guard gets SIGTERM when its parent dies (``PR_SET_PDEATHSIG``; it exits at once if the parent was
  already gone when it started);
- it leads a process group of its own, and the command and everything it starts stay in that group;
- on SIGTERM/SIGINT/SIGHUP it sends SIGTERM to the whole group, then SIGKILL to what is left after
  :data:`GRACE_SECONDS`; when the command ends it kills what the command left behind in the group;
- it inherits the caller's warehouse lock (:mod:`segflow.warehouse_lock`) and keeps it until the group is gone,
  so the next writer cannot start while a dying dbt still holds DuckDB's file.

The caller side (:func:`run`) registers every running guard, so :func:`stop_all` (Airflow's ``on_kill``) stops
them all, and an exception in the caller (Ctrl-C, an Airflow timeout) stops the guard before it propagates.
A process that leaves the group on purpose (``setsid``) escapes; dbt and ordinary wrappers do not.
Elsewhere than Linux the command runs as a plain child.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

GRACE_SECONDS = 5.0
"""How long the group has after SIGTERM before SIGKILL (dbt needs no clean-up: DuckDB recovers its WAL)."""

_PR_SET_PDEATHSIG = 1
_running: set[subprocess.Popen] = set()
_running_lock = threading.Lock()
_stopped: set[int] = set()


class Stopped(Exception):
    """The command was stopped on request (:func:`stop_all`), not by its own failure."""


def supported() -> bool:
    return sys.platform.startswith("linux")


def _prctl_pdeathsig(sig: int) -> None:
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)


def run(command: list[str], *, cwd: Path | str | None = None, env: dict[str, str] | None = None, stdout=None,
        stderr=None, keep_fds: tuple[int, ...] = (), on_line: Callable[[str], None] | None = None) -> int:
    """Run ``command`` under a guard and wait; returns its exit code. Raises :class:`Stopped` when
    :func:`stop_all` stopped it.

    ``keep_fds`` are inherited by the guard only (e.g. the warehouse lock), never by the command. With
    ``on_line``, the command's standard output is read line by line as it comes (``stdout`` is then ignored) and
    each line, without its newline, is handed to ``on_line``."""
    if on_line is not None:
        stdout = subprocess.PIPE
    if not supported():
        if on_line is None:
            return subprocess.run(command, cwd=cwd, env=env, stdout=stdout, stderr=stderr, check=False).returncode
        guard = command
        extra = {}
    else:
        guard = [sys.executable, "-m", "segflow.procguard", str(os.getpid()), "--", *command]
        extra = {"pass_fds": keep_fds, "process_group": 0,
                 "preexec_fn": lambda: _prctl_pdeathsig(signal.SIGTERM)}
    proc = subprocess.Popen(guard, cwd=cwd, env=env, stdout=stdout, stderr=stderr,
                            text=on_line is not None, bufsize=1 if on_line is not None else -1, **extra)
    with _running_lock:
        _running.add(proc)
    try:
        if on_line is not None:
            for line in proc.stdout:
                on_line(line.rstrip("\n"))
            proc.stdout.close()
        returncode = proc.wait()
    except BaseException:
        _stop(proc)
        raise
    finally:
        with _running_lock:
            _running.discard(proc)
    if proc.pid in _stopped:
        _stopped.discard(proc.pid)
        raise Stopped(f"{Path(command[0]).name} was stopped on request (exit code {returncode})")
    return returncode


def _stop(proc: subprocess.Popen) -> None:
    """Ask a guard to stop its group; kill the whole group ourselves if it does not answer in time."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=GRACE_SECONDS + 2)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def stop_all() -> int:
    """Stop every guarded command this process runs (Airflow's ``on_kill``). Safe in a signal handler: it only
    sends signals; the thread waiting in :func:`run` sees its command end. Returns how many were signalled."""
    with _running_lock:
        procs = [p for p in _running if p.poll() is None]
    for proc in procs:
        _stopped.add(proc.pid)
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    return len(procs)


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` other than this one, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _signal_members(pgid: int, sig: int) -> None:
    for pid in _group_members(pgid):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _reap_group(pgid: int, child: subprocess.Popen, grace: float) -> None:
    """SIGTERM to every member of the group but the guard, SIGKILL to those alive after ``grace``."""
    _signal_members(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        child.poll()
        if not _group_members(pgid):
            return
        time.sleep(0.05)
    _signal_members(pgid, signal.SIGKILL)


def _guard(parent: int, command: list[str]) -> int:
    _prctl_pdeathsig(signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the death signal was armed
        return 128 + signal.SIGTERM
    pgid = os.getpgid(0)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        # the command's own direct child gets SIGKILL if this guard is killed outright (the group is then
        # unreachable from here)
        child = subprocess.Popen(command, preexec_fn=lambda: _prctl_pdeathsig(signal.SIGKILL))
    except OSError as exc:
        print(f"segflow: cannot start {command[0]}: {exc}", file=sys.stderr)
        return 127
    while child.poll() is None and not stop.is_set():
        stop.wait(0.2)
    if stop.is_set():
        _reap_group(pgid, child, GRACE_SECONDS)
        child.wait()
        return 128 + signal.SIGTERM
    _reap_group(pgid, child, 1.0)  # whatever the command left running in the group may not write on alone
    return child.returncode if child.returncode >= 0 else 128 - child.returncode


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m segflow.procguard PARENT_PID -- COMMAND...", file=sys.stderr)
        return 2
    return _guard(int(argv[0]), argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
