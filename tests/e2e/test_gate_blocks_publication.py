"""End to end through Airflow: the gate passes clean data and publishes; a corrupted delivery (a real file
dropped into the landing folder and loaded) fails the gate, the segment DAG does not publish, the last good
segments stay, and the failure alert reaches a webhook (a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import threading
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from tests_support import week_end

from segflow import airflow_local
from segflow.warehouse import connect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BAD_EMAILS = 60


@pytest.fixture
def webhook():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alert", received
    server.shutdown()
    server.server_close()


def _states(settings, dag_id: str) -> dict[str, str]:
    with sqlite3.connect(settings.airflow_home / "airflow.db") as con:
        run_id = con.execute("select run_id from dag_run where dag_id = ? order by id desc limit 1",
                             [dag_id]).fetchone()[0]
        return dict(con.execute("select task_id, state from task_instance where dag_id = ? and run_id = ?",
                                [dag_id, run_id]).fetchall())


def _corrupt_delivery(settings) -> int:
    """A second events file for the last day of week 5 whose purchases carry a price in cents-as-units (x 10^5),
    and a customers file whose e-mail column holds something else: both well-formed, so staging keeps them."""
    day = (week_end(5) - timedelta(days=1)).date().isoformat()
    source = settings.landing_dir / "events" / f"events_{day}.csv"
    with open(source, newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames
        purchases = [row for row in reader if row["event_type"] == "purchase"]
    for row in purchases:
        row["event_id"] = str(uuid.uuid4())
        row["order_id"] = f"RESEND-{row['order_id']}"
        row["price"] = f"{float(row['price']) * 100_000:.2f}"
    with open(settings.landing_dir / "events" / f"events_{day}_resend.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(purchases)
    with open(settings.landing_dir / "customers" / f"customers_{day}_crm.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["customer_id", "email", "signup_at", "country", "age_band", "consent_marketing",
                         "consent_analytics"])
        for i in range(BAD_EMAILS):
            writer.writerow([f"X{i:06d}", f"Lastname, Firstname {i}", f"{day}T08:00:00Z", "DE", "250-299", "true",
                             "true"])
    return len(purchases)


def test_gate_passes_clean_data_and_blocks_a_corrupted_delivery(home_copy, webhook, monkeypatch):
    settings = home_copy
    url, received = webhook
    for key in [k for k in os.environ if k.startswith("AIRFLOW")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SEGFLOW_ALERT_WEBHOOK_URL", url)
    airflow_local.init(settings)
    week4, week5 = (week_end(w).date().isoformat() for w in (4, 5))

    # clean data: the gate passes and the week's segments are published
    assert airflow_local.test_dag("segflow_elt", week4, settings).state == "success"
    assert airflow_local.test_dag("segflow_segments_weekly", week4, settings).state == "success"
    latest = settings.exports_dir / "segments" / "latest.csv"
    published = latest.read_bytes()
    assert received == []

    # a corrupted delivery, loaded by the ELT run like any other file
    bad_purchases = _corrupt_delivery(settings)
    assert bad_purchases > 0
    elt = airflow_local.test_dag("segflow_elt", week5, settings)
    assert elt.state == "failed"
    states = _states(settings, "segflow_elt")
    assert states["load_raw"] == "success" and states["dbt_build.dbt_producer_watcher"] == "success"
    assert states["quality_gate"] == "failed"
    assert states["is_week_end"] == states["close_week"] == "upstream_failed"
    with connect(settings, read_only=True) as con:
        loaded = con.execute("select count(*) from meta.load_manifest where file_name like '%resend%' "
                             "or file_name like '%crm%'").fetchall()[0][0]
        suites = dict(con.execute("select suite, success from meta.dq_results where as_of = ?",
                                  [week_end(5)]).fetchall())
        history = con.execute("select success, checks_failed, data_docs from meta.dq_history where as_of = ?",
                              [week_end(5)]).fetchall()
    assert loaded == 2
    assert suites["staged_events"] is False and suites["customer_profiles"] is False
    assert suites["sessions"] is True and suites["raw_loads"] is True
    assert history[0][0] is False and history[0][1] >= 3
    log = open(elt.log).read()
    assert "Data-quality gate as of 2025-10-06 00:00:00: FAIL" in log
    assert "staged_events: expect_column_values_to_be_between on price" in log
    assert "customer_profiles: expect_column_values_to_match_regex on email_shape" in log
    assert f"Data Docs: {history[0][2]}" in log and (settings.artifacts_dir / "data_docs" / "index.html").exists()
    assert "Lastname" not in (settings.artifacts_dir / "data_docs").joinpath("index.html").read_text()
    assert "Skipping registering function" not in log  # GX's import chatter stays out of the task log
    assert [(a["dag_id"], a["task_id"]) for a in received] == [("segflow_elt", "quality_gate")]
    assert "Data-quality gate failed as of 2025-10-06" in received[0]["error"]

    # the segment DAG runs for the week but does not publish it; the last good segments stay
    weekly = airflow_local.test_dag("segflow_segments_weekly", week5, settings)
    assert weekly.state == "failed"
    assert _states(settings, "segflow_segments_weekly")["publish"] == "failed"
    assert latest.read_bytes() == published
    assert not (settings.exports_dir / "segments" / f"segments_{week5}.csv").exists()
    # task failures alert once each (the drift check may also alert: corrupted prices move the features)
    failures = [(a["dag_id"], a["task_id"]) for a in received if a.get("event") == "task_failed"]
    assert failures == [("segflow_elt", "quality_gate"), ("segflow_segments_weekly", "publish")]
