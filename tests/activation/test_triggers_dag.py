"""End to end through Airflow: the segflow_triggers DAG (run by `airflow dags test`) reads a landed file, writes
the session offer to the outbox and delivers it to a real local HTTP sink."""

from __future__ import annotations

import os
import shutil

import pytest
from crm_server import CrmServer
from trigger_support import T0, land, session

from segflow import airflow_local
from segflow.activation.store import open_store
from segflow.warehouse import connect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_the_triggers_dag_sends_a_session_offer_once(home_copy, monkeypatch):
    settings = home_copy
    for stream in ("events", "customers", "consent"):
        shutil.rmtree(settings.landing_dir / stream, ignore_errors=True)
    with connect(settings, read_only=True) as con:
        customer = con.execute("select customer_id from marts.dim_customers where has_marketing_consent and "
                               "has_analytics_consent order by customer_id limit 1").fetchall()[0][0]
    land(settings, "events_2025-10-20.csv", session(customer, T0, "dag", cart=False))
    for key in [k for k in os.environ if k.startswith("AIRFLOW")]:
        monkeypatch.delenv(key)
    with CrmServer(record_id="trigger_key") as crm:
        monkeypatch.setenv("SEGFLOW_SINK_URL", crm.url)
        airflow_local.init(settings)
        outcome = airflow_local.test_dag("segflow_triggers", "2025-10-20", settings)
        assert outcome.state == "success", open(outcome.log).read()[-3000:]
    with open_store(settings) as con:
        rows = con.execute("select trigger_key, trigger_type, customer_id, status from trigger_outbox").fetchall()
    assert [(t, c, s) for _, t, c, s in rows] == [("session_offer", customer, "sent")]
    assert dict(crm.record_counts) == {rows[0][0]: 1}
