"""The one lock every segflow process takes before it touches the warehouse, dbt included.

DuckDB lets one process open the file read-write and then refuses every other open (read-only too) after a
few milliseconds; a dbt child started meanwhile dies with a long DuckDB traceback. So segflow queues on an
advisory lock of its own beside the warehouse (``warehouse.duckdb.lock``, ``flock``) *before* it opens
DuckDB: writers take it exclusively, readers shared, and everyone waits up to
``SEGFLOW_LOCK_TIMEOUT_SECONDS`` with the same :class:`~segflow.errors.WarehouseLocked` message.

- A writer step holds the lock for the whole step (plan, dbt, bookkeeping), and hands it to its dbt child's
  guard (:mod:`segflow.procguard`): the lock is free only once no process of the step can still write.
- The kernel drops a lock when its last holder dies, so ``kill -9`` never leaves a stale lock behind.
- A second file, ``warehouse.duckdb.lock-queue``, is a turnstile: whoever waits holds it while waiting, so
  newcomers queue behind the waiter. Readers cannot starve a writer, and a process that runs step after step
  cannot starve a reader that is already waiting.
- The lock is re-entrant within a thread (a step's own connections and its dbt run go through); another
  thread of the same process queues like another process.

Processes that are not segflow (a notebook, a BI tool) do not know this lock; :func:`segflow.warehouse.connect`
still waits for DuckDB's own lock after this one, with the same message.
"""

from __future__ import annotations

import fcntl
import functools
import inspect
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from segflow.errors import WarehouseLocked
from segflow.settings import Settings, get_settings

_local = threading.local()


def lock_path(settings: Settings) -> Path:
    return settings.warehouse_path.with_name(settings.warehouse_path.name + ".lock")


def _queue_path(settings: Settings) -> Path:
    return settings.warehouse_path.with_name(settings.warehouse_path.name + ".lock-queue")


def locked_error(settings: Settings, who: str = "", waited: float | None = None) -> WarehouseLocked:
    """The one message for a warehouse that stayed locked, whoever waited (a job, dbt, a reader)."""
    waited = settings.lock_timeout_seconds if waited is None else waited
    return WarehouseLocked(
        f"The warehouse {settings.warehouse_path} is locked by another writer{who} and stayed locked for "
        f"{waited:g} s. Run warehouse steps one at a time (the Airflow "
        "pool 'segflow_warehouse' has one slot for this) or raise SEGFLOW_LOCK_TIMEOUT_SECONDS.")


@dataclass
class _Held:
    fd: int
    exclusive: bool
    pid: int
    depth: int = 1


def _held() -> dict[str, _Held]:
    held = getattr(_local, "held", None)
    if held is None:
        held = _local.held = {}
    return held


def _open(path: Path) -> int | None:
    """The lock file, opened for locking; None where it cannot be (a read-only copy of a home)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError:
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None


def _flock_until(fd: int, mode: int, deadline: float) -> bool:
    """Poll for ``flock(mode)`` until ``deadline``; True once held. Polling (not a blocking call) keeps the wait
    bounded; the turnstile makes the order fair."""
    delay = 0.01
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def holder(settings: Settings) -> dict | None:
    """Who holds the lock exclusively (pid, step, command, since), as that process wrote it; None if unknown."""
    try:
        data = json.loads(lock_path(settings).read_text() or "null")
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "pid" not in data:
        return None
    try:
        os.kill(int(data["pid"]), 0)
        data["alive"] = True
    except ProcessLookupError:
        data["alive"] = False
    except (PermissionError, ValueError):
        data["alive"] = True
    return data


def describe_holder(settings: Settings) -> str:
    """`` (held by process N: segflow build, since …)`` for the lock message; empty when nobody is known."""
    info = holder(settings)
    if not info:
        return ""
    what = info.get("step") or info.get("command") or "?"
    gone = "" if info.get("alive") else "; that process is gone and its dbt is being stopped"
    return f" (held by process {info['pid']}: {what}, since {info.get('since', '?')}{gone})"


def _process_step() -> str:
    """What this process is, for a lock message: ``segflow build``, ``airflow dags test``, ``python``."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] not in ("", "-c", "-m") else "python"
    words = {"segflow": 1, "airflow": 2}.get(name, 0)
    return " ".join([name, *sys.argv[1:1 + words]])


@contextmanager
def hold(settings: Settings, *, exclusive: bool, timeout: float | None = None, step: str | None = None
         ) -> Iterator[int | None]:
    """Hold the warehouse lock (``exclusive`` for writers); yields the lock file's descriptor (to hand to a child
    that must keep the lock alive) or None where no lock file can exist. Raises :class:`WarehouseLocked` after
    ``timeout`` seconds (default ``SEGFLOW_LOCK_TIMEOUT_SECONDS``)."""
    path = lock_path(settings)
    held = _held()
    current = held.get(str(path))
    if current is not None and current.pid == os.getpid():
        if exclusive and not current.exclusive:
            raise RuntimeError("a shared warehouse lock cannot be upgraded to an exclusive one in place: take the "
                               "exclusive lock first")
        current.depth += 1
        try:
            yield current.fd
        finally:
            current.depth -= 1
        return
    wait = settings.lock_timeout_seconds if timeout is None else timeout
    fd = _acquire(settings, exclusive, time.monotonic() + wait, wait)
    if fd is None:
        yield None
        return
    if exclusive:
        _write_holder(fd, step or _process_step())
    held[str(path)] = _Held(fd=fd, exclusive=exclusive, pid=os.getpid())
    try:
        yield fd
    finally:
        del held[str(path)]
        if exclusive:
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
        os.close(fd)


def _acquire(settings: Settings, exclusive: bool, deadline: float, wait: float) -> int | None:
    queue = _open(_queue_path(settings))
    fd = _open(lock_path(settings))
    if fd is None:
        if queue is not None:
            os.close(queue)
        return None
    try:
        if queue is not None and not _flock_until(queue, fcntl.LOCK_EX, deadline):
            raise locked_error(settings, describe_holder(settings), wait)
        if not _flock_until(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, deadline):
            raise locked_error(settings, describe_holder(settings), wait)
    except BaseException:
        os.close(fd)
        raise
    finally:
        if queue is not None:
            os.close(queue)  # leaves the turnstile: the next waiter may queue for the lock
    return fd


def _write_holder(fd: int, step: str) -> None:
    record = {"pid": os.getpid(), "step": step, "command": " ".join(sys.argv)[:200],
              "since": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
    except OSError:
        pass  # a read-only lock file still locks; only the holder's name is missing from messages


def is_held_here(settings: Settings, exclusive: bool = True) -> bool:
    current = _held().get(str(lock_path(settings)))
    return bool(current and current.pid == os.getpid() and (current.exclusive or not exclusive))


def warehouse_step(step: str, *, detail: bool = True) -> Callable:
    """Run a job step as one writer: the exclusive lock for the whole step, its row in ``meta.run_log``
    (:mod:`segflow.run_log`), then the published status snapshot (what ``segflow status`` shows while a later
    writer holds the warehouse).

    The decorated function takes ``settings`` (positionally first or by keyword) like every job. ``detail=False``
    keeps the error text and the result out of the run log (a step whose messages may name a person: erasure)."""

    def decorate(func: Callable) -> Callable:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            bound = signature.bind_partial(*args, **kwargs)
            settings = bound.arguments.get("settings") or get_settings()
            bound.arguments["settings"] = settings
            from segflow import run_log

            as_of = bound.arguments.get("as_of")
            with hold(settings, exclusive=True, step=f"segflow {step}"):
                started_at, result, failure = run_log.utc_now(), None, None
                try:
                    result = func(*bound.args, **bound.kwargs)
                    return result
                except BaseException as exc:
                    failure = exc
                    raise
                finally:
                    from segflow.jobs.status import publish_snapshot

                    run_log.record(settings, step, started_at, as_of if isinstance(as_of, datetime) else None,
                                   result, failure, detail=detail)
                    publish_snapshot(settings, step)

        return wrapper

    return decorate
