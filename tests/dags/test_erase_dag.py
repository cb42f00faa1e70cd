"""The erasure DAG through Airflow (`airflow dags test` with the run's params): it erases the person named in
the params, records the Airflow run as the requester, and fails without erasing anything for an unknown id."""

from __future__ import annotations

import os

import pytest

from segflow import airflow_local
from segflow.warehouse import connect

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_outside_airflow(monkeypatch):
    for key in [k for k in os.environ if k.startswith("AIRFLOW")]:
        monkeypatch.delenv(key)


def test_the_erase_dag_erases_the_person_in_its_params(home_copy):
    with connect(home_copy, read_only=True) as con:
        person = con.execute("select min(customer_id) from marts.customer_features").fetchall()[0][0]
        # their logged-in events and the anonymous events of their devices
        events = con.execute(
            "select count(*) from raw.events where user_id = $1 or (user_id is null and anonymous_id in ("
            "select identifier from intermediate.int_identity_graph where customer_id = $1))", [person]).fetchall()[0][0]
    airflow_local.init(home_copy)

    unknown = airflow_local.test_dag("segflow_erase", "2025-10-01", home_copy,
                                     conf={"customers": ["no-such-customer"], "reference": "DSR-8"})
    done = airflow_local.test_dag("segflow_erase", "2025-10-02", home_copy,
                                  conf={"customers": [person], "reference": "DSR-9"})

    assert unknown.state == "failed" and done.state == "success", done.log
    with connect(home_copy, read_only=True) as con:
        log = con.execute("select requested_by, reference, status from meta.erasure_log").fetchall()
        left = con.execute("select count(*) from raw.events where user_id = ?", [person]).fetchall()[0][0]
        detail = con.execute("select rows_erased from meta.erasure_log_detail where target = 'raw.events'"
                             ).fetchall()
    assert events > 0 and left == 0 and detail == [(events,)]
    assert len(log) == 1 and log[0][0].startswith("airflow:segflow_erase/") and log[0][1:] == ("DSR-9", "done")
