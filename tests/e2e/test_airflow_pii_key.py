"""The PII key through Airflow: a home of real (not generated) data, no SEGFLOW_PII_KEY in the environment.

Without a key the daily DAG's dbt_build fails at once (no retry) with segflow's one-line message; with the
key stored as the Airflow Variable ``segflow_pii_key`` it builds, and the pseudonyms are the HMAC of that key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from segflow import airflow_local
from segflow.jobs.load import load_landing
from segflow.orchestration import PII_KEY_VARIABLE
from segflow.settings import Settings
from segflow.warehouse import connect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RUN_DATE = "2025-09-03"  # after the DAG's start_date; its day (09-02) has a delivery (else "no new data")


def _states(settings: Settings) -> dict[str, str]:
    with sqlite3.connect(settings.airflow_home / "airflow.db") as con:
        run_id = con.execute("select run_id from dag_run where dag_id = 'segflow_elt' order by id desc limit 1"
                             ).fetchone()[0]
        return dict(con.execute("select task_id, state from task_instance where dag_id = 'segflow_elt' and "
                                "run_id = ?", [run_id]).fetchall())


@pytest.fixture
def own_data_home(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith(("AIRFLOW", "SEGFLOW_PII_KEY"))]:
        monkeypatch.delenv(key)
    settings = Settings(home=tmp_path / "home")
    settings.ensure_dirs()
    (settings.landing_dir / "customers").mkdir()
    (settings.landing_dir / "customers" / "customers_2025-09-01.csv").write_text(
        "customer_id,email,signup_at,consent_analytics\nU1,Carl@Example.net,2025-09-01T08:00:00Z,true\n")
    (settings.landing_dir / "events").mkdir()
    (settings.landing_dir / "events" / "events_2025-09-02.csv").write_text(
        "event_id,event_type,occurred_at,user_id\nE1,page_view,2025-09-02T10:00:00Z,U1\n")
    assert load_landing(settings).count("loaded") == 2
    airflow_local.init(settings)
    return settings


def test_dbt_build_takes_the_key_from_an_airflow_variable_and_fails_clearly_without_one(own_data_home):
    settings = own_data_home
    outcome = airflow_local.test_dag("segflow_elt", RUN_DATE, settings)
    assert outcome.state == "failed"
    assert _states(settings)["dbt_build.dbt_producer_watcher"] == "failed"
    log = Path(outcome.log).read_text()
    assert "SEGFLOW_PII_KEY is not set" in log and "secrets.token_hex(32)" in log

    key = secrets.token_hex(32)
    subprocess.run([str(Path(sys.executable).with_name("airflow")), "variables", "set", PII_KEY_VARIABLE, key],
                   env=airflow_local.airflow_env(settings), check=True, capture_output=True)
    outcome = airflow_local.test_dag("segflow_elt", RUN_DATE, settings)
    states = _states(settings)
    assert states["dbt_build.dbt_producer_watcher"] == "success" and states["purge_raw_pii"] == "success", outcome.log
    with connect(settings, read_only=True) as con:
        (email_hash,) = con.execute("select email_hash from staging.stg_raw__customers").fetchall()[0]
    assert email_hash == hmac.new(key.encode(), b"carl@example.net", hashlib.sha256).hexdigest()
    assert key not in Path(outcome.log).read_text()
