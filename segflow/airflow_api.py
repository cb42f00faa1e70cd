"""A small client of the embedded Airflow's REST API (``/api/v2``), standard library only.

Used by the demo (backfills, waiting for runs, pausing) and its tests (task logs). The login is the Simple
auth manager's admin of ``segflow.airflow_local``; tokens come from ``POST /auth/token``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, date, datetime
from datetime import time as clock

from segflow.errors import SegflowError

FINISHED = ("success", "failed")


class AirflowApiError(SegflowError):
    """The Airflow REST API refused a request."""


class AirflowApi:
    def __init__(self, base_url: str, user: str, password: str):
        self.base_url = base_url.rstrip("/")
        self.user, self.password = user, password
        self._token: str | None = None

    def _send(self, method: str, path: str, body: dict | None, token: str | None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise AirflowApiError(f"{method} {self.base_url}{path}: {exc}") from None

    def token(self) -> str:
        if self._token is None:
            status, payload = self._send("POST", "/auth/token",
                                         {"username": self.user, "password": self.password}, None)
            if status not in (200, 201):
                raise AirflowApiError(f"Airflow login as {self.user} refused ({status}): {payload[:200]!r}")
            self._token = json.loads(payload)["access_token"]
        return self._token

    def request(self, method: str, path: str, body: dict | None = None, raw: bool = False):
        status, payload = self._send(method, path, body, self.token())
        if status == 401:  # expired token: log in again once
            self._token = None
            status, payload = self._send(method, path, body, self.token())
        if status >= 400:
            raise AirflowApiError(f"{method} {path} -> {status}: {payload[:300].decode(errors='replace')}")
        return payload.decode(errors="replace") if raw else json.loads(payload or b"null")

    # --- what the demo and tests need ----------------------------------------------------------------------
    def wait_for_dags(self, dag_ids: list[str], timeout: float, alive: Callable[[], None] = lambda: None) -> None:
        """Wait until the dag-processor has registered every DAG (the API knows it)."""
        deadline = time.monotonic() + timeout
        missing = list(dag_ids)
        while missing:
            alive()
            try:
                self.request("GET", f"/api/v2/dags/{missing[0]}")
                missing.pop(0)
                continue
            except AirflowApiError:
                if time.monotonic() > deadline:
                    raise AirflowApiError(f"Airflow did not register DAG {missing[0]} within {timeout:.0f} s "
                                          "(import error? `airflow dags list-import-errors --local`)") from None
            time.sleep(1)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})

    def backfill(self, dag_id: str, first: date, last: date, max_active_runs: int = 1) -> dict:
        """Backfill the runs whose logical dates fall on ``first``..``last`` (inclusive), oldest first, one at a
        time; runs that exist already are run again (reprocess ``completed``)."""
        body = {"dag_id": dag_id, "from_date": _midnight(first), "to_date": _midnight(last),
                "max_active_runs": max_active_runs, "reprocess_behavior": "completed", "run_backwards": False}
        # On SQLite (the embedded default) Airflow refuses a backfill with 503 "Database is locked" while the
        # scheduler writes: a transient refusal, so ask again for a while before giving up
        deadline = time.monotonic() + 120
        while True:
            try:
                return self.request("POST", "/api/v2/backfills", body)
            except AirflowApiError as exc:
                if "-> 503" not in str(exc) or "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def cancel_unfinished_backfills(self, dag_id: str) -> list[int]:
        """Cancel the DAG's backfills left unfinished (an interrupted demo): one may be active per DAG."""
        backfills = self.request("GET", f"/api/v2/backfills?dag_id={urllib.parse.quote(dag_id)}&limit=100")
        stale = [b["id"] for b in backfills["backfills"] if not b.get("completed_at")]
        for backfill_id in stale:
            self.request("PUT", f"/api/v2/backfills/{backfill_id}/cancel")
        return stale

    def wait_for_backfill(self, backfill_id: int, timeout: float, alive: Callable[[], None] = lambda: None) -> dict:
        """Wait until the scheduler marks the backfill completed (a DAG has one active backfill at a time)."""
        deadline = time.monotonic() + timeout
        while True:
            alive()
            backfill = self.request("GET", f"/api/v2/backfills/{backfill_id}")
            if backfill.get("completed_at"):
                return backfill
            if time.monotonic() > deadline:
                raise AirflowApiError(f"backfill {backfill_id} of {backfill['dag_id']} not completed after "
                                      f"{timeout:.0f} s")
            time.sleep(2)

    def dag_runs(self, dag_id: str, **filters) -> list[dict]:
        query = urllib.parse.urlencode({"order_by": "-run_after", "limit": 100, **filters})
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?{query}")["dag_runs"]

    def wait_for_runs(self, dag_id: str, count: int, timeout: float, alive: Callable[[], None] = lambda: None,
                      **filters) -> list[dict]:
        """Wait until ``count`` runs matching ``filters`` exist and all have finished; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            alive()
            runs = self.dag_runs(dag_id, **filters)
            if len(runs) >= count and all(r["state"] in FINISHED for r in runs):
                return runs
            if time.monotonic() > deadline:
                states = ", ".join(f"{r['dag_run_id']}={r['state']}" for r in runs) or "none created"
                raise AirflowApiError(f"{dag_id}: runs not finished after {timeout:.0f} s ({states})")
            time.sleep(2)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
        return self.request("GET", path)["task_instances"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        path = (f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/{task_id}"
                f"/logs/{try_number}?full_content=true")
        content = self.request("GET", path)["content"]
        if isinstance(content, list):  # structured log lines
            return "\n".join(line.get("event", "") if isinstance(line, dict) else str(line) for line in content)
        return str(content)


def run_seconds(run: dict) -> float:
    """How long a finished run took (end - start, from the API)."""
    if not run.get("start_date") or not run.get("end_date"):
        return 0.0
    return (iso_utc(run["end_date"]) - iso_utc(run["start_date"])).total_seconds()


def _midnight(day: date) -> str:
    return datetime.combine(day, clock.min, tzinfo=UTC).isoformat()


def iso_utc(value: str | datetime) -> datetime:
    """An API timestamp ('2025-10-06T00:00:00Z') as an aware UTC datetime."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
