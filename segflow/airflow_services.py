"""The embedded Airflow's long-running components, started as separate processes for a while, quietly.

``running(settings)`` starts the api-server (UI, REST API and the Execution API the tasks report to), the
scheduler (LocalExecutor: it runs the tasks), the dag-processor and the triggerer, each logging to
``$SEGFLOW_HOME/artifacts/airflow/services/<component>.log`` instead of the terminal, waits until the
api-server answers, and stops them on exit: SIGINT first (their clean shutdown; SIGTERM can orphan the
scheduler's workers), SIGKILL of the process group only if one does not stop within the grace period.
The demo runs the DAGs through it; ``segflow airflow ui`` keeps it up until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from segflow.errors import SegflowError
from segflow.settings import Settings

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
STOP_ORDER = ("scheduler", "triggerer", "dag-processor", "api-server")  # the api-server last: tasks report to it
STOP_GRACE_SECONDS = 45


@dataclass
class Services:
    settings: Settings
    base_url: str
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def check_alive(self) -> None:
        """Fail with the component's log when one of them died (a port in use, a broken config)."""
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                log = self.log_dir / f"{name}.log"
                tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:]) if log.exists() else ""
                raise SegflowError(f"Airflow's {name} exited (code {proc.returncode}): {tail}  Full log: {log}")

    def wait_ready(self) -> None:
        """Wait until the api-server answers (the UI, the REST API and the tasks' Execution API)."""
        deadline = time.monotonic() + self.settings.airflow_start_timeout_seconds
        while not _answers(f"{self.base_url}/api/v2/monitor/health"):
            self.check_alive()
            if time.monotonic() > deadline:
                raise SegflowError(f"Airflow's api-server did not answer on {self.base_url} within "
                                   f"{self.settings.airflow_start_timeout_seconds:.0f} s; logs: {self.log_dir}")
            time.sleep(1)

    def stop(self) -> None:
        for name in STOP_ORDER:
            proc = self.processes.get(name)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for name in STOP_ORDER:
            proc = self.processes.get(name)
            if proc is None:
                continue
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # whatever the component left behind in its own session (workers, gunicorn children) goes too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self.processes.clear()


def _restore_sigint() -> None:
    # a process started from a non-interactive shell (`cmd &`) inherits SIGINT ignored: the component must
    # react to the SIGINT we send to stop it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _port_in_use(host: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@contextlib.contextmanager
def running(settings: Settings, wait: bool = True) -> Iterator[Services]:
    """Start the components (Airflow initialised first by the caller), yield once the API answers (at once with
    ``wait=False``: call ``wait_ready()`` later), stop them when the block ends."""
    from segflow.airflow_local import airflow_env

    env = airflow_env(settings)
    host, port = env["AIRFLOW__API__HOST"], int(env["AIRFLOW__API__PORT"])
    if _port_in_use(host, port):
        raise SegflowError(f"port {port} on {host} is already in use (another Airflow?). Stop it, or choose "
                           f"another port: SEGFLOW_AIRFLOW_PORT=8081 (or AIRFLOW__API__PORT)")
    services = Services(settings=settings, base_url=f"http://{host}:{port}",
                        log_dir=settings.artifacts_dir / "airflow" / "services")
    services.log_dir.mkdir(parents=True, exist_ok=True)
    airflow = str(Path(sys.executable).with_name("airflow"))
    try:
        for name in COMPONENTS:
            with open(services.log_dir / f"{name}.log", "ab") as log:
                services.processes[name] = subprocess.Popen(
                    [airflow, name], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, preexec_fn=_restore_sigint)
        if wait:
            services.wait_ready()
        yield services
    finally:
        services.stop()
