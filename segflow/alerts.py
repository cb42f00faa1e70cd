"""Alerts when a gate or a publication fails: an Airflow ``on_failure_callback`` that logs the failure and,
when ``SEGFLOW_ALERT_WEBHOOK_URL`` is set, POSTs it as JSON to that address (Slack-, Teams- or
PagerDuty-style receivers take a JSON body; the ``text`` field reads on its own).

An alert must never turn into a second failure: a webhook that is down or slow is logged and left alone.
"""

from __future__ import annotations

import logging
from datetime import datetime

from segflow.settings import Settings, get_settings

log = logging.getLogger("segflow.alerts")


def alert_payload(context: dict) -> dict:
    """The alert's JSON body, from an Airflow task context (only plain values: it goes over the wire)."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", None)
    task_id = getattr(ti, "task_id", None)
    run_id = context.get("run_id") or getattr(ti, "run_id", None)
    interval_end = context.get("data_interval_end")
    error = context.get("exception")
    message = str(error) if error else "failed"
    return {
        "source": "segflow", "event": "task_failed", "dag_id": dag_id, "task_id": task_id, "run_id": run_id,
        "data_interval_end": interval_end.isoformat() if isinstance(interval_end, datetime) else interval_end,
        "error": message,
        "text": f"segflow: {dag_id}.{task_id} failed for {interval_end or run_id}: {message}",
    }


def send_alert(payload: dict, settings: Settings | None = None) -> bool:
    """Log the alert and POST it to the webhook if one is configured; True when a webhook accepted it."""
    import httpx

    settings = settings or get_settings()
    log.error("ALERT %s", payload["text"])
    if not settings.alert_webhook_url:
        return False
    try:
        response = httpx.post(settings.alert_webhook_url, json=payload, timeout=settings.alert_timeout_seconds)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("alert webhook %s failed: %s", settings.alert_webhook_url, exc)
        return False
    return True


def on_failure(context: dict) -> None:
    """Airflow ``on_failure_callback`` of the quality gate and the publication."""
    try:
        send_alert(alert_payload(context))
    except Exception:  # a broken alert (bad setting, odd context) must not mask the task's failure
        log.exception("could not send the failure alert")
