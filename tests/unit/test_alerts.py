"""The failure alert: always logged, and POSTed as JSON to the configured webhook - tested against a real HTTP
server on the loopback interface. A webhook that is down never turns the alert into a second failure."""

from __future__ import annotations

import json
import logging
import socket
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest

from segflow.alerts import alert_payload, on_failure, send_alert
from segflow.errors import GateFailed
from segflow.settings import Settings


@pytest.fixture
def webhook():
    """A real HTTP server on 127.0.0.1 that records what it is sent."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "type": self.headers["Content-Type"], "body": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/segflow", received
    server.shutdown()
    server.server_close()


def _context() -> dict:
    ti = SimpleNamespace(dag_id="segflow_elt", task_id="quality_gate", run_id="scheduled__2025-10-06")
    return {"ti": ti, "run_id": ti.run_id, "data_interval_end": datetime(2025, 10, 6),
            "exception": GateFailed("Data-quality gate failed as of 2025-10-06 00:00: staged_events ...")}


def test_failure_callback_posts_json_to_the_webhook(webhook, monkeypatch, caplog):
    url, received = webhook
    monkeypatch.setenv("SEGFLOW_ALERT_WEBHOOK_URL", url)
    with caplog.at_level(logging.ERROR, logger="segflow.alerts"):
        on_failure(_context())
    assert len(received) == 1
    sent = received[0]
    assert sent["path"] == "/hooks/segflow" and sent["type"] == "application/json"
    assert sent["body"]["dag_id"] == "segflow_elt" and sent["body"]["task_id"] == "quality_gate"
    assert sent["body"]["data_interval_end"] == "2025-10-06T00:00:00"
    assert sent["body"]["error"].startswith("Data-quality gate failed as of 2025-10-06")
    assert "segflow_elt.quality_gate failed" in sent["body"]["text"]
    assert any("ALERT segflow: segflow_elt.quality_gate failed" in r.getMessage() for r in caplog.records)


def test_without_a_webhook_the_alert_is_logged_only(webhook, caplog):
    _, received = webhook
    with caplog.at_level(logging.ERROR, logger="segflow.alerts"):
        assert send_alert(alert_payload(_context()), Settings(alert_webhook_url="")) is False
    assert received == []
    assert any("ALERT" in r.getMessage() for r in caplog.records)


def test_a_webhook_that_is_down_does_not_raise(caplog):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(alert_webhook_url=f"http://127.0.0.1:{port}/x", alert_timeout_seconds=2)
    with caplog.at_level(logging.WARNING, logger="segflow.alerts"):
        assert send_alert(alert_payload(_context()), settings) is False
    assert any("alert webhook" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records)


def test_drift_verdict_alerts_through_the_webhook_and_stable_does_not(webhook, tmp_path, caplog):
    from segflow.jobs.drift import DriftResult, notify_drift

    url, received = webhook
    settings = Settings(home=tmp_path / "home", alert_webhook_url=url)
    as_of = datetime(2025, 10, 27)
    stable = DriftResult(as_of=as_of, reference_as_of=datetime(2025, 10, 20), verdict="warn", max_psi=0.02)
    assert notify_drift(stable, settings) is False and received == []
    drift = DriftResult(as_of=as_of, reference_as_of=datetime(2025, 10, 20), verdict="drift", max_psi=0.3,
                        tests=40, drift_tests=2, reasons=["segment:S05: sessions_7d PSI 0.66, p_adj 0.0004"])
    with caplog.at_level(logging.ERROR, logger="segflow.alerts"):
        assert notify_drift(drift, settings) is True
    body = received[0]["body"]
    assert body["event"] == "drift" and body["as_of"] == "2025-10-27T00:00:00"
    assert "segment:S05: sessions_7d" in body["text"] and "2 of 40 tests" in body["text"]
    assert "ALERT" in caplog.text
