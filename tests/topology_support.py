"""Processes and REST calls for tests/e2e/test_celery_topology.py (tests/ is on sys.path)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from segflow import topology, topology_local


class Api:
    """The api-server's REST API as the admin user of the Simple auth manager."""

    def __init__(self, port: int, password: str):
        import httpx

        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        self.password = password

    def login(self) -> None:
        reply = self.http.post("/auth/token", json={"username": "admin", "password": self.password})
        reply.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"

    def get(self, path: str, **params) -> dict:
        reply = self.http.get(f"/api/v2{path}", params=params)
        reply.raise_for_status()
        return reply.json()

    def patch(self, path: str, body: dict) -> dict:
        reply = self.http.patch(f"/api/v2{path}", json=body)
        reply.raise_for_status()
        return reply.json()

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns", order_by="run_after")["dag_runs"]

    def tasks(self, run: dict) -> list[dict]:
        return self.get(f"/dags/{run['dag_id']}/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]


class Topology:
    def __init__(self, root, plan: list[topology_local.ProcessSpec]):
        self.root, self.plan, self.procs, self.logs = root, plan, {}, {}

    def run_init(self, spec: topology_local.ProcessSpec) -> None:
        log = self.root / f"{spec.name}.log"
        with open(log, "w") as out:
            done = subprocess.run(spec.argv, env=spec.env, stdout=out, stderr=subprocess.STDOUT, timeout=600)
        assert done.returncode == 0, f"{spec.name} failed:\n{log.read_text()[-3000:]}"

    def start(self, spec: topology_local.ProcessSpec) -> None:
        log = self.root / f"{spec.name}.log"
        self.logs[spec.name] = log
        # Own session (stopped as a group); SIGINT restored, a background parent may have left it ignored.
        self.procs[spec.name] = subprocess.Popen(
            spec.argv, env=spec.env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = self.logs[name].read_text()[-3000:]
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{tail}")

    def stop(self) -> None:
        # Workers first (SIGTERM: Celery's warm shutdown), then the rest, then whatever is left of each group.
        order = sorted(self.procs, key=lambda name: not name.startswith(topology.WORKER))
        for name in order:
            if self.procs[name].poll() is None:
                self.procs[name].send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 45
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def wait_for(what: str, check, timeout: float, topo: Topology, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while True:
        topo.check_alive()
        try:
            value = check()
        except Exception as exc:  # noqa: BLE001 - the server may not be up yet; retried until the deadline
            value, error = None, exc
        else:
            error = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {error})")
        time.sleep(every)
