"""Through real Airflow (`airflow dags test`, as the demo runs it): a task Airflow stops takes its dbt down
(``on_kill`` of ``@warehouse_task``), and an invalid setting fails the task with its one-line message.

Airflow 3 stops a running task with SIGTERM; its task runner then only calls the operator's ``on_kill`` and waits
(escalating to SIGKILL later). Without an ``on_kill`` that stops dbt, dbt would go on writing the warehouse.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests_support import week_end

from segflow import airflow_local
from segflow.settings import Settings
from segflow.warehouse import connect

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process control is Linux-tested")]

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
WEEK5 = week_end(5).date().isoformat()


@pytest.fixture(autouse=True)
def _no_outside_airflow(monkeypatch):
    """The runs below must use the home's embedded Airflow, whatever the developer has exported."""
    for key in [k for k in os.environ if k.startswith("AIRFLOW")]:
        monkeypatch.delenv(key)


@pytest.fixture(scope="module")
def airflow_home(built_home, tmp_path_factory) -> Settings:
    target = tmp_path_factory.mktemp("on_kill") / "home"
    shutil.copytree(built_home.home, target, ignore=shutil.ignore_patterns("*.wal"))
    settings = Settings(home=target)
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("AIRFLOW")]:
            patch.delenv(key)
        airflow_local.init(settings)
    return settings


def _descendants(pid: int) -> dict[int, str]:
    parents, commands = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = {}, [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in found:
                found[child] = commands.get(child, "")
                frontier.append(child)
    return found


def _task_states(settings: Settings, dag_id: str) -> dict[str, str]:
    with sqlite3.connect(settings.airflow_home / "airflow.db") as con:
        run_id = con.execute("select run_id from dag_run where dag_id = ? order by id desc limit 1",
                             [dag_id]).fetchone()[0]
        return dict(con.execute("select task_id, state from task_instance where dag_id = ? and run_id = ?",
                                [dag_id, run_id]).fetchall())


def test_a_task_airflow_stops_takes_its_dbt_down(airflow_home, tmp_path):
    settings = airflow_home
    log = tmp_path / "dags_test.log"
    with open(log, "w") as out:
        airflow = subprocess.Popen([AIRFLOW, "dags", "test", "segflow_elt", WEEK5],
                                   env=airflow_local.airflow_env(settings), stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        dbt: list[int] = []
        while not dbt and time.monotonic() < deadline:
            assert airflow.poll() is None, log.read_text()[-3000:]
            dbt = [pid for pid, cmd in _descendants(airflow.pid).items()
                   if "procguard" not in cmd and "/dbt build" in cmd]
            time.sleep(0.1)
        assert dbt, "dbt never started under the dbt_build producer task"
        os.kill(airflow.pid, signal.SIGTERM)  # what the supervisor sends a task it stops
        # dbt needs far longer for this build: gone within 3 s means on_kill stopped it
        deadline = time.monotonic() + 3
        while any(Path(f"/proc/{pid}").exists() for pid in dbt) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(Path(f"/proc/{pid}").exists() for pid in dbt), "dbt outlived the task Airflow stopped"
        airflow.wait(timeout=120)
    finally:
        if airflow.poll() is None:
            os.killpg(airflow.pid, signal.SIGKILL)
            airflow.wait()
    text = log.read_text()
    assert "segflow: task killed; stopped 1 running dbt process group(s)" in text
    assert "`dbt build` was stopped (the task was killed)" in text
    states = _task_states(settings, "segflow_elt")
    assert states["load_raw"] == "success" and states["dbt_build.dbt_producer_watcher"] == "failed"
    assert states["quality_gate"] == "upstream_failed"
    with connect(settings, timeout=5) as con:  # the warehouse is free again; the build recorded its failure
        assert con.execute("select status from meta.build_state order by build_seq desc limit 1"
                           ).fetchall() == [("failed",)]


def test_an_invalid_setting_fails_the_run_with_its_one_line_message(airflow_home, tmp_path):
    env = {**airflow_local.airflow_env(airflow_home), "SEGFLOW_CONSENT_POLICY": "maybe"}
    done = subprocess.run([AIRFLOW, "dags", "test", "segflow_elt", WEEK5], env=env, capture_output=True, text=True,
                          timeout=600)
    text = done.stdout + done.stderr
    line = ("invalid setting SEGFLOW_CONSENT_POLICY='maybe': allowed: one of require_recorded, "
            "collected_under_consent")
    assert f"AirflowFailException: {line}" in text
    assert "validation error for Settings" not in text  # pydantic's multi-line report never reaches the log
    states = _task_states(airflow_home, "segflow_elt")
    assert states["load_raw"] == "failed" and states["dbt_build.dbt_producer_watcher"] == "upstream_failed"
    # no build ran: the model tasks are skipped, not left waiting for results that never come
    models = {t: s for t, s in states.items() if t.startswith("dbt_build.") and t.endswith(("_run", "_seed"))}
    assert len(models) > 50 and set(models.values()) == {"skipped"}
