"""meta.run_log: every warehouse step leaves one row - success or failure, who, when, for which as-of."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from segflow.errors import NotReady
from segflow.jobs.purge_pii import purge_pii
from segflow.jobs.status import summary
from segflow.jobs.status_format import format_summary
from segflow.settings import Settings
from segflow.warehouse import connect
from segflow.warehouse_lock import warehouse_step

AS_OF = datetime(2025, 10, 6)


@pytest.fixture
def settings(tmp_path) -> Settings:
    settings = Settings(home=tmp_path / "home")
    settings.ensure_dirs()
    return settings


def _log(settings: Settings) -> list[dict]:
    with connect(settings, read_only=True) as con:
        cursor = con.execute("select * from meta.run_log order by started_at")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@warehouse_step("test: counts")
def _counts(settings: Settings, as_of: datetime | None = None) -> dict:
    return {"rows": 7, "mode": "incremental", "files": ["a", "b"]}


@warehouse_step("test: not ready")
def _not_ready(settings: Settings, as_of: datetime | None = None) -> None:
    raise NotReady("nothing to do as of that week: run `segflow build` first.")


@warehouse_step("test: crash")
def _crash(settings: Settings) -> None:
    raise ZeroDivisionError("division by zero\nsecond line")


@warehouse_step("test: private", detail=False)
def _private(settings: Settings) -> None:
    raise NotReady("unknown customer C000143")


def test_success_and_failures_are_each_one_row(settings, monkeypatch):
    for name in ("DAG_ID", "DAG_RUN_ID", "TASK_ID"):
        monkeypatch.delenv(f"AIRFLOW_CTX_{name}", raising=False)
    assert _counts(settings, as_of=AS_OF)["rows"] == 7
    with pytest.raises(NotReady):
        _not_ready(settings, as_of=AS_OF)
    with pytest.raises(ZeroDivisionError):
        _crash(settings)
    with pytest.raises(NotReady):
        _private(settings)
    rows = _log(settings)
    assert [(r["step"], r["status"]) for r in rows] == [
        ("test: counts", "success"), ("test: not ready", "not_ready"), ("test: crash", "error"),
        ("test: private", "not_ready")]
    ok, not_ready, crash, private = rows
    assert ok["as_of"] == AS_OF and crash["as_of"] is None
    assert json.loads(ok["summary"]) == {"rows": 7, "mode": "incremental"}  # lists left out
    assert ok["error"] is None and ok["finished_at"] >= ok["started_at"] and ok["duration_seconds"] >= 0
    assert not_ready["error"] == "nothing to do as of that week: run `segflow build` first."
    assert crash["error"] == "ZeroDivisionError: division by zero"  # one line, with the kind of error
    assert private["error"] == "NotReady" and private["summary"] is None  # no message that may name a person
    assert "@" in ok["invoked_by"] and len({r["run_id"] for r in rows}) == 4


def test_an_airflow_task_is_named_as_the_invoker(settings, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "segflow_elt")
    monkeypatch.setenv("AIRFLOW_CTX_DAG_RUN_ID", "scheduled__2025-10-06T00:00:00+00:00")
    monkeypatch.setenv("AIRFLOW_CTX_TASK_ID", "dbt_build")
    _counts(settings, as_of=AS_OF)
    assert _log(settings)[0]["invoked_by"] == "airflow:segflow_elt/scheduled__2025-10-06T00:00:00+00:00/dbt_build"


def test_real_steps_are_logged_and_status_shows_them(settings):
    purge_pii(settings, as_of=AS_OF)
    purge_pii(settings, as_of=AS_OF)
    rows = _log(settings)
    assert [(r["step"], r["status"]) for r in rows] == [("purge-pii", "success")] * 2
    text = format_summary(summary(settings))
    assert "recent runs" in text and text.count("purge-pii") == 2
