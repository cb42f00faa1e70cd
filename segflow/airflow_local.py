"""The embedded Airflow installation: an Airflow home inside SEGFLOW_HOME (SQLite + LocalExecutor).

Everything here shells out to the real ``airflow`` CLI. Values already in the environment win, so the
same commands work against a production-like setup (Postgres metadata, CeleryExecutor) by exporting
``AIRFLOW__…`` variables first.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from segflow.errors import SegflowError
from segflow.settings import PROJECT_ROOT, Settings, get_settings

WAREHOUSE_POOL = "segflow_warehouse"
ADMIN_USER = "admin"


def airflow_env(settings: Settings | None = None) -> dict[str, str]:
    settings = settings or get_settings()
    defaults = {
        "AIRFLOW_HOME": str(settings.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(settings.airflow_home / "passwords.json"),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    env = dict(os.environ)
    for key, value in defaults.items():
        env.setdefault(key, value)
    # tasks reach the Execution API through the api-server: it must follow the port actually used
    env.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
                   f"http://{env['AIRFLOW__API__HOST']}:{env['AIRFLOW__API__PORT']}/execution/")
    env["SEGFLOW_HOME"] = str(settings.home)  # the settings in hand always win: tasks must see the same home
    # the airflow CLI must be the one next to this interpreter (the project's venv)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _airflow(args: list[str], settings: Settings, log: Path | None = None, check: bool = True
             ) -> tuple[int, str]:
    """Run the ``airflow`` CLI; returns (exit code, combined output)."""
    cmd = [str(Path(sys.executable).with_name("airflow")), *args]
    if log is None:
        proc = subprocess.run(cmd, env=airflow_env(settings), capture_output=True, text=True, check=False)
        output = proc.stdout + proc.stderr
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as fh:
            proc = subprocess.run(cmd, env=airflow_env(settings), stdout=fh, stderr=subprocess.STDOUT, check=False)
        output = log.read_text()
    if check and proc.returncode != 0:
        tail = " | ".join(output.strip().splitlines()[-5:])
        where = f" Full log: {log}" if log else ""
        raise SegflowError(f"`airflow {' '.join(args)}` failed: {tail}.{where}")
    return proc.returncode, output


def admin_password(settings: Settings) -> str:
    path = settings.airflow_home / "passwords.json"
    if path.exists():
        return json.loads(path.read_text()).get(ADMIN_USER, "")
    return ""


def init(settings: Settings | None = None) -> dict:
    """Create/migrate the metadata DB, the one-slot warehouse pool and the login; write the dbt manifest the
    DAG is rendered from if the dbt project changed since (segflow.dbt_manifest). Idempotent."""
    from segflow.dbt_manifest import ensure_manifest

    settings = settings or get_settings()
    ensure_manifest(settings)
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    passwords = settings.airflow_home / "passwords.json"
    if not passwords.exists():
        passwords.write_text(json.dumps({ADMIN_USER: secrets.token_urlsafe(12)}))
        passwords.chmod(0o600)
    logs = settings.artifacts_dir / "airflow"
    _airflow(["db", "migrate"], settings, log=logs / "db_migrate.log")
    _airflow(["pools", "set", WAREHOUSE_POOL, "1",
              "DuckDB allows one writer: every task that opens the warehouse runs in this pool"], settings)
    return {"airflow_home": str(settings.airflow_home), "pool": WAREHOUSE_POOL, "user": ADMIN_USER}


@dataclass
class DagRunOutcome:
    dag_id: str
    logical_date: str
    state: str
    log: str

    def as_dict(self) -> dict:
        return self.__dict__.copy()


_FINISHED = re.compile(r"DagRun Finished: dag_id=(\S+?), .*?state=(\w+)")


def test_dag(dag_id: str, logical_date: str, settings: Settings | None = None, conf: dict | None = None
             ) -> DagRunOutcome:
    """Run one DAG run in-process with ``airflow dags test`` (recorded in the metadata DB, visible in the UI);
    ``conf`` becomes the run's params."""
    settings = settings or get_settings()
    log = settings.artifacts_dir / "airflow" / f"{dag_id}_{logical_date}.log"
    args = ["dags", "test", dag_id, logical_date, *(["--conf", json.dumps(conf)] if conf else [])]
    returncode, output = _airflow(args, settings, log=log, check=False)
    states = [state for found_dag, state in _FINISHED.findall(output) if found_dag == dag_id]
    state = states[-1] if states else ("failed" if returncode else "unknown")
    return DagRunOutcome(dag_id=dag_id, logical_date=logical_date, state=state, log=str(log))
