"""Every dbt model is an Airflow task: a model broken on purpose fails its own task, with dbt's message in that
task's log, through the real Airflow, Cosmos, dbt and DuckDB.

The broken model lives in a copy of the dbt project (SEGFLOW_DBT_PROJECT_DIR), with its own manifest, so the
checkout is never touched: ``zz_broken`` raises a DuckDB error; ``zz_after_broken`` reads it.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from tests_support import week_end

from segflow import airflow_local
from segflow.dbt_manifest import write_manifest
from segflow.settings import Settings
from segflow.warehouse import connect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PRODUCER = "dbt_build.dbt_producer_watcher"
MESSAGE = "broken on purpose by the segflow e2e test"


def _states(settings) -> dict[str, str]:
    with sqlite3.connect(settings.airflow_home / "airflow.db") as con:
        run_id = con.execute("select run_id from dag_run where dag_id = 'segflow_elt' order by id desc limit 1"
                             ).fetchone()[0]
        return dict(con.execute("select task_id, state from task_instance where dag_id = 'segflow_elt' and "
                                "run_id = ?", [run_id]).fetchall())


def _task_log(log: str, task_id: str) -> str:
    """The lines ``airflow dags test`` logged while it ran ``task_id`` (it runs one task at a time)."""
    start = re.search(rf"\[DAG TEST\] starting task_id={re.escape(task_id)} ", log)
    end = re.search(rf"\[DAG TEST\] end task task_id={re.escape(task_id)} ", log)
    assert start and end, task_id
    return log[start.end():end.start()]


@pytest.fixture
def broken_project(home_copy, tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("AIRFLOW")]:
        monkeypatch.delenv(key)
    project = tmp_path / "dbt_project"
    shutil.copytree(home_copy.dbt_project_dir, project, ignore=shutil.ignore_patterns("target", "logs"))
    models = project / "models" / "zz_e2e"
    models.mkdir()
    (models / "zz_broken.sql").write_text(
        # a table: a view would be created without running the query, so without the error
        "{{ config(materialized='table') }}\n"
        f"select error('{MESSAGE}') as boom from {{{{ ref('int_run_context') }}}}\n")
    (models / "zz_after_broken.sql").write_text("select * from {{ ref('zz_broken') }}\n")
    monkeypatch.setenv("SEGFLOW_DBT_PROJECT_DIR", str(project))
    settings = Settings(home=home_copy.home)
    write_manifest(settings)
    airflow_local.init(settings)
    return settings


def test_a_broken_model_fails_its_own_task_with_dbts_message(broken_project):
    settings = broken_project
    outcome = airflow_local.test_dag("segflow_elt", week_end(5).date().isoformat(), settings)
    assert outcome.state == "failed"
    log = Path(outcome.log).read_text()
    states = _states(settings)

    assert states["load_raw"] == "success"
    assert states[PRODUCER] == "failed"  # the build failed: one dbt node did
    assert states["dbt_build.zz_broken_run"] == "failed"
    assert states["dbt_build.zz_after_broken_run"] == "upstream_failed"  # dbt skipped it
    assert states["quality_gate"] == "upstream_failed"
    # the models dbt built are green, their tests too
    for model in ("stg_raw__events", "fct_sessions", "customer_features"):
        assert states[f"dbt_build.{model}_run"] == "success", model
    failed = {t for t, s in states.items() if s == "failed"}
    assert failed == {PRODUCER, "dbt_build.zz_broken_run"}

    broken = _task_log(log, "dbt_build.zz_broken_run")
    assert MESSAGE in broken
    assert re.search(r"dbt: \d+ of \d+ ERROR creating sql \w+ model \S*zz_broken", broken), broken[-2000:]
    # a model's task has dbt's lines about the model and its data tests, and no other model's
    fine = _task_log(log, "dbt_build.fct_sessions_run")
    assert re.search(r"dbt: \d+ of \d+ OK created sql \w+ model \S*fct_sessions", fine)
    assert re.search(r"dbt: \d+ of \d+ PASS \S+fct_sessions", fine)
    assert MESSAGE not in fine and "customer_features" not in fine
    # the producer's log has the build (dbt's lines) and its one-line failure; the failure alert went out
    producer = _task_log(log, PRODUCER)
    assert "zz_broken" in producer and "Completed with 1 error" in producer
    assert f"ALERT segflow: segflow_elt.{PRODUCER} failed" in producer
    # the build's guarantees: a failed build is recorded, so the next build is a full refresh
    with connect(settings, read_only=True) as con:
        assert con.execute("select status from meta.build_state order by build_seq desc limit 1").fetchall() == [
            ("failed",)]
        assert con.execute("select status from meta.run_log where step = 'build' order by started_at desc "
                           "limit 1").fetchall() == [("failed",)]
